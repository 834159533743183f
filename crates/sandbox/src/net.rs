//! The sandbox's network: `lo` up in every private network namespace, and
//! pasta (passt's user-mode networking, which rootless Podman uses) for
//! apps granted the network. pasta copies the host's addresses and routes
//! into the namespace and relays traffic through ordinary host sockets, so
//! the app reaches the internet but neither the host's loopback services
//! (`--no-map-gw`, no `-T`/`-U` forwards) nor its abstract unix sockets
//! (those belong to the host's namespace).

use std::io::Read;
use std::process::{Command, Stdio};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::plan::PASTA_DNS;

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const IFF_UP: u32 = 1;
/// The loopback device is the first one of every network namespace.
const LOOPBACK_IFINDEX: i32 = 1;

/// RTM_NEWLINK setting IFF_UP on ifindex 1: nlmsghdr + ifinfomsg.
fn link_up_request() -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0..4].copy_from_slice(&32u32.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes()); // seq
    // ifinfomsg: family AF_UNSPEC, type 0, index, flags, change
    m[20..24].copy_from_slice(&LOOPBACK_IFINDEX.to_ne_bytes());
    m[24..28].copy_from_slice(&IFF_UP.to_ne_bytes());
    m[28..32].copy_from_slice(&IFF_UP.to_ne_bytes());
    m
}

/// The errno in a netlink ACK (0: success), or None if it is not one.
fn ack_errno(reply: &[u8]) -> Option<i32> {
    let ty = u16::from_ne_bytes(reply.get(4..6)?.try_into().ok()?);
    if ty != NLMSG_ERROR {
        return None;
    }
    Some(-i32::from_ne_bytes(reply.get(16..20)?.try_into().ok()?))
}

/// Bring up `lo` in this (new) network namespace, so apps have localhost.
pub fn loopback_up() -> std::io::Result<()> {
    let s = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::send(&s, &link_up_request(), SendFlags::empty())?;
    let mut buf = [0u8; 256];
    let n = rustix::net::recv(&s, &mut buf, RecvFlags::empty())?.0;
    match ack_errno(&buf[..n.min(buf.len())]) {
        Some(0) => Ok(()),
        Some(e) => Err(std::io::Error::from_raw_os_error(e)),
        None => Err(std::io::Error::other("unexpected netlink reply")),
    }
}

/// Destinations a LAN-only app may reach: private (RFC 1918), shared
/// (RFC 6598), link-local (pasta's DNS address is one) and unique local
/// IPv6. Everything else is the internet.
pub const LAN_V4: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
];
pub const LAN_V6: &[&str] = &["fc00::/7", "fe80::/10"];
/// Cloud instance metadata services, unreachable from the LAN-only mode.
pub const METADATA: &[&str] = &["169.254.169.254/32", "fd00:ec2::254/128"];

/// Is `dest` (an address or `ADDR/LEN` as `ip route` prints) inside one
/// of the `ADDR/LEN` ranges of `lan`?
pub fn within_lan(dest: &str, lan: &[&str]) -> bool {
    fn cidr(s: &str) -> Option<(std::net::IpAddr, u32)> {
        let (a, l) = s.split_once('/').unwrap_or((s, ""));
        let a: std::net::IpAddr = a.parse().ok()?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        let l = if l.is_empty() { max } else { l.parse().ok()? };
        (l <= max).then_some((a, l))
    }
    fn bits(a: std::net::IpAddr) -> (u128, u32) {
        match a {
            std::net::IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
            std::net::IpAddr::V6(v) => (u128::from(v), 128),
        }
    }
    let Some((d, dl)) = cidr(dest) else {
        return false;
    };
    lan.iter().filter_map(|r| cidr(r)).any(|(r, rl)| {
        let ((db, dmax), (rb, rmax)) = (bits(d), bits(r));
        if dmax != rmax || dl < rl {
            return false;
        }
        // Both sit at the top of the u128: the first `rl` bits decide.
        let mask = if rl == 0 { 0 } else { u128::MAX << (128 - rl) };
        db & mask == rb & mask
    })
}

/// The gateway and device of a `default via GW dev DEV ...` line of
/// `ip route show default`.
pub fn parse_default_route(line: &str) -> Option<(String, String)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.first() != Some(&"default") {
        return None;
    }
    let after = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1));
    Some(((*after("via")?).to_owned(), (*after("dev")?).to_owned()))
}

