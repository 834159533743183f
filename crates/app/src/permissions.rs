//! Permissions, in Flatpak's words so users' knowledge carries over:
//! `socket=`, `device=`, `share=`, `filesystem=`, `talk-name=`, `own-name=`,
//! `env=`, `persist=`, `allow=`, and resource limits. Each parses from and
//! prints back to its text form, and explains itself in plain words with a
//! risk level for the install review.
//!
//! A permission has one canonical form: parsing normalizes (`/a/./b/`,
//! `~/.`, `//`), and printing gives back exactly that form, which parses to
//! the same value. The review, the stored deployment and the run all use
//! it, so what the user read is what the app gets.

use std::fmt;
use std::path::Path;

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
    /// `/dev/net/tun` and CAP_NET_ADMIN in the app's own network namespace:
    /// its own VPN (openvpn, wireguard-go) and routes, nobody else's.
    Tun,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Share {
    /// The internet through user-mode networking (pasta), in a network
    /// namespace of its own.
    Network,
    /// The local network only (private and link-local addresses), through
    /// pasta in a network namespace of its own: not the internet.
    Lan,
    Ipc,
    /// The host's own network namespace, with its loopback services.
    HostNetwork,
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
    /// `allow=multiarch`: 32-bit x86 programs (Wine, Steam).
    Multiarch,
    Memory(u64),
    CpuWeight(u64),
    IoWeight(u64),
    /// `io-read=10M`: read at most this many bytes a second from the
    /// disks the app's files are on (cgroup io.max / blkio throttle).
    IoRead(u64),
    /// `io-write=10M`: the same for writes.
    IoWrite(u64),
    /// `dns=9.9.9.9`: a DNS server of the app's own (an IP address), in
    /// place of the host's resolver; repeatable.
    Dns(std::net::IpAddr),
    Pids(u64),
    /// `edit=text/plain`, `edit=image/*`: a file of this type the user
    /// opens with the app (from a menu or file manager) is handed over
    /// writable; any other, read-only.
    Edit(String),
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

/// `type/subtype` or `type/*` (every subtype of a media type).
fn valid_edit_pattern(v: &str) -> bool {
    match v.strip_suffix("/*") {
        Some(media) => {
            !media.contains('/') && crate::desktop::valid_mime_type(&format!("{media}/x"))
        }
        None => crate::desktop::valid_mime_type(v),
    }
}

/// Normalize a relative path: drop empty and `.` components; `..` is
/// refused, and so are components that begin or end with spaces (they
/// would not survive the trimming of the text form). `Some("")` means the
/// base itself.
fn norm_rel(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c if c.trim() != c => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Characters a permission never contains: controls (they could rewrite
/// the review on a terminal), and the list and mode separators.
fn bad_char(c: char) -> bool {
    crate::text::is_unsafe(c) || c == ';'
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

/// Most permissions one app may ask for.
pub const MAX_PERMISSIONS: usize = 64;
/// Longest permission text: a review line must fit a screen.
pub const MAX_PERMISSION_LEN: usize = 400;

impl Permission {
    pub fn parse(text: &str) -> Result<Permission, ParseError> {
        let t = text.trim();
        if t.len() > MAX_PERMISSION_LEN {
            return Err(err(
                &t.chars().take(40).collect::<String>(),
                format!("longer than {MAX_PERMISSION_LEN} characters"),
            ));
        }
        if t.contains("   ") {
            // Runs of spaces push fake text into a review line's place.
            return Err(err(t, "runs of spaces are not allowed"));
        }
        if t.chars().any(bad_char) {
            return Err(err(
                t,
                "control characters, invisible formatting characters and ';' are not allowed",
            ));
        }
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
                "tun" => Device::Tun,
                "all" => Device::All,
                _ => return Err(unknown("device", "dri nvidia camera input usb kvm tun all")),
            }),
            "share" => Permission::Share(match value {
                "network" => Share::Network,
                "lan" => Share::Lan,
                "ipc" => Share::Ipc,
                "host-network" => Share::HostNetwork,
                _ => return Err(unknown("share", "network lan ipc host-network")),
            }),
            "allow" => match value {
                "devel" => Permission::Devel,
                "multiarch" => Permission::Multiarch,
                _ => return Err(unknown("allow", "devel multiarch")),
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
                if place.contains(':') {
                    return Err(err(t, "':' is not allowed in a path"));
                }
                let dotdot = || {
                    err(
                        t,
                        "path must not contain '..' or names that begin or end with spaces",
                    )
                };
                let place = match place {
                    "host" => Place::Host,
                    "home" | "~" => Place::Home,
                    p if p.starts_with("xdg-") => {
                        let rel = norm_rel(&p[4..]).ok_or_else(dotdot)?;
                        let (dir, _) = rel.split_once('/').unwrap_or((&rel, ""));
                        if !XDG_DIRS.contains(&dir) {
                            return Err(err(
                                t,
                                format!(
                                    "unknown XDG directory; one of: {}",
                                    XDG_DIRS.map(|d| format!("xdg-{d}")).join(" ")
                                ),
                            ));
                        }
                        Place::Xdg(rel)
                    }
                    p if p.starts_with("~/") => match norm_rel(&p[2..]).ok_or_else(dotdot)? {
                        r if r.is_empty() => Place::Home,
                        r => Place::HomePath(r),
                    },
                    p if p.starts_with('/') => match norm_rel(p).ok_or_else(dotdot)? {
                        // `/`, `/.`, `//`: the whole filesystem, by its name.
                        r if r.is_empty() => Place::Host,
                        r => Place::Absolute(format!("/{r}")),
                    },
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
            "persist" => match norm_rel(value).filter(|_| !value.starts_with('/')) {
                Some(r) if !r.is_empty() => Permission::Persist(r),
                _ => {
                    return Err(err(
                        t,
                        "persist= takes a path relative to home, without '..'",
                    ));
                }
            },
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
            "dns" => Permission::Dns(
                value
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| err(t, "expected an IP address, e.g. dns=9.9.9.9"))?,
            ),
            "io-read" => Permission::IoRead(parse_number(t, value)?),
            "io-write" => Permission::IoWrite(parse_number(t, value)?),
            "pids" => Permission::Pids(parse_number(t, value)?),
            "edit" => {
                if !valid_edit_pattern(value) {
                    return Err(err(t, "expected a MIME type like text/plain, or text/*"));
                }
                Permission::Edit(value.to_ascii_lowercase())
            }
            _ => {
                return Err(err(
                    t,
                    "unknown key; one of: socket device share filesystem talk-name own-name env persist allow memory cpu-weight io-weight io-read io-write pids edit dns",
                ));
            }
        })
    }

    /// The permission in plain words, and how much it exposes. `home` is
    /// the user's home folder: a path that is it or holds it counts as
    /// the home.
    pub fn describe(&self, home: &Path) -> (String, Risk) {
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
            Permission::Device(Device::Tun) => (
                s(
                    "Run its own VPN: create network devices and change the routes and firewall of its own network (not this computer's); this opens more of the kernel to it",
                ),
                High,
            ),
            Permission::Device(Device::All) => (s("Use every device on the computer"), High),
            Permission::Share(Share::Network) => (
                s(
                    "Use the internet, through a network of its own (not this computer's local services)",
                ),
                Medium,
            ),
            Permission::Share(Share::Lan) => (
                s(
                    "Reach devices on your local network (home or office), not the internet, through a network of its own",
                ),
                Medium,
            ),
            Permission::Dns(a) => (format!("Look names up with the DNS server {a}"), Low),
            Permission::Share(Share::HostNetwork) => (
                s(
                    "Share this computer's own network: also services meant only for this computer (localhost, X11 and D-Bus sockets)",
                ),
                High,
            ),
            Permission::Share(Share::Ipc) => (
                s("Share memory with other programs (IPC namespace), needed by some X11 apps"),
                Low,
            ),
            Permission::Devel => (
                s("Debug other programs in its sandbox (ptrace, perf)"),
                Medium,
            ),
            Permission::Multiarch => (s("Run 32-bit programs"), Low),
            Permission::Filesystem(place, access) => describe_files(place, *access, home),
            Permission::TalkName(n) if dangerous_bus_name(n) => (
                format!(
                    "Talk to the service {n}, which can run programs or read secrets outside the sandbox"
                ),
                High,
            ),
            Permission::TalkName(n) => (format!("Talk to the service {n}"), Medium),
            Permission::OwnName(n)
                if dangerous_bus_name(n) || crate::metadata::reserved_namespace(n).is_some() =>
            {
                (
                    format!(
                        "Offer the service {n}, taking the place of the desktop's own (it would receive what other programs send there)"
                    ),
                    High,
                )
            }
            Permission::OwnName(n) => (format!("Offer the service {n} to other apps"), Medium),
            Permission::Env(k, v) => (format!("Set {k}={v} in its environment"), Low),
            Permission::Persist(p) => (format!("Keep ~/{p} in its own data between runs"), Low),
            Permission::Memory(m) => (format!("Use at most {} MiB of memory", m >> 20), Low),
            Permission::CpuWeight(w) => (format!("CPU weight {w} (default 100)"), Low),
            Permission::IoWeight(w) => (format!("I/O weight {w} (default 100)"), Low),
            Permission::IoRead(b) => (
                format!("Read from disk at most {} KiB a second", b >> 10),
                Low,
            ),
            Permission::IoWrite(b) => (
                format!("Write to disk at most {} KiB a second", b >> 10),
                Low,
            ),
            Permission::Pids(p) => (format!("Run at most {p} processes"), Low),
            // Every stream type inherits application/octet-stream, and
            // every text type text/plain.
            Permission::Edit(m) if m == "application/octet-stream" => {
                (s("Change any file you open with it"), Low)
            }
            Permission::Edit(m) if m == "text/plain" || m == "text/*" => (
                s("Change the text files you open with it (scripts and settings files included)"),
                Low,
            ),
            Permission::Edit(m) => match m.strip_suffix("/*") {
                Some(media) => (
                    format!("Change the {media} files you open with it (any {m} type)"),
                    Low,
                ),
                None => (
                    format!("Change the files you open with it that are {m}, or a kind of it"),
                    Low,
                ),
            },
        }
    }
}

