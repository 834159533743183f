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
/// alone, while its build tree is still there).
pub fn full_cli() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("BERTH_CLI").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = beside_me(CLI) {
        return Ok(p);
    }
    let built = Path::new(env!("BERTH_BUILD_DIR")).join(CLI);
    if !env!("BERTH_BUILD_DIR").is_empty() && is_executable_file(&built) {
        return Ok(built);
    }
    let me = std::env::current_exe().unwrap_or_else(|_| FRONT_DOOR.into());
    Err(format!(
        "{} is missing beside {}: berth and berth-cli are installed together \
         (`cargo install --path crates/berth`, or `berth-cli integrate` from a build)",
        CLI,
        me.display()
    ))
}
