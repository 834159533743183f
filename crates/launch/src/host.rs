//! What a launch reads from the host: the user, the terminal, the desktop's
//! display/sound/bus sockets, and the real paths behind grants. Reads only.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use berth_app::grants;
use berth_sandbox::plan::{HostInfo, Protected};

/// Where instance state lives: `$BERTH_RUNTIME_DIR`, else
/// `$XDG_RUNTIME_DIR/berth`, else `/run/berth` (root) or `/tmp/berth-UID`.
pub fn runtime_dir() -> PathBuf {
    let uid = rustix::process::getuid();
    if let Some(d) = std::env::var_os("BERTH_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(d)
    } else if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(x).join("berth")
    } else if uid.is_root() {
        PathBuf::from("/run/berth")
    } else {
        PathBuf::from(format!("/tmp/berth-{}", uid.as_raw()))
    }
}

/// [`runtime_dir`], created if needed, the user's alone (0700: instance
/// directories hold X cookies); refused when another user owns it.
pub fn ensure_runtime_dir() -> crate::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = runtime_dir();
    crate::error::io(
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("instances")),
        || format!("creating the runtime directory {}", dir.display()),
    )?;
    let meta = crate::error::io(std::fs::metadata(&dir), || {
        format!("reading the runtime directory {}", dir.display())
    })?;
    if meta.uid() != rustix::process::getuid().as_raw() {
        return Err(crate::Error::Invalid(format!(
            "runtime directory {} belongs to another user",
            dir.display()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(dir)
}

/// 12 hex digits, unique enough among one user's running instances.
pub fn new_instance_id() -> String {
    let mut b = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&(t as u64 ^ u64::from(std::process::id())).to_le_bytes()[..6]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The invoking user's name and the home path a sandbox gives them.
pub fn user_and_home() -> (String, String) {
    let uid = rustix::process::getuid().as_raw();
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && !u.contains([':', '\n']));
    let user = user.unwrap_or_else(|| {
        if uid == 0 {
            "root".into()
        } else {
            format!("user{uid}")
        }
    });
    let home = std::env::var("HOME")
        .ok()
        .filter(|h| h.starts_with('/') && h.len() > 1 && !h.contains([':', '\n']))
        .unwrap_or_else(|| {
            if uid == 0 {
                "/root".into()
            } else {
                format!("/home/{user}")
            }
        });
    (user, home)
}

/// The invoking user and terminal.
pub fn host_info(state_dir: PathBuf) -> HostInfo {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let (user, home) = user_and_home();
    // The user's terminal on any of the three: the app gets its own pty,
    // never the terminal itself (TIOCSTI, TIOCSETD, stty on the user's tty).
    let tty = std::io::stdin().is_terminal()
        || std::io::stdout().is_terminal()
        || std::io::stderr().is_terminal();
    HostInfo {
        resolv_conf: std::fs::read_to_string("/etc/resolv.conf").ok(),
        uid,
        gid,
        user,
        home,
        term: std::env::var("TERM").ok().filter(|_| tty),
        tty,
        state_dir,
    }
}

/// The host's display, sound and folder facts, for app grants.
pub fn host_env() -> grants::HostEnv {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = PathBuf::from(var("HOME").unwrap_or_else(|| "/".into()));
    let runtime_dir = var("XDG_RUNTIME_DIR").map(PathBuf::from);
    let config = var("XDG_CONFIG_HOME").map_or_else(|| home.join(".config"), PathBuf::from);
    let xdg_dirs = std::fs::read_to_string(config.join("user-dirs.dirs"))
        .map(|t| grants::parse_user_dirs(&t, &home))
        .unwrap_or_default();
    let existing = |p: PathBuf| p.exists().then_some(p);
    let pulse_socket = var("PULSE_SERVER")
        .and_then(|s| s.strip_prefix("unix:").map(PathBuf::from))
        .or_else(|| runtime_dir.as_ref().map(|r| r.join("pulse/native")))
        .and_then(existing);
    let session_bus = var("DBUS_SESSION_BUS_ADDRESS")
        .and_then(|a| {
            a.split(',')
                .find_map(|p| p.strip_prefix("unix:path=").map(PathBuf::from))
        })
        .or_else(|| runtime_dir.as_ref().map(|r| r.join("bus")))
        .and_then(existing);
    // NVIDIA's userspace driver, wherever the distribution put it.
    let mut nvidia_files = Vec::new();
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/share/glvnd/egl_vendor.d",
        "/usr/share/vulkan/icd.d",
        "/etc/vulkan/icd.d",
    ] {
        if let Ok(rd) = std::fs::read_dir(d) {
            nvidia_files.extend(
                rd.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(grants::is_nvidia_userspace)
                    })
                    .filter_map(|e| std::fs::canonicalize(e.path()).ok().map(|_| e.path())),
            );
        }
    }
    grants::HostEnv {
        nvidia_files,
        uid: rustix::process::getuid().as_raw(),
        xauthority: var("XAUTHORITY")
            .map(PathBuf::from)
            .or_else(|| existing(home.join(".Xauthority"))),
        pulse_cookie: var("PULSE_COOKIE")
            .map(PathBuf::from)
            .or_else(|| existing(config.join("pulse/cookie"))),
        display: var("DISPLAY"),
        wayland_display: var("WAYLAND_DISPLAY"),
        pulse_socket,
        session_bus,
        runtime_dir,
        xdg_dirs,
        home,
    }
}

