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
