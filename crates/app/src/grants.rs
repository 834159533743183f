//! From effective permissions to what the sandbox must provide: binds,
//! environment, namespaces, seccomp relaxations and limits. Pure: the
//! host's facts come in as `HostEnv`; the caller checks paths exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::permissions::{Access, Device, Permission, Place, Share, Socket};

/// What the host looks like, as far as grants are concerned.
#[derive(Clone, Debug, Default)]
pub struct HostEnv {
    pub uid: u32,
    pub home: PathBuf,
    /// `$XDG_RUNTIME_DIR` on the host.
    pub runtime_dir: Option<PathBuf>,
    /// XDG user dirs (`documents` -> /home/u/Documents), from user-dirs.dirs.
    pub xdg_dirs: BTreeMap<String, PathBuf>,
    pub display: Option<String>,
    pub wayland_display: Option<String>,
    pub xauthority: Option<PathBuf>,
    pub pulse_socket: Option<PathBuf>,
    pub pulse_cookie: Option<PathBuf>,
    pub session_bus: Option<PathBuf>,
    /// The host's NVIDIA userspace driver files (libraries, ICD and vendor
    /// JSON), which must match the kernel module.
    pub nvidia_files: Vec<PathBuf>,
}

/// Is this file part of NVIDIA's userspace driver (by name)?
pub fn is_nvidia_userspace(name: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "libnvidia-",
        "libcuda.so",
        "libcudadebugger.so",
        "libnvcuvid.so",
        "libnvoptix.so",
        "libEGL_nvidia.so",
        "libGLX_nvidia.so",
        "libGLESv1_CM_nvidia.so",
        "libGLESv2_nvidia.so",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || name == "nvidia_icd.json"
        || name == "10_nvidia.json"
}

/// Where NVIDIA's userspace files appear inside the sandbox.
pub const NVIDIA_DIR: &str = "/run/host/nvidia";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub src: PathBuf,
    pub dest: PathBuf,
    pub readonly: bool,
    /// Create the source directory on the host if it is missing.
    pub create: bool,
    /// The grant names the whole host or the whole home: only then may
    /// the source resolve (through symlinks) to `/` or hold the home.
    pub broad: bool,
    /// From a `filesystem=` grant (a place the app asked for), not a
    /// socket or device berth provides: berth's own state is masked in it.
    pub files: bool,
}

/// Where the filtered session bus goes: from the host's bus to a socket
/// the app sees at `inner`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusProxy {
    pub upstream: PathBuf,
    pub inner: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// The internet through pasta, in a network namespace of the app's own.
    pub network: bool,
    /// The host's network namespace (loopback services included).
    pub host_network: bool,
    /// 32-bit x86 system calls.
    pub multiarch: bool,
    pub ipc: bool,
    pub devel: bool,
    pub binds: Vec<Bind>,
    pub env: Vec<(String, String)>,
    /// X11 display number whose cookies the app gets (filtered Xauthority).
    pub x11_display: Option<u32>,
    /// Where the app expects a PulseAudio client.conf (the caller writes
    /// `PULSE_CLIENT_CONF` there): shared memory cannot cross the sandbox.
    pub pulse_client_conf: Option<PathBuf>,
    /// D-Bus names the app may talk to / own through the proxy.
    pub talk: Vec<String>,
    pub own: Vec<String>,
    /// The session bus, filtered: the caller runs xdg-dbus-proxy.
    pub bus_proxy: Option<BusProxy>,
    /// `share=lan`: the local network only (wins over `share=network`).
    pub lan: bool,
    /// `device=tun`: CAP_NET_ADMIN in the app's own network namespace.
    pub net_admin: bool,
    /// `dns=`: the app's own DNS servers.
    pub dns: Vec<String>,
    pub memory: Option<u64>,
    pub cpu_weight: Option<u64>,
    pub io_weight: Option<u64>,
    /// Bytes a second.
    pub io_read: Option<u64>,
    pub io_write: Option<u64>,
    pub pids: Option<u64>,
    /// MIME types (`type/subtype`, `type/*`) of opened files handed over
    /// writable.
    pub edit: Vec<String>,
    /// Grants that cannot be honoured here, with the reason.
    pub unavailable: Vec<String>,
}