/// The routing of a LAN-only sandbox (pid 1 `pid`, still in setup, its
/// network configured by pasta): the default routes give way to an
/// unreachable default, and the LAN ranges go where the default went.
/// Done from outside with the host's `ip` in the sandbox's user and
/// network namespaces, where the app, without capabilities, cannot undo
/// it. Any failure is an error: the app must not start with the internet.
pub fn lan_only(pid: i32) -> Result<(), String> {
    // In a helper process: joining a user namespace takes a single thread,
    // and this one must not stay there.
    let said = crate::exec::in_child(|| match enter_and_cut(pid) {
        Ok(()) => b"ok".to_vec(),
        Err(e) => e.into_bytes(),
    })
    .map_err(|e| e.to_string())?;
    match said.as_slice() {
        b"ok" => Ok(()),
        [] => Err("the helper setting the routes died".into()),
        e => Err(String::from_utf8_lossy(e).into_owned()),
    }
}

/// Join the sandbox's user and network namespaces, keep CAP_NET_ADMIN
/// there across exec (the ambient set: a user's own uid keeps no
/// capabilities across exec otherwise), and cut the routes with `ip`.
fn enter_and_cut(pid: i32) -> Result<(), String> {
    use rustix::thread::{CapabilitySet, LinkNameSpaceType};
    use std::os::fd::AsFd;
    for (ns, t) in [
        ("user", LinkNameSpaceType::User),
        ("net", LinkNameSpaceType::Network),
    ] {
        let f = std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| format!("opening the sandbox's {ns} namespace: {e}"))?;
        rustix::thread::move_into_link_name_space(f.as_fd(), Some(t))
            .map_err(|e| format!("joining the sandbox's {ns} namespace: {e}"))?;
    }
    let mut caps = rustix::thread::capabilities(None).map_err(|e| format!("capget: {e}"))?;
    caps.inheritable |= CapabilitySet::NET_ADMIN;
    rustix::thread::set_capabilities(None, caps).map_err(|e| format!("capset: {e}"))?;
    rustix::thread::configure_capability_in_ambient_set(CapabilitySet::NET_ADMIN, true)
        .map_err(|e| format!("keeping CAP_NET_ADMIN for ip: {e}"))?;
    cut_routes()
}

fn cut_routes() -> Result<(), String> {
    let ip = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("ip")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running ip (iproute2): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for (fam, lan) in [("-4", LAN_V4), ("-6", LAN_V6)] {
        let defaults = ip(&[fam, "route", "show", "default"])?;
        let via: Vec<(String, String)> = defaults.lines().filter_map(parse_default_route).collect();
        for _ in defaults.lines().filter(|l| l.starts_with("default")) {
            ip(&[fam, "route", "del", "default"])?;
        }
        match ip(&[fam, "route", "add", "unreachable", "default"]) {
            Ok(_) => {}
            // No IPv6 in the namespace at all: nothing to cut.
            Err(_) if fam == "-6" && via.is_empty() => continue,
            Err(e) => return Err(e),
        }
        if let Some((gw, dev)) = via.first() {
            // The gateway stays reachable as itself alone; the subnet
            // pasta copied from the host is the internet when it is not a
            // LAN range (a host on a public subnet), so it goes.
            let host = if fam == "-4" { "/32" } else { "/128" };
            ip(&[fam, "route", "replace", &format!("{gw}{host}"), "dev", dev])?;
            for p in lan {
                ip(&[fam, "route", "replace", p, "via", gw, "dev", dev])?;
            }
            // Link-local, but the cloud's instance metadata service (its
            // credentials) is no LAN device.
            for m in METADATA.iter().filter(|m| m.contains(':') == (fam == "-6")) {
                ip(&[fam, "route", "replace", "unreachable", m])?;
            }
        }
        for line in ip(&[fam, "route", "show"])?.lines() {
            let Some(dest) = line.split_whitespace().next() else {
                continue;
            };
            if dest == "default"
                || dest == "unreachable"
                || dest == "blackhole"
                || dest == "prohibit"
                || within_lan(dest, lan)
            {
                continue;
            }
            if via
                .iter()
                .any(|(gw, _)| dest == gw || dest.strip_suffix("/32") == Some(gw))
            {
                continue;
            }
            ip(&[fam, "route", "del", dest])?;
        }
    }
    // Checked, not assumed: no way out but the LAN.
    let left = ip(&["-4", "route", "show", "default"])? + &ip(&["-6", "route", "show", "default"])?;
    if left
        .lines()
        .any(|l| l.split_whitespace().any(|w| w == "via"))
    {
        return Err(format!("a default route is left: {}", left.trim()));
    }
    Ok(())
}