/// The real path of `p`, also when its last components do not exist yet
/// (a grant with `:create`): the deepest existing ancestor, resolved, with
/// the rest appended. Grants are normalized, so the rest holds no `..`.
pub fn real_path(p: &Path) -> std::io::Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(r) => Ok(r),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
                return Err(e);
            };
            Ok(real_path(parent)?.join(name))
        }
        Err(e) => Err(e),
    }
}

/// The real path a filesystem grant exposes. Only a grant of the whole
/// host or home may turn out to be `/` or to hold the home: a symlink
/// planted at a granted path must not widen the grant.
pub fn grant_source(
    src: &Path,
    home: &Path,
    broad: bool,
    readonly: bool,
) -> Result<PathBuf, String> {
    use berth_app::permissions::{Access, Place};
    let real = real_path(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let real_home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_owned());
    let widened = || {
        Err(format!(
            "{} leads to {}, which is more than was granted",
            src.display(),
            real.display()
        ))
    };
    if !broad && (real == Path::new("/") || real_home.starts_with(&real)) {
        return widened();
    }
    // A symlink (planted by an app through another grant, say) must not
    // turn a reviewed place into a riskier one: judge the real path as the
    // review judged the written one.
    let access = if readonly {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let risk = |p: &Path, h: &Path| {
        berth_app::Permission::Filesystem(Place::Absolute(p.display().to_string()), access)
            .describe(h)
            .1
    };
    if !broad && real != src && risk(&real, &real_home) > risk(src, home) {
        return widened();
    }
    Ok(real)
}

/// berth's own files: no grant may reach its store, exports, overrides,
/// configuration or instance state; its executables stay read-only.
/// Reads only: a missing configuration directory is left to the apply
/// step to create ([`config_dir`]), and masked there.
pub fn protected_paths(store_root: &Path, state: &Path) -> Vec<Protected> {
    let mut out = Vec::new();
    let mut add = |p: PathBuf, hide: bool| {
        let p = real_path(&p).unwrap_or(p);
        if !out.iter().any(|q: &Protected| q.path == p) {
            out.push(Protected { path: p, hide });
        }
    };
    add(store_root.to_owned(), true);
    add(state.to_owned(), true);
    if let Some(c) = config_dir() {
        add(c, true);
    }
    if let Ok(exe) = std::env::current_exe() {
        add(exe, false);
    }
    // berth's other programs: beside this one, and wherever the front
    // door and the full command line it becomes are.
    use crate::programs;
    for p in [programs::FRONT_DOOR, programs::CLI, programs::GUI] {
        if let Some(p) = programs::beside_me(p) {
            add(p, false);
        }
    }
    if let Ok(p) = programs::full_cli() {
        add(p, false);
    }
    if let Some(p) = std::env::var_os(programs::FRONT_DOOR_ENV)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.exists())
    {
        add(p, false);
    }
    out
}

/// berth's configuration directory (its signature policy): it must exist
/// to be masked, or an app granted the home could create it.
pub fn config_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")))?;
    Some(config.join("berth"))
}

/// `program` on `PATH` (or, without one, the default search path), as
/// `exec` would find it.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The user's X cookies for display `n` only, or None when there are none
/// to pass (a note says why when the file is broken).
pub fn filtered_xauthority(
    host: &grants::HostEnv,
    n: u32,
    notes: &mut Vec<String>,
) -> Option<Vec<u8>> {
    let src = host.xauthority.as_ref()?;
    let bytes = std::fs::read(src).ok()?;
    let Some(entries) = berth_app::xauth::parse(&bytes) else {
        notes.push(format!(
            "warning: {} is not a valid Xauthority file; X11 cookies not passed",
            src.display()
        ));
        return None;
    };
    let kept = berth_app::xauth::filter_for_display(&entries, n);
    (!kept.is_empty()).then(|| berth_app::xauth::serialize(&kept))
}