/// The PulseAudio client settings for sandboxed apps, as Flatpak uses:
/// the server cannot open the sandbox's shared memory.
pub const PULSE_CLIENT_CONF: &str = "enable-shm=no\n";

/// Where the app sees its runtime dir.
pub fn inner_runtime_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/run/user/{uid}"))
}

/// `:1`, `:1.0`, `unix:1` -> 1. Remote displays are not socket grants.
pub fn display_number(display: &str) -> Option<u32> {
    let d = display.strip_prefix("unix").unwrap_or(display);
    let n = d.strip_prefix(':')?;
    n.split('.').next()?.parse().ok()
}

/// Parse `~/.config/user-dirs.dirs` (`XDG_DOCUMENTS_DIR="$HOME/Documents"`).
pub fn parse_user_dirs(text: &str, home: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let Some(name) = k.strip_prefix("XDG_").and_then(|k| k.strip_suffix("_DIR")) else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        let path = match v.strip_prefix("$HOME") {
            Some(rest) => home.join(rest.trim_start_matches('/')),
            None if v.starts_with('/') => PathBuf::from(v),
            None => continue,
        };
        out.insert(name.to_ascii_lowercase().replace('_', "-"), path);
    }
    out
}

/// The default XDG user dir when user-dirs.dirs does not say.
fn default_xdg(name: &str, home: &Path) -> PathBuf {
    let d = match name {
        "desktop" => "Desktop",
        "documents" => "Documents",
        "download" => "Downloads",
        "music" => "Music",
        "pictures" => "Pictures",
        "public-share" => "Public",
        "templates" => "Templates",
        "videos" => "Videos",
        other => other,
    };
    home.join(d)
}