/// pasta's arguments to connect the namespaces of `pid` (the sandbox's
/// pid 1, still in setup) as user `uid`.
pub fn pasta_args(pid: i32, uid: u32) -> Vec<String> {
    [
        "--config-net",
        "--quiet",
        // Nothing forwarded into the sandbox, nothing out to the host's
        // loopback, and the gateway is the real one, not the host.
        "--tcp-ports",
        "none",
        "--udp-ports",
        "none",
        "--tcp-ns",
        "none",
        "--udp-ns",
        "none",
        "--no-map-gw",
        "--dns-forward",
        PASTA_DNS,
        // pasta refuses to stay root unless told; it must be the owner of
        // the sandbox's user namespace to join it.
        "--runas",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([uid.to_string(), pid.to_string()])
    .collect()
}

/// A running pasta, stopped when dropped: it holds the sandbox's network
/// namespace open and would otherwise outlive the app.
pub struct Pasta {
    /// A pidfd, so the stop can never hit a recycled pid.
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl Drop for Pasta {
    fn drop(&mut self) {
        if let Some(fd) = &self.pidfd {
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::TERM);
        }
    }
}

/// Where pasta writes its pid, in the instance's state directory.
pub const PASTA_PID_FILE: &str = "pasta.pid";

/// Start pasta for the sandbox whose pid 1 is `pid`. pasta forks into the
/// background once the namespace is configured, leaving its pid in
/// `pid_file`. Err: why the app has no network.
pub fn start_pasta(pid: i32, uid: u32, pid_file: &std::path::Path) -> Result<Pasta, String> {
    // pasta opens the tun device as the user: say so plainly when it cannot.
    let tun = "/dev/net/tun";
    if rustix::fs::access(
        tun,
        rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
    )
    .is_err()
    {
        return Err(format!(
            "{tun} is missing or not usable by uid {uid} (pasta needs it; Debian makes it mode 0666)"
        ));
    }
    let _ = std::fs::remove_file(pid_file);
    let mut child = Command::new("pasta")
        .arg("--pid")
        .arg(pid_file)
        .args(pasta_args(pid, uid))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "pasta is not installed (Debian: apt install passt)".to_owned()
            } else {
                format!("cannot start pasta: {e}")
            }
        })?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for pasta: {e}"))?;
    if !status.success() {
        // It logs to syslog as well; keep what it said on stderr.
        let said: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
            .collect();
        return Err(format!("pasta failed ({status}): {}", said.join("; ")));
    }
    let pidfd = read_pid(pid_file)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    Ok(Pasta { pidfd })
}

fn read_pid(pid_file: &std::path::Path) -> Option<rustix::process::Pid> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    rustix::process::Pid::from_raw(text.trim().parse().ok()?)
}

/// Stop the pasta of an instance whose supervisor died without doing it
/// (killed): only a pasta whose target is that instance's pid 1.
pub fn stop_stale_pasta(instance_dir: &std::path::Path, pid1: i32) {
    let Some(p) = read_pid(&instance_dir.join(PASTA_PID_FILE)) else {
        return;
    };
    let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) else {
        return;
    };
    // Checked after the pidfd is open, so the pid cannot be recycled
    // between the check and the signal.
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", p.as_raw_nonzero())) else {
        return;
    };
    let args: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    let is_ours = args.first().is_some_and(|a| a.ends_with(b"pasta"))
        && args
            .last()
            .is_some_and(|a| *a == pid1.to_string().as_bytes());
    if is_ours {
        let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::TERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_ranges_contain_what_they_should() {
        for ok in [
            "10.1.2.0/24",
            "192.168.1.7",
            "172.31.0.0/16",
            "fd00::/8",
            "fe80::/64",
        ] {
            assert!(
                within_lan(ok, if ok.contains(':') { LAN_V6 } else { LAN_V4 }),
                "{ok}"
            );
        }
        for no in [
            "192.0.2.0/24",
            "8.8.8.8",
            "172.32.0.0/16",
            "10.0.0.0/7",
            "2001:db8::/64",
            "junk",
        ] {
            assert!(
                !within_lan(no, if no.contains(':') { LAN_V6 } else { LAN_V4 }),
                "{no}"
            );
        }
    }

    #[test]
    fn default_routes_are_read() {
        assert_eq!(
            parse_default_route("default via 10.0.2.2 dev eth0 proto static metric 100"),
            Some(("10.0.2.2".into(), "eth0".into()))
        );
        assert_eq!(
            parse_default_route("default via fe80::1 dev eth0 metric 1024 pref medium"),
            Some(("fe80::1".into(), "eth0".into()))
        );
        assert_eq!(parse_default_route("unreachable default metric 1024"), None);
        assert_eq!(parse_default_route("10.0.0.0/8 via 1.2.3.4 dev x"), None);
    }

    #[test]
    fn link_up_message() {
        let m = link_up_request();
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]), 32);
        assert_eq!(i32::from_ne_bytes([m[20], m[21], m[22], m[23]]), 1);
        let mut ack = [0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(ack_errno(&ack), Some(0));
        ack[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(ack_errno(&ack), Some(1));
        assert_eq!(ack_errno(&[0; 3]), None);
    }

    #[test]
    fn pasta_forwards_nothing_to_the_host() {
        let a = pasta_args(42, 1000).join(" ");
        for must in [
            "-ns none",
            "--tcp-ports none",
            "--no-map-gw",
            "--runas 1000 42",
        ] {
            assert!(a.contains(must), "{a}");
        }
    }
}