/// Home files whose contents other programs run later, outside the
/// sandbox: write access to them is write access to the user's session.
pub const RUNS_CODE_LATER: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".xprofile",
    ".xsession",
    ".xsessionrc",
    ".xinitrc",
    ".pam_environment",
    ".gitconfig",
    ".config/git",
    ".config/fish",
    ".config/autostart",
    ".config/environment.d",
    ".config/systemd",
    ".config/berth",
    ".local/share/applications",
    ".local/share/dbus-1",
    ".local/share/systemd",
    ".local/share/flatpak",
    ".local/share/berth",
    ".local/bin",
    "bin",
    ".cargo/bin",
    ".config/plasma-workspace",
    ".config/kdedefaults",
    ".config/dconf",
    ".config/mimeapps.list",
    ".local/share/mime",
    ".local/lib",
    ".vimrc",
    ".config/nvim",
    ".emacs",
    ".emacs.d",
    ".config/openbox",
    ".config/i3",
    ".config/sway",
    ".config/hypr",
    ".xbindkeysrc",
    ".npmrc",
    ".config/pip",
    ".pythonrc",
    ".inputrc",
];
/// Home files that hold keys and passwords.
pub const SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".pki",
    ".password-store",
    ".local/share/keyrings",
    ".docker",
    ".config/containers",
    ".aws",
    ".kube",
    ".netrc",
    ".mozilla",
];
/// Host paths under which live other programs' sockets and devices.
const SOCKETS_AND_DEVICES: &[&str] = &[
    "/run", "/var/run", "/proc", "/sys", "/dev", "/tmp", "/var/tmp",
];
/// System files: writing them changes what every program runs.
const SYSTEM: &[&str] = &[
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/var",
    "/opt/berth",
];

