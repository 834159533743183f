//! berth's programs and where they find each other. `berth` is the front
//! door: it launches apps itself and becomes the full command line,
//! `berth-cli`, for everything else; `berth-gui` is the window front end.
//! They are installed side by side (`cargo install`, `berth integrate`).

use std::path::{Path, PathBuf};

/// The front door, which menu entries and front ends call.
pub const FRONT_DOOR: &str = "berth";
/// The full command line.
pub const CLI: &str = "berth-cli";
/// The installer and permission manager.
pub const GUI: &str = "berth-gui";
/// Where the front door was, told to the full command line it becomes.
pub const FRONT_DOOR_ENV: &str = "BERTH_FRONT_DOOR";

pub fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program `name` beside this one, if it is there.
pub fn beside_me(name: &str) -> Option<PathBuf> {
    let p = std::env::current_exe().ok()?.with_file_name(name);
    is_executable_file(&p).then_some(p)
}

/// The full command line for the front door to become: `$BERTH_CLI`, else
/// the one beside it, else the one built with it (a `berth` copied away
/// alone, while its build tree is still there, and only if that file and
/// its directory are this user's or root's and nobody else can write them:
/// a build under /tmp must not become a way in once it is gone).
pub fn full_cli() -> Result<PathBuf, String> {
    let me = std::env::current_exe().unwrap_or_else(|_| FRONT_DOOR.into());
    let found = if let Some(p) = std::env::var_os("BERTH_CLI").filter(|p| !p.is_empty()) {
        PathBuf::from(p)
    } else if let Some(p) = beside_me(CLI) {
        p
    } else {
        let built = Path::new(env!("BERTH_BUILD_DIR")).join(CLI);
        if env!("BERTH_BUILD_DIR").is_empty() || !is_executable_file(&built) || !trusted(&built) {
            return Err(format!(
                "{} is missing beside {}: berth and berth-cli are installed together \
                 (`cargo install --path crates/berth`, or `berth-cli integrate` from a build)",
                CLI,
                me.display()
            ));
        }
        built
    };
    if same_file(&found, &me) {
        return Err(format!(
            "{} is this program, not the full command line ({CLI})",
            found.display()
        ));
    }
    Ok(found)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Owned by this user or root, and writable by no one else: the file and
/// every directory above it.
fn trusted(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::getuid().as_raw();
    p.ancestors().all(|a| {
        a.as_os_str().is_empty()
            || std::fs::symlink_metadata(a).is_ok_and(|m| {
                let owner_ok = m.uid() == me || m.uid() == 0;
                // A sticky world-writable directory (/tmp) lets no one
                // replace what another user put there.
                let sticky = m.mode() & 0o1000 != 0;
                owner_ok && (m.mode() & 0o022 == 0 || (m.is_dir() && sticky && m.uid() == 0))
            })
    })
}
