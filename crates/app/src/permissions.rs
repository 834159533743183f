//! Permissions, in Flatpak's words so users' knowledge carries over:
//! `socket=`, `device=`, `share=`, `filesystem=`, `talk-name=`, `own-name=`,
//! `env=`, `persist=`, `allow=`, and resource limits. Each parses from and
//! prints back to its text form, and explains itself in plain words with a
//! risk level for the install review.

use std::fmt;

use serde::Serialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid permission {text:?}: {reason}")]
pub struct ParseError {
    pub text: String,
    pub reason: String,
}

fn err(text: &str, reason: impl Into<String>) -> ParseError {
    ParseError {
        text: text.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Low => "low risk",
            Risk::Medium => "medium risk",
            Risk::High => "high risk",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Socket {
    Wayland,
    X11,
    FallbackX11,
    Pulseaudio,
    Pipewire,
    SessionBus,
    SystemBus,
    SshAuth,
    Cups,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Device {
    Dri,
    Nvidia,
    Camera,
    Input,
    Usb,
    Kvm,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Share {
    Network,
    Ipc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    ReadOnly,
    ReadWrite,
    /// Read-write, created if missing.
    Create,
}

/// The place a `filesystem=` grant names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    Host,
    Home,
    /// An XDG user dir: documents, download, music, pictures, videos, desktop, ...
    Xdg(String),
    /// `~/path`, relative to the home directory.
    HomePath(String),
    /// `/path`.
    Absolute(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Permission {
    Socket(Socket),
    Device(Device),
    Share(Share),
    Filesystem(Place, Access),
    TalkName(String),
    OwnName(String),
    Env(String, String),
    Persist(String),
    /// `allow=devel`: ptrace and perf for debuggers.
    Devel,
    Memory(u64),
    CpuWeight(u64),
    IoWeight(u64),
    Pids(u64),
}

const XDG_DIRS: [&str; 8] = [
    "desktop",
    "documents",
    "download",
    "music",
    "pictures",
    "public-share",
    "templates",
    "videos",
];

fn valid_bus_name(n: &str) -> bool {
    // Well-known names, optionally ending in `.*` (a prefix grant).
    let n = n.strip_suffix(".*").unwrap_or(n);
    let parts: Vec<&str> = n.split('.').collect();
    n.len() <= 255
        && parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.as_bytes()[0].is_ascii_digit()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

fn clean_rel(p: &str) -> bool {
    !p.is_empty() && !p.split('/').any(|c| c == "..") && !p.contains('\0')
}

fn parse_number(text: &str, v: &str) -> Result<u64, ParseError> {
    let t = v.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| err(text, "expected a positive number (memory accepts K/M/G)"))
}

impl Permission {
    pub fn parse(text: &str) -> Result<Permission, ParseError> {
        let t = text.trim();
        let (key, value) = t
            .split_once('=')
            .ok_or_else(|| err(t, "expected KEY=VALUE"))?;
        let unknown =
            |what: &str, options: &str| err(t, format!("unknown {what}; one of: {options}"));
        Ok(match key {
            "socket" => Permission::Socket(match value {
                "wayland" => Socket::Wayland,
                "x11" => Socket::X11,
                "fallback-x11" => Socket::FallbackX11,
                "pulseaudio" => Socket::Pulseaudio,
                "pipewire" => Socket::Pipewire,
                "session-bus" => Socket::SessionBus,
                "system-bus" => Socket::SystemBus,
                "ssh-auth" => Socket::SshAuth,
                "cups" => Socket::Cups,
                _ => {
                    return Err(unknown(
                        "socket",
                        "wayland x11 fallback-x11 pulseaudio pipewire session-bus system-bus ssh-auth cups",
                    ));
                }
            }),
            "device" => Permission::Device(match value {
                "dri" => Device::Dri,
                "nvidia" => Device::Nvidia,
                "camera" => Device::Camera,
                "input" => Device::Input,
                "usb" => Device::Usb,
                "kvm" => Device::Kvm,
                "all" => Device::All,
                _ => return Err(unknown("device", "dri nvidia camera input usb kvm all")),
            }),
            "share" => Permission::Share(match value {
                "network" => Share::Network,
                "ipc" => Share::Ipc,
                _ => return Err(unknown("share", "network ipc")),
            }),
            "allow" => match value {
                "devel" => Permission::Devel,
                _ => return Err(unknown("allow", "devel")),
            },
            "filesystem" => {
                let (place, access) = match value.rsplit_once(':') {
                    Some((p, "ro")) => (p, Access::ReadOnly),
                    Some((p, "rw")) => (p, Access::ReadWrite),
                    Some((p, "create")) => (p, Access::Create),
                    Some((_, m)) => {
                        return Err(err(t, format!("unknown mode {m:?}; one of: ro rw create")));
                    }
                    None => (value, Access::ReadWrite),
                };
                let place = match place {
                    "host" => Place::Host,
                    "home" | "~" => Place::Home,
                    p if p.starts_with("xdg-") => {
                        let d = &p[4..];
                        let (dir, _) = d.split_once('/').unwrap_or((d, ""));
                        if !XDG_DIRS.contains(&dir) {
                            return Err(err(
                                t,
                                format!(
                                    "unknown XDG directory; one of: {}",
                                    XDG_DIRS.map(|d| format!("xdg-{d}")).join(" ")
                                ),
                            ));
                        }
                        if !clean_rel(d) {
                            return Err(err(t, "path must not contain '..'"));
                        }
                        Place::Xdg(d.to_owned())
                    }
                    p if p.starts_with("~/") => {
                        if !clean_rel(&p[2..]) {
                            return Err(err(t, "path must not contain '..'"));
                        }
                        Place::HomePath(p[2..].trim_end_matches('/').to_owned())
                    }
                    p if p.starts_with('/') => {
                        if !clean_rel(p) || p == "/" {
                            return Err(err(
                                t,
                                "use filesystem=host for the whole filesystem; paths must not contain '..'",
                            ));
                        }
                        Place::Absolute(p.trim_end_matches('/').to_owned())
                    }
                    _ => return Err(err(t, "expected host, home, xdg-DIR, ~/path or /path")),
                };
                Permission::Filesystem(place, access)
            }
            "talk-name" | "own-name" => {
                if !valid_bus_name(value) {
                    return Err(err(t, "expected a D-Bus name like org.example.App"));
                }
                if key == "talk-name" {
                    Permission::TalkName(value.to_owned())
                } else {
                    Permission::OwnName(value.to_owned())
                }
            }
            "env" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| err(t, "expected env=NAME=VALUE"))?;
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(err(t, "variable names are letters, digits and _"));
                }
                Permission::Env(k.to_owned(), v.to_owned())
            }
            "persist" => {
                if !clean_rel(value) || value.starts_with('/') {
                    return Err(err(
                        t,
                        "persist= takes a path relative to home, without '..'",
                    ));
                }
                Permission::Persist(value.trim_end_matches('/').to_owned())
            }
            "memory" => Permission::Memory(parse_number(t, value)?),
            "cpu-weight" => {
                let w = parse_number(t, value)?;
                if w > 10_000 {
                    return Err(err(t, "cpu-weight is 1-10000"));
                }
                Permission::CpuWeight(w)
            }
            "io-weight" => {
                let w = parse_number(t, value)?;
                if w > 10_000 {
                    return Err(err(t, "io-weight is 1-10000"));
                }
                Permission::IoWeight(w)
            }
            "pids" => Permission::Pids(parse_number(t, value)?),
            _ => {
                return Err(err(
                    t,
                    "unknown key; one of: socket device share filesystem talk-name own-name env persist allow memory cpu-weight io-weight pids",
                ));
            }
        })
    }

    /// The permission in plain words, and how much it exposes.
    pub fn describe(&self) -> (String, Risk) {
        use Risk::*;
        let s = |x: &str| x.to_owned();
        match self {
            Permission::Socket(Socket::Wayland) => {
                (s("Show windows on your display (Wayland)"), Low)
            }
            Permission::Socket(Socket::FallbackX11) => (
                s("Show windows with X11 when Wayland is not available"),
                Medium,
            ),
            Permission::Socket(Socket::X11) => (
                s(
                    "Show windows with X11, which lets it see other X11 windows and your keystrokes in them",
                ),
                High,
            ),
            Permission::Socket(Socket::Pulseaudio) => {
                (s("Use your microphone and speakers"), Medium)
            }
            Permission::Socket(Socket::Pipewire) => (
                s("Use PipeWire: audio, and screen or camera streams you allow"),
                Medium,
            ),
            Permission::Socket(Socket::SessionBus) => (
                s("Talk to every service on your session bus, unfiltered"),
                High,
            ),
            Permission::Socket(Socket::SystemBus) => (
                s("Talk to every system service on the system bus, unfiltered"),
                High,
            ),
            Permission::Socket(Socket::SshAuth) => {
                (s("Use your SSH keys through the SSH agent"), High)
            }
            Permission::Socket(Socket::Cups) => (s("Print through CUPS"), Low),
            Permission::Device(Device::Dri) => (s("Use the graphics card (GPU acceleration)"), Low),
            Permission::Device(Device::Nvidia) => {
                (s("Use the NVIDIA graphics card and its driver"), Low)
            }
            Permission::Device(Device::Camera) => (s("Use your cameras"), Medium),
            Permission::Device(Device::Input) => (
                s("Read input devices directly (game controllers, and any keyboard)"),
                High,
            ),
            Permission::Device(Device::Usb) => (s("Use USB devices directly"), High),
            Permission::Device(Device::Kvm) => (s("Run virtual machines (KVM)"), Medium),
            Permission::Device(Device::All) => (s("Use every device on the computer"), High),
            Permission::Share(Share::Network) => (s("Full network access"), Medium),
            Permission::Share(Share::Ipc) => (
                s("Share memory with other programs (IPC namespace), needed by some X11 apps"),
                Low,
            ),
            Permission::Devel => (
                s("Debug other programs in its sandbox (ptrace, perf)"),
                Medium,
            ),
            Permission::Filesystem(place, access) => {
                let what = match place {
                    Place::Host => s("all files on the computer"),
                    Place::Home => s("your whole home folder"),
                    Place::Xdg(d) => format!("your {} folder", d.replace('-', " ")),
                    Place::HomePath(p) => format!("~/{p} in your home folder"),
                    Place::Absolute(p) => p.clone(),
                };
                let (verb, risk) = match (place, access) {
                    (Place::Host | Place::Home, Access::ReadOnly) => ("Read", High),
                    (Place::Host | Place::Home, _) => ("Read and write", High),
                    (_, Access::ReadOnly) => ("Read", Low),
                    (_, _) => ("Read and write", Medium),
                };
                (format!("{verb} {what}"), risk)
            }
            Permission::TalkName(n) => (format!("Talk to the service {n}"), Medium),
            Permission::OwnName(n) => (format!("Offer the service {n} to other apps"), Low),
            Permission::Env(k, v) => (format!("Set {k}={v} in its environment"), Low),
            Permission::Persist(p) => (format!("Keep ~/{p} in its own data between runs"), Low),
            Permission::Memory(m) => (format!("Use at most {} MiB of memory", m >> 20), Low),
            Permission::CpuWeight(w) => (format!("CPU weight {w} (default 100)"), Low),
            Permission::IoWeight(w) => (format!("I/O weight {w} (default 100)"), Low),
            Permission::Pids(p) => (format!("Run at most {p} processes"), Low),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Socket(s) => write!(f, "socket={}", s.as_str()),
            Permission::Device(d) => write!(f, "device={}", d.as_str()),
            Permission::Share(s) => write!(f, "share={}", s.as_str()),
            Permission::Devel => write!(f, "allow=devel"),
            Permission::Filesystem(p, a) => {
                let place = match p {
                    Place::Host => "host".to_owned(),
                    Place::Home => "home".to_owned(),
                    Place::Xdg(d) => format!("xdg-{d}"),
                    Place::HomePath(p) => format!("~/{p}"),
                    Place::Absolute(p) => p.clone(),
                };
                match a {
                    Access::ReadOnly => write!(f, "filesystem={place}:ro"),
                    Access::ReadWrite => write!(f, "filesystem={place}"),
                    Access::Create => write!(f, "filesystem={place}:create"),
                }
            }
            Permission::TalkName(n) => write!(f, "talk-name={n}"),
            Permission::OwnName(n) => write!(f, "own-name={n}"),
            Permission::Env(k, v) => write!(f, "env={k}={v}"),
            Permission::Persist(p) => write!(f, "persist={p}"),
            Permission::Memory(m) => write!(f, "memory={m}"),
            Permission::CpuWeight(w) => write!(f, "cpu-weight={w}"),
            Permission::IoWeight(w) => write!(f, "io-weight={w}"),
            Permission::Pids(p) => write!(f, "pids={p}"),
        }
    }
}

impl Socket {
    pub fn as_str(self) -> &'static str {
        match self {
            Socket::Wayland => "wayland",
            Socket::X11 => "x11",
            Socket::FallbackX11 => "fallback-x11",
            Socket::Pulseaudio => "pulseaudio",
            Socket::Pipewire => "pipewire",
            Socket::SessionBus => "session-bus",
            Socket::SystemBus => "system-bus",
            Socket::SshAuth => "ssh-auth",
            Socket::Cups => "cups",
        }
    }
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Dri => "dri",
            Device::Nvidia => "nvidia",
            Device::Camera => "camera",
            Device::Input => "input",
            Device::Usb => "usb",
            Device::Kvm => "kvm",
            Device::All => "all",
        }
    }
}