pub fn compute(perms: &[Permission], host: &HostEnv) -> Grants {
    let mut g = Grants::default();
    let rt = inner_runtime_dir(host.uid);
    // A filesystem= grant (`files`, checked against berth's own state) or
    // a socket/device bind berth makes for the app.
    fn add(
        g: &mut Grants,
        src: PathBuf,
        dest: PathBuf,
        ro: bool,
        create: bool,
        broad: bool,
        files: bool,
    ) {
        if !g.binds.iter().any(|b| b.dest == dest) {
            g.binds.push(Bind {
                src,
                dest,
                readonly: ro,
                create,
                broad,
                files,
            });
        }
    }
    let bind_as =
        |g: &mut Grants, src, dest, ro, create, broad| add(g, src, dest, ro, create, broad, true);
    let bind = |g: &mut Grants, src, dest, ro, create| add(g, src, dest, ro, create, false, false);
    let wayland =
        perms.contains(&Permission::Socket(Socket::Wayland)) && host.wayland_display.is_some();
    let mut need_runtime = false;
    for p in perms {
        match p {
            Permission::Share(Share::Network) => g.network = true,
            Permission::Share(Share::Lan) => g.lan = true,
            Permission::Dns(a) => g.dns.push(a.to_string()),
            Permission::Share(Share::HostNetwork) => g.host_network = true,
            Permission::Multiarch => g.multiarch = true,
            Permission::Share(Share::Ipc) => g.ipc = true,
            Permission::Devel => g.devel = true,
            Permission::Memory(m) => g.memory = Some(*m),
            Permission::CpuWeight(w) => g.cpu_weight = Some(*w),
            Permission::Pids(n) => g.pids = Some(*n),
            Permission::Edit(m) => g.edit.push(m.clone()),
            Permission::IoWeight(w) => g.io_weight = Some(*w),
            Permission::IoRead(b) => g.io_read = Some(*b),
            Permission::IoWrite(b) => g.io_write = Some(*b),
            Permission::Env(k, v) => g.env.push((k.clone(), v.clone())),
            // The whole private home persists already.
            Permission::Persist(_) => {}
            Permission::Filesystem(place, access) => {
                let (readonly, create) = match access {
                    Access::ReadOnly => (true, false),
                    Access::ReadWrite => (false, false),
                    Access::Create => (false, true),
                };
                let path = match place {
                    Place::Host => {
                        // Like Flatpak: the host's file tree under /run/host,
                        // plus the usual places at their real paths.
                        for d in ["/home", "/media", "/mnt", "/opt", "/srv"] {
                            bind_as(&mut g, d.into(), d.into(), readonly, false, true);
                        }
                        bind_as(
                            &mut g,
                            "/".into(),
                            "/run/host/root".into(),
                            readonly,
                            false,
                            true,
                        );
                        continue;
                    }
                    Place::Home => {
                        let h = host.home.clone();
                        bind_as(&mut g, h.clone(), h, readonly, false, true);
                        continue;
                    }
                    Place::Xdg(d) => {
                        let (name, sub) = d.split_once('/').unwrap_or((d, ""));
                        let base = host
                            .xdg_dirs
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| default_xdg(name, &host.home));
                        if sub.is_empty() { base } else { base.join(sub) }
                    }
                    Place::HomePath(p) => host.home.join(p),
                    Place::Absolute(p) => PathBuf::from(p),
                };
                bind_as(&mut g, path.clone(), path, readonly, create, false);
            }
            Permission::Socket(Socket::Wayland) => match (&host.runtime_dir, &host.wayland_display)
            {
                (Some(r), Some(w)) => {
                    bind(&mut g, r.join(w), rt.join(w), false, false);
                    g.env.push(("WAYLAND_DISPLAY".into(), w.clone()));
                    need_runtime = true;
                }
                _ => g
                    .unavailable
                    .push("socket=wayland: no Wayland display (WAYLAND_DISPLAY unset)".into()),
            },
            Permission::Socket(s @ (Socket::X11 | Socket::FallbackX11)) => {
                if *s == Socket::FallbackX11 && wayland {
                    continue;
                }
                match host.display.as_deref().and_then(display_number) {
                    Some(n) => {
                        let sock = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
                        bind(&mut g, sock.clone(), sock, false, false);
                        g.env.push(("DISPLAY".into(), format!(":{n}")));
                        g.x11_display = Some(n);
                    }
                    None => g
                        .unavailable
                        .push("socket=x11: no local X display (DISPLAY unset or remote)".into()),
                }
            }
            Permission::Socket(Socket::Pulseaudio) => match &host.pulse_socket {
                Some(sock) => {
                    let inner = rt.join("pulse/native");
                    bind(&mut g, sock.clone(), inner.clone(), false, false);
                    g.env
                        .push(("PULSE_SERVER".into(), format!("unix:{}", inner.display())));
                    let conf = rt.join("pulse/client.conf");
                    g.env
                        .push(("PULSE_CLIENTCONFIG".into(), conf.display().to_string()));
                    g.pulse_client_conf = Some(conf);
                    if let Some(c) = &host.pulse_cookie {
                        let ic = rt.join("pulse/cookie");
                        bind(&mut g, c.clone(), ic.clone(), true, false);
                        g.env
                            .push(("PULSE_COOKIE".into(), ic.display().to_string()));
                    }
                    need_runtime = true;
                }
                None => g
                    .unavailable
                    .push("socket=pulseaudio: no PulseAudio socket found".into()),
            },
            Permission::Socket(Socket::SessionBus) => match &host.session_bus {
                Some(b) => {
                    let inner = rt.join("bus");
                    bind(&mut g, b.clone(), inner.clone(), false, false);
                    g.env.push((
                        "DBUS_SESSION_BUS_ADDRESS".into(),
                        format!("unix:path={}", inner.display()),
                    ));
                    need_runtime = true;
                }
                None => g
                    .unavailable
                    .push("socket=session-bus: no session bus".into()),
            },
            Permission::Socket(Socket::SystemBus) => {
                let s = PathBuf::from("/run/dbus/system_bus_socket");
                bind(&mut g, s.clone(), s, false, false);
            }
            Permission::Socket(other) => g
                .unavailable
                .push(format!("socket={}: not supported yet", other.as_str())),
            Permission::Device(d) => {
                let paths: &[&str] = match d {
                    Device::Dri => &["/dev/dri"],
                    Device::Kvm => &["/dev/kvm"],
                    // The LAN-only routes would be the app's to undo.
                    Device::Tun if perms.contains(&Permission::Share(Share::Lan)) => {
                        g.unavailable.push(
                            "device=tun: not with share=lan (the app could route around it)".into(),
                        );
                        &[]
                    }
                    Device::Tun => {
                        g.net_admin = true;
                        &["/dev/net/tun"]
                    }
                    Device::Input => &["/dev/input"],
                    Device::Usb => &["/dev/bus/usb"],
                    Device::Camera => &[
                        "/dev/video0",
                        "/dev/video1",
                        "/dev/video2",
                        "/dev/video3",
                        "/dev/media0",
                    ],
                    Device::Nvidia => &[
                        "/dev/nvidia0",
                        "/dev/nvidiactl",
                        "/dev/nvidia-uvm",
                        "/dev/nvidia-modeset",
                    ],
                    Device::All => &[
                        "/dev/dri",
                        "/dev/kvm",
                        "/dev/input",
                        "/dev/bus/usb",
                        "/dev/snd",
                        "/dev/video0",
                    ],
                };
                for p in paths {
                    bind(&mut g, PathBuf::from(p), PathBuf::from(p), false, false);
                }
                if *d == Device::Nvidia {
                    // The host's driver libraries, so userspace always matches
                    // the kernel module; the loader and ICD loaders are told.
                    if host.nvidia_files.is_empty() {
                        g.unavailable.push(
                            "device=nvidia: no NVIDIA driver libraries found on this computer"
                                .into(),
                        );
                    }
                    let dir = PathBuf::from(NVIDIA_DIR);
                    for f in &host.nvidia_files {
                        if let Some(name) = f.file_name() {
                            bind(&mut g, f.clone(), dir.join(name), true, false);
                        }
                    }
                    if !host.nvidia_files.is_empty() {
                        g.env
                            .push(("LD_LIBRARY_PATH".into(), dir.display().to_string()));
                        g.env.push((
                            "__EGL_VENDOR_LIBRARY_DIRS".into(),
                            dir.display().to_string(),
                        ));
                        if host
                            .nvidia_files
                            .iter()
                            .any(|f| f.ends_with("nvidia_icd.json"))
                        {
                            g.env.push((
                                "VK_ICD_FILENAMES".into(),
                                dir.join("nvidia_icd.json").display().to_string(),
                            ));
                        }
                    }
                }
            }
            Permission::TalkName(n) => g.talk.push(n.clone()),
            Permission::OwnName(n) => g.own.push(n.clone()),
        }
    }
    // Without socket=session-bus, the session bus goes through a filtering
    // proxy: the app may own its ID, talk to portals, and whatever it was
    // granted by name (Flatpak's defaults).
    let raw_bus = perms.contains(&Permission::Socket(Socket::SessionBus));
    if let Some(upstream) = host.session_bus.as_ref().filter(|_| !raw_bus) {
        let inner = rt.join("bus");
        g.env.push((
            "DBUS_SESSION_BUS_ADDRESS".into(),
            format!("unix:path={}", inner.display()),
        ));
        g.bus_proxy = Some(BusProxy {
            upstream: upstream.clone(),
            inner,
        });
        need_runtime = true;
    }
    if need_runtime {
        g.env
            .push(("XDG_RUNTIME_DIR".into(), rt.display().to_string()));
    }
    g
}