/// `a` is `b` or one of its ancestors (component-wise).
fn covers(a: &Path, b: &Path) -> bool {
    b.starts_with(a)
}

/// One of `list` is `p`, holds it, or lies inside it.
fn touches(p: &Path, list: &[&str], base: &Path) -> bool {
    list.iter().any(|l| {
        let l = base.join(l);
        covers(p, &l) || covers(&l, p)
    })
}

fn describe_files(place: &Place, access: Access, home: &Path) -> (String, Risk) {
    use Risk::*;
    let verb = if access == Access::ReadOnly {
        "Read"
    } else {
        "Read and write"
    };
    let rw = access != Access::ReadOnly;
    let what = match place {
        Place::Host => "all files on the computer".to_owned(),
        Place::Home => "your whole home folder".to_owned(),
        Place::Xdg(d) => format!("your {} folder", d.replace('-', " ")),
        Place::HomePath(p) => format!("~/{p} in your home folder"),
        Place::Absolute(p) => p.clone(),
    };
    let (risk, why) = match place {
        Place::Host | Place::Home => (High, ""),
        Place::Xdg(_) => (if rw { Medium } else { Low }, ""),
        Place::HomePath(p) => {
            let p = home.join(p);
            if touches(&p, SECRETS, home) {
                (High, " (keys and passwords)")
            } else if touches(&p, RUNS_CODE_LATER, home) {
                (
                    if rw { High } else { Medium },
                    " (files that start programs later, outside the sandbox)",
                )
            } else {
                (if rw { Medium } else { Low }, "")
            }
        }
        Place::Absolute(a) => {
            let p = Path::new(a);
            if p == home {
                return describe_files(&Place::Home, access, home);
            }
            if covers(p, home) || covers(p, Path::new("/home")) || covers(p, Path::new("/root")) {
                (High, " (this includes home folders)")
            } else if p.starts_with(home) {
                // An absolute spelling of a place in the home.
                let rel = p.strip_prefix(home).unwrap_or(p);
                return describe_files(&Place::HomePath(rel.display().to_string()), access, home);
            } else if touches(p, SOCKETS_AND_DEVICES, Path::new("/")) {
                (High, " (other programs' sockets and devices)")
            } else if touches(p, SYSTEM, Path::new("/")) {
                (if rw { High } else { Medium }, " (system files)")
            } else {
                (if rw { Medium } else { Low }, "")
            }
        }
    };
    (format!("{verb} {what}{why}"), risk)
}