impl Share {
    pub fn as_str(self) -> &'static str {
        match self {
            Share::Network => "network",
            Share::Ipc => "ipc",
        }
    }
}

/// An ordered, de-duplicated set of permissions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PermissionSet(pub Vec<Permission>);

/// One line of the install review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReviewLine {
    pub permission: String,
    pub description: String,
    pub risk: Risk,
}

impl PermissionSet {
    /// Parse the `;`-separated list of an `org.berth.app.permissions` label.
    pub fn parse_list(s: &str) -> Result<PermissionSet, ParseError> {
        let mut set = PermissionSet::default();
        for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            set.insert(Permission::parse(item)?);
        }
        Ok(set)
    }

    pub fn insert(&mut self, p: Permission) {
        if !self.0.contains(&p) {
            self.0.push(p);
        }
    }

    pub fn contains(&self, p: &Permission) -> bool {
        self.0.contains(p)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    /// What `self` asks for that `granted` did not have: what a reinstall
    /// or upgrade must ask about again.
    pub fn added_since(&self, granted: &PermissionSet) -> PermissionSet {
        PermissionSet(
            self.0
                .iter()
                .filter(|p| !granted.contains(p))
                .cloned()
                .collect(),
        )
    }

    /// The review: highest risk first, then in the image's order.
    pub fn review(&self) -> Vec<ReviewLine> {
        let mut lines: Vec<(usize, ReviewLine)> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (description, risk) = p.describe();
                (
                    i,
                    ReviewLine {
                        permission: p.to_string(),
                        description,
                        risk,
                    },
                )
            })
            .collect();
        lines.sort_by(|(ia, a), (ib, b)| b.risk.cmp(&a.risk).then(ia.cmp(ib)));
        lines.into_iter().map(|(_, l)| l).collect()
    }

    pub fn highest_risk(&self) -> Option<Risk> {
        self.0.iter().map(|p| p.describe().1).max()
    }
}

impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&v.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trips_flatpak_vocabulary() {
        for s in [
            "socket=wayland",
            "socket=x11",
            "socket=fallback-x11",
            "socket=pulseaudio",
            "socket=pipewire",
            "socket=session-bus",
            "socket=system-bus",
            "socket=ssh-auth",
            "socket=cups",
            "device=dri",
            "device=nvidia",
            "device=camera",
            "device=input",
            "device=usb",
            "device=kvm",
            "device=all",
            "share=network",
            "share=ipc",
            "allow=devel",
            "filesystem=host",
            "filesystem=home:ro",
            "filesystem=xdg-documents",
            "filesystem=xdg-download/Sub:ro",
            "filesystem=~/Projects:create",
            "filesystem=/srv/data:ro",
            "talk-name=org.freedesktop.Notifications",
            "own-name=org.example.App.*",
            "env=LANG=C.UTF-8",
            "persist=.mozilla",
            "memory=536870912",
            "cpu-weight=200",
            "io-weight=50",
            "pids=100",
        ] {
            assert_eq!(p(s).to_string(), s, "{s}");
        }
        assert_eq!(p("memory=512M"), Permission::Memory(512 << 20));
        assert_eq!(p("filesystem=home:rw").to_string(), "filesystem=home");
    }

    #[test]
    fn refuses_bad_input() {
        for s in [
            "",
            "socket",
            "socket=bluetooth",
            "device=gpu",
            "share=everything",
            "filesystem=../etc",
            "filesystem=~/../x",
            "filesystem=/",
            "filesystem=xdg-secrets",
            "filesystem=/a:rx",
            "talk-name=notdotted",
            "talk-name=org..x",
            "env=A B=c",
            "env=novalue",
            "persist=/abs",
            "persist=../up",
            "memory=lots",
            "memory=0",
            "cpu-weight=20000",
            "frobnicate=yes",
            "filesystem=relative",
        ] {
            assert!(Permission::parse(s).is_err(), "{s:?} should be refused");
        }
    }

    #[test]
    fn review_is_ranked_and_plain() {
        let set = PermissionSet::parse_list(
            "socket=wayland; share=network ;filesystem=home;socket=pulseaudio;;socket=wayland",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.0.len(), 4, "duplicates and empty items dropped");
        let r = set.review();
        assert_eq!(r[0].description, "Read and write your whole home folder");
        assert_eq!(r[0].risk, Risk::High);
        assert_eq!(r.last().map(|l| l.risk), Some(Risk::Low));
        assert!(
            r.iter()
                .any(|l| l.description == "Use your microphone and speakers")
        );
        assert!(r.iter().any(|l| l.description == "Full network access"));
        assert_eq!(set.highest_risk(), Some(Risk::High));
    }

    #[test]
    fn only_new_permissions_need_consent_again() {
        let old = PermissionSet::parse_list("socket=wayland;share=network").unwrap_or_default();
        let new = PermissionSet::parse_list("socket=wayland;share=network;device=camera")
            .unwrap_or_default();
        assert_eq!(new.added_since(&old).to_string(), "device=camera");
        assert!(old.added_since(&new).0.is_empty());
    }
}