/// Arguments for xdg-dbus-proxy: filter, and allow what the grants say.
/// The portals as Flatpak allows them: calls to any portal, and the
/// signals portals broadcast on their own objects; the app's own names and
/// its MPRIS player's.
pub fn proxy_args(app_id: &str, g: &Grants) -> Vec<String> {
    let mut a = vec![
        "--filter".to_owned(),
        format!("--own={app_id}"),
        format!("--own={app_id}.*"),
        format!("--own=org.mpris.MediaPlayer2.{app_id}"),
        format!("--own=org.mpris.MediaPlayer2.{app_id}.*"),
        "--call=org.freedesktop.portal.*=*".to_owned(),
        "--broadcast=org.freedesktop.portal.*=@/org/freedesktop/portal/*".to_owned(),
    ];
    a.extend(g.talk.iter().map(|n| format!("--talk={n}")));
    a.extend(g.own.iter().map(|n| format!("--own={n}")));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostEnv {
        HostEnv {
            uid: 1000,
            home: "/home/a".into(),
            runtime_dir: Some("/run/user/1000".into()),
            xdg_dirs: parse_user_dirs(
                "XDG_DOCUMENTS_DIR=\"$HOME/Docs\"\n# c\nXDG_DOWNLOAD_DIR=\"/data/dl\"\n",
                Path::new("/home/a"),
            ),
            display: Some(":1".into()),
            wayland_display: None,
            xauthority: None,
            pulse_socket: Some("/run/user/1000/pulse/native".into()),
            pulse_cookie: None,
            session_bus: None,
            nvidia_files: vec![],
        }
    }

    fn perms(s: &str) -> Vec<Permission> {
        crate::PermissionSet::parse_list(s).unwrap_or_default().0
    }

    #[test]
    fn network_modes() {
        let g = compute(&perms("share=lan;dns=10.0.0.53;device=tun"), &host());
        assert!(g.lan && !g.network);
        assert_eq!(g.dns, ["10.0.0.53"]);
        // A tun beside the LAN-only routes would undo them: not given.
        assert!(!g.net_admin, "{:?}", g.unavailable);
        assert!(g.unavailable.iter().any(|u| u.starts_with("device=tun")));
        assert!(!g.binds.iter().any(|b| b.dest == Path::new("/dev/net/tun")));
        let g = compute(&perms("share=network;device=tun"), &host());
        assert!(g.network && g.net_admin);
        assert!(g.binds.iter().any(|b| b.dest == Path::new("/dev/net/tun")));
        let g = compute(&perms("io-weight=50;io-read=1M;io-write=2M"), &host());
        assert_eq!(
            (g.io_weight, g.io_read, g.io_write),
            (Some(50), Some(1 << 20), Some(2 << 20))
        );
        assert!(g.unavailable.is_empty());
    }

    #[test]
    fn folders_devices_and_network() {
        let g = compute(
            &perms(
                "share=network;filesystem=xdg-documents:ro;filesystem=xdg-download;filesystem=~/P:create;device=dri;env=A=b",
            ),
            &host(),
        );
        assert!(g.network && !g.ipc);
        let b = |d: &str| g.binds.iter().find(|b| b.dest == Path::new(d)).cloned();
        assert_eq!(b("/home/a/Docs").map(|b| b.readonly), Some(true));
        assert_eq!(b("/data/dl").map(|b| b.readonly), Some(false));
        assert_eq!(b("/home/a/P").map(|b| b.create), Some(true));
        assert!(b("/dev/dri").is_some());
        assert!(g.env.contains(&("A".into(), "b".into())));
    }

    #[test]
    fn display_and_sound_sockets() {
        let g = compute(&perms("socket=x11;socket=pulseaudio"), &host());
        assert_eq!(g.x11_display, Some(1));
        assert!(
            g.binds
                .iter()
                .any(|b| b.dest == Path::new("/tmp/.X11-unix/X1"))
        );
        assert!(g.env.contains(&("DISPLAY".into(), ":1".into())));
        assert!(g.env.contains(&(
            "PULSE_SERVER".into(),
            "unix:/run/user/1000/pulse/native".into()
        )));
        assert!(
            g.env
                .contains(&("XDG_RUNTIME_DIR".into(), "/run/user/1000".into()))
        );
        // fallback-x11 yields to Wayland.
        let mut h = host();
        h.wayland_display = Some("wayland-0".into());
        let g = compute(&perms("socket=wayland;socket=fallback-x11"), &h);
        assert_eq!(g.x11_display, None);
        assert!(
            g.binds
                .iter()
                .any(|b| b.dest == Path::new("/run/user/1000/wayland-0"))
        );
        assert_eq!(display_number("unix:2.0"), Some(2));
        assert_eq!(display_number("remote:0"), None);
    }

    #[test]
    fn unavailable_grants_are_reported() {
        let mut h = host();
        h.display = None;
        let g = compute(&perms("socket=x11;socket=wayland"), &h);
        assert_eq!(g.unavailable.len(), 2);
        assert!(g.binds.is_empty());
    }

    #[test]
    fn nvidia_driver_files_follow_the_host() {
        assert!(is_nvidia_userspace("libnvidia-glcore.so.550.54"));
        assert!(is_nvidia_userspace("libGLX_nvidia.so.0"));
        assert!(is_nvidia_userspace("nvidia_icd.json"));
        assert!(!is_nvidia_userspace("libGL.so.1") && !is_nvidia_userspace("libnvidia"));
        let mut h = host();
        h.nvidia_files = vec![
            "/usr/lib/x86_64-linux-gnu/libcuda.so.1".into(),
            "/usr/share/vulkan/icd.d/nvidia_icd.json".into(),
        ];
        let g = compute(&perms("device=nvidia"), &h);
        assert!(
            g.binds
                .iter()
                .any(|b| b.dest == Path::new("/run/host/nvidia/libcuda.so.1") && b.readonly)
        );
        assert!(
            g.binds
                .iter()
                .any(|b| b.dest == Path::new("/dev/nvidiactl"))
        );
        assert!(
            g.env
                .contains(&("LD_LIBRARY_PATH".into(), "/run/host/nvidia".into()))
        );
        assert!(g.env.contains(&(
            "VK_ICD_FILENAMES".into(),
            "/run/host/nvidia/nvidia_icd.json".into()
        )));
        assert!(
            compute(&perms("device=nvidia"), &host())
                .unavailable
                .iter()
                .any(|u| u.contains("NVIDIA"))
        );
    }

    #[test]
    fn session_bus_is_filtered_unless_granted_whole() {
        let mut h = host();
        h.session_bus = Some("/run/user/1000/bus".into());
        let g = compute(
            &perms("talk-name=org.freedesktop.Notifications;own-name=org.example.Extra"),
            &h,
        );
        let p = g.bus_proxy.clone().unwrap_or_else(|| panic!("a proxy"));
        assert_eq!(p.inner, Path::new("/run/user/1000/bus"));
        let args = proxy_args("org.example.App", &g);
        assert_eq!(
            args,
            vec![
                "--filter",
                "--own=org.example.App",
                "--own=org.example.App.*",
                "--own=org.mpris.MediaPlayer2.org.example.App",
                "--own=org.mpris.MediaPlayer2.org.example.App.*",
                "--call=org.freedesktop.portal.*=*",
                "--broadcast=org.freedesktop.portal.*=@/org/freedesktop/portal/*",
                "--talk=org.freedesktop.Notifications",
                "--own=org.example.Extra",
            ]
        );
        let raw = compute(&perms("socket=session-bus"), &h);
        assert!(raw.bus_proxy.is_none());
        assert!(
            raw.binds
                .iter()
                .any(|b| b.src == Path::new("/run/user/1000/bus"))
        );
    }
}