/// Bus names that are a way out: they start host commands, hand out
/// secrets, change the desktop's settings or bypass the portals' checks.
fn dangerous_bus_name(n: &str) -> bool {
    const OUT: &[&str] = &[
        "org.freedesktop.Flatpak",
        "org.freedesktop.systemd1",
        "org.freedesktop.secrets",
        "org.freedesktop.impl.portal",
        "org.freedesktop.DBus",
        "org.gnome.Shell",
        "org.gnome.keyring",
        "org.gnome.SessionManager",
        "org.kde.KWin",
        "org.kde.plasmashell",
        "org.kde.klauncher5",
        "org.kde.kwalletd5",
        "org.kde.kwalletd6",
        "org.kde.konsole",
        "org.gnome.Terminal",
        "org.gnome.keyring.SystemPrompter",
        "org.gtk.vfs",
        "ca.desrt.dconf",
        "org.berth",
    ];
    let base = n.strip_suffix(".*").unwrap_or(n);
    OUT.iter().any(|o| {
        // The name is one of these, inside one, or (a prefix grant) holds one.
        base == *o
            || base.starts_with(&format!("{o}."))
            || (n.ends_with(".*") && o.starts_with(&format!("{base}.")))
    })
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Socket(s) => write!(f, "socket={}", s.as_str()),
            Permission::Device(d) => write!(f, "device={}", d.as_str()),
            Permission::Share(s) => write!(f, "share={}", s.as_str()),
            Permission::Devel => write!(f, "allow=devel"),
            Permission::Multiarch => write!(f, "allow=multiarch"),
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
            Permission::IoRead(b) => write!(f, "io-read={b}"),
            Permission::Dns(a) => write!(f, "dns={a}"),
            Permission::IoWrite(b) => write!(f, "io-write={b}"),
            Permission::Pids(p) => write!(f, "pids={p}"),
            Permission::Edit(m) => write!(f, "edit={m}"),
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
            Device::Tun => "tun",
            Device::All => "all",
        }
    }
}

impl Share {
    pub fn as_str(self) -> &'static str {
        match self {
            Share::Network => "network",
            Share::Lan => "lan",
            Share::Ipc => "ipc",
            Share::HostNetwork => "host-network",
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
        // A review the user can read: not so long that its high-risk lines
        // scroll away above the question.
        if set.0.len() > MAX_PERMISSIONS {
            return Err(err(
                &format!("{} permissions", set.0.len()),
                format!("an app may ask for at most {MAX_PERMISSIONS}"),
            ));
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
    pub fn review(&self, home: &Path) -> Vec<ReviewLine> {
        let mut lines: Vec<(usize, ReviewLine)> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (description, risk) = p.describe(home);
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

    pub fn highest_risk(&self, home: &Path) -> Option<Risk> {
        self.0.iter().map(|p| p.describe(home).1).max()
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
            "device=tun",
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
            "io-read=1048576",
            "io-write=2097152",
            "share=lan",
            "dns=9.9.9.9",
            "dns=2620:fe::fe",
            "pids=100",
            "edit=text/plain",
            "edit=image/*",
            "edit=application/vnd.oasis.opendocument.text",
        ] {
            assert_eq!(p(s).to_string(), s, "{s}");
        }
        assert_eq!(p("edit=Text/Plain").to_string(), "edit=text/plain");
        assert_eq!(p("memory=512M"), Permission::Memory(512 << 20));
        assert_eq!(p("io-read=10M"), Permission::IoRead(10 << 20));
        assert_eq!(p("dns=2620:00fe::00fe").to_string(), "dns=2620:fe::fe");
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
            "filesystem=xdg-secrets",
            "filesystem=/opt/a:b:rw",
            "filesystem=~/.ssh:create:rw",
            "filesystem=/a\u{1b}[1A",
            "env=A=\u{1b}]0;x\u{7}",
            "env=A=\u{202e}",
            "filesystem=xdg-documents/..",
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
            "dns=example.org",
            "dns=9.9.9.9:53",
            "io-read=fast",
            "frobnicate=yes",
            "filesystem=relative",
            "edit=text",
            "edit=*/*",
            "edit=text/**",
            "edit=text/plain/x",
            "edit=/plain",
            "edit=text/",
            "edit=te xt/plain",
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
        let r = set.review(Path::new("/home/u"));
        assert_eq!(r[0].description, "Read and write your whole home folder");
        assert_eq!(r[0].risk, Risk::High);
        assert_eq!(r.last().map(|l| l.risk), Some(Risk::Low));
        assert!(
            r.iter()
                .any(|l| l.description == "Use your microphone and speakers")
        );
        assert!(
            r.iter()
                .any(|l| l.description.starts_with("Use the internet"))
        );
        assert_eq!(set.highest_risk(Path::new("/home/u")), Some(Risk::High));
    }

    #[test]
    fn only_new_permissions_need_consent_again() {
        let old = PermissionSet::parse_list("socket=wayland;share=network").unwrap_or_default();
        let new = PermissionSet::parse_list("socket=wayland;share=network;device=camera")
            .unwrap_or_default();
        assert_eq!(new.added_since(&old).to_string(), "device=camera");
        assert!(old.added_since(&new).0.is_empty());
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        /// Permission-like text: known keys, values from a small alphabet
        /// of the characters that matter to normalization.
        fn text() -> impl Strategy<Value = String> {
            let key = prop::sample::select(vec![
                "socket",
                "device",
                "share",
                "filesystem",
                "talk-name",
                "own-name",
                "env",
                "persist",
                "allow",
                "memory",
                "cpu-weight",
                "io-weight",
                "io-read",
                "io-write",
                "dns",
                "pids",
                "edit",
            ]);
            let value = prop::string::string_regex(
                "(~|/|xdg-|host|home|wayland|network|devel|org\\.x\\.Y|[a-z./~:=;]|ro|rw|create|\\.\\.|[0-9]{1,3}[kM]?| |\\x1b|\\u202e){0,8}",
            )
            .unwrap_or_else(|e| panic!("{e}"));
            (key, value).prop_map(|(k, v)| format!("{k}={v}"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// One canonical form: what parses prints back to a text that
            /// parses to the same value and prints the same again.
            #[test]
            fn canonical_round_trip(t in text()) {
                if let Ok(p) = Permission::parse(&t) {
                    let shown = p.to_string();
                    let again = Permission::parse(&shown);
                    prop_assert_eq!(again.as_ref(), Ok(&p), "{} -> {}", t, shown);
                    prop_assert_eq!(again.map(|q| q.to_string()).ok(), Some(shown.clone()));
                    prop_assert!(!shown.chars().any(crate::text::is_unsafe));
                    // The review never shows an empty or hidden place.
                    let (d, _) = p.describe(Path::new("/home/u"));
                    prop_assert!(!d.trim_end().ends_with("write") && !d.ends_with("Read "));
                }
            }

            /// A stored list reads back as exactly the reviewed set.
            #[test]
            fn list_round_trip(items in prop::collection::vec(text(), 0..6)) {
                if let Ok(set) = PermissionSet::parse_list(&items.join(";")) {
                    prop_assert_eq!(PermissionSet::parse_list(&set.to_string()), Ok(set));
                }
            }

            /// Spellings of the root and the home are reviewed as what they are.
            #[test]
            fn root_and_home_spellings(dots in prop::collection::vec(prop::sample::select(vec!["", ".", "/"]), 0..5), home in any::<bool>()) {
                let tail: String = dots.iter().map(|d| format!("/{d}")).collect();
                let t = if home { format!("filesystem=~{tail}") } else { format!("filesystem=/{tail}") };
                let p = Permission::parse(&t);
                let want = if home { Place::Home } else { Place::Host };
                if home && tail.is_empty() {
                    prop_assert_eq!(p, Ok(Permission::Filesystem(Place::Home, Access::ReadWrite)));
                } else {
                    prop_assert_eq!(p, Ok(Permission::Filesystem(want, Access::ReadWrite)));
                }
            }
        }
    }

    #[test]
    fn risk_follows_the_effect() {
        let home = Path::new("/home/u");
        let risk = |s: &str| p(s).describe(home).1;
        for s in [
            "filesystem=/",
            "filesystem=/.",
            "filesystem=//",
            "filesystem=~/.",
            "filesystem=/home",
            "filesystem=/home/u",
            "filesystem=/home/u/",
            "filesystem=~/.bashrc",
            "filesystem=~/.config/autostart",
            "filesystem=~/.config/autostart/x.desktop",
            "filesystem=~/.local/share/applications",
            "filesystem=~/.config",
            "filesystem=~/.local",
            "filesystem=/home/u/.profile",
            "filesystem=~/.ssh:ro",
            "filesystem=/run",
            "filesystem=/run/user/1000/bus",
            "filesystem=/proc",
            "filesystem=/sys:ro",
            "filesystem=/dev",
            "filesystem=/etc",
            "filesystem=/usr/lib",
            "filesystem=/tmp",
            "share=host-network",
            "talk-name=org.freedesktop.Flatpak",
            "talk-name=org.freedesktop.*",
            "talk-name=org.freedesktop.systemd1",
            "talk-name=org.gnome.Terminal",
            "own-name=org.freedesktop.portal.Desktop",
            "own-name=org.gnome.keyring.SystemPrompter",
            "filesystem=~/.config/plasma-workspace/env",
            "filesystem=~/.local/lib/python3.11/site-packages",
        ] {
            assert_eq!(risk(s), Risk::High, "{s}");
        }
        assert_eq!(p("filesystem=/.").to_string(), "filesystem=host");
        assert_eq!(p("filesystem=~/.").to_string(), "filesystem=home");
        assert_eq!(
            p("filesystem=/srv/./data//x/:ro").to_string(),
            "filesystem=/srv/data/x:ro"
        );
        assert_eq!(risk("filesystem=/srv/data"), Risk::Medium);
        assert_eq!(risk("filesystem=~/Projects:ro"), Risk::Low);
        assert_eq!(risk("filesystem=/usr/share/fonts:ro"), Risk::Medium);
        assert_eq!(
            risk("talk-name=org.freedesktop.Notifications"),
            Risk::Medium
        );
        assert_eq!(risk("own-name=org.example.App.Extra"), Risk::Medium);
        // A review line cannot be padded out of sight, nor the list.
        assert!(Permission::parse(&format!("env=A={}x", " ".repeat(50))).is_err());
        assert!(Permission::parse(&format!("env=A={}", "x".repeat(500))).is_err());
        let many: Vec<String> = (0..65).map(|i| format!("env=V{i}=x")).collect();
        assert!(PermissionSet::parse_list(&many.join(";")).is_err());
    }
}
