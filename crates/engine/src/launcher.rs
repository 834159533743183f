//! The stable path exported menu entries call berth by. A path under a
//! cargo `target/` directory goes away with `cargo clean` or a build
//! elsewhere, so entries call, in this order:
//!
//! 1. the `berth` on `PATH`, when it is this build's front door (installed
//!    by `cargo install`, a package, or `berth integrate`);
//! 2. the launcher `berth integrate` installs: `~/.local/bin/berth`
//!    (`/usr/local/bin/berth` for root), with `berth-cli` beside it;
//! 3. this build's front door, where it is (said once by `berth integrate`).
//!
//! The front door (`berth`) launches apps itself and becomes the full
//! command line (`berth-cli`) for everything else; they go together.
//! The path baked into the entries is recorded in `exports/.launcher`;
//! when it no longer exists, or `berth integrate` runs, every entry is
//! generated again with the current one.

use std::path::{Path, PathBuf};

use crate::error::{Context, Result, io};
use crate::frontend::Frontend;
use crate::{Engine, desktop};

fn record(home: &Path) -> PathBuf {
    home.join("exports/.launcher")
}

use berth_launch::programs::{self, CLI, FRONT_DOOR, is_executable_file};

/// This build's front door and full command line. The front door says
/// where it is when it becomes `berth-cli` (`BERTH_FRONT_DOOR`); otherwise
/// it is the `berth` beside this program.
pub fn this_build() -> Result<(PathBuf, PathBuf)> {
    let exe = io(std::env::current_exe(), || {
        "finding the berth binary".into()
    })?;
    let door = std::env::var_os(programs::FRONT_DOOR_ENV)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && is_executable_file(p))
        .or_else(|| {
            let p = exe.with_file_name(FRONT_DOOR);
            is_executable_file(&p).then_some(p)
        })
        .unwrap_or_else(|| exe.clone());
    let cli = if exe.file_name().is_some_and(|n| n == CLI) {
        exe
    } else {
        door.with_file_name(CLI)
    };
    Ok((door, cli))
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Byte for byte the same files (a launcher copied earlier).
fn same_contents(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(mut x), Ok(mut y)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    match (x.metadata(), y.metadata()) {
        (Ok(m), Ok(n)) if m.len() == n.len() => {}
        _ => return false,
    }
    let (mut p, mut q) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let Ok(n) = x.read(&mut p) else {
            return false;
        };
        if n == 0 {
            return true;
        }
        if y.read_exact(&mut q[..n]).is_err() || p[..n] != q[..n] {
            return false;
        }
    }
}

/// Where `berth integrate` installs the launcher for this user:
/// `$BERTH_LAUNCHER` if set (tests, packagers).
pub fn user_launcher() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_LAUNCHER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/usr/local/bin/berth");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    home.join(".local/bin/berth")
}

/// The first `berth` on `PATH` that is this front door.
fn on_path(exe: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join("berth"))
        .find(|p| same_file(p, exe))
}

/// The path exported entries should call now.
pub fn stable_path() -> PathBuf {
    let Ok((exe, _)) = this_build() else {
        return PathBuf::from(FRONT_DOOR);
    };
    if let Some(p) = on_path(&exe) {
        return p;
    }
    let launcher = user_launcher();
    if is_executable_file(&launcher) {
        return launcher;
    }
    exe
}

/// The graphical front end's program name: installed beside `berth`.
pub const GUI: &str = programs::GUI;

/// The installer and permission manager beside `berth`, if it is there.
pub fn gui_beside(berth: &Path) -> Option<PathBuf> {
    let p = berth.with_file_name(GUI);
    is_executable_file(&p).then_some(p)
}

/// What `install` did.
#[derive(Debug, serde::Serialize)]
pub struct Installed {
    /// Where the launcher is.
    pub path: PathBuf,
    /// Whether a copy was written (false: this binary is on PATH already).
    pub copied: bool,
    /// Whether the launcher's directory is on PATH.
    pub dir_on_path: bool,
    /// Where `berth-gui` is: the one built beside this binary, else one
    /// installed earlier beside the launcher.
    pub gui: Option<PathBuf>,
    /// `gui` was installed earlier, not from this build: it may be older.
    pub gui_from_earlier: bool,
}

/// Put the launcher at the user's stable path, unless this build's front
/// door is the `berth` on PATH already: the front door and `berth-cli`
/// beside it, each a hard link where it can be (it outlives `cargo clean`
/// and rebuilds, which replace the file), else a copy, renamed into place.
/// A file there that is not executable is left alone (an error).
/// `berth-gui`, when it sits beside this build, goes beside them the same way.
pub fn install() -> Result<Installed> {
    let (door, cli) = this_build()?;
    if !is_executable_file(&cli) {
        return Err(crate::Error::Refused(format!(
            "{} is missing beside {}; build both (`cargo build --release`)",
            CLI,
            door.display()
        )));
    }
    let (dest, dir_on_path, mut copied) = match on_path(&door) {
        Some(p) => (p, true, false),
        None => {
            let dest = user_launcher();
            let dir = dest.parent().unwrap_or(Path::new("/"));
            let on_path = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d == dir));
            let copied = place(&door, &dest)?;
            (dest, on_path, copied)
        }
    };
    copied |= place(&cli, &dest.with_file_name(CLI))?;
    let gui_from_earlier = gui_beside(&door).is_none() && gui_beside(&dest).is_some();
    let gui = match gui_beside(&door) {
        Some(src) => {
            let to = dest.with_file_name(GUI);
            copied |= place(&src, &to)?;
            Some(to)
        }
        None => gui_beside(&dest),
    };
    Ok(Installed {
        path: dest,
        copied,
        dir_on_path,
        gui,
        gui_from_earlier,
    })
}

/// `src` at `dest`: nothing to do when it is there already (false), else
/// a hard link or a copy renamed into place (true).
fn place(src: &Path, dest: &Path) -> Result<bool> {
    if same_file(dest, src) || same_contents(dest, src) {
        return Ok(false);
    }
    if dest.exists() && !is_executable_file(dest) {
        return Err(crate::Error::Refused(format!(
            "{} exists and is not a program; move it away to install the launcher there",
            dest.display()
        )));
    }
    let dir = dest.parent().unwrap_or(Path::new("/"));
    io(std::fs::create_dir_all(dir), || {
        format!("creating {}", dir.display())
    })?;
    let name = dest
        .file_name()
        .map_or_else(|| "berth".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let copied = std::fs::hard_link(src, &tmp)
        .or_else(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::copy(src, &tmp)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|()| std::fs::rename(&tmp, dest));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return io(Err(e), || format!("installing {}", dest.display()));
    }
    Ok(true)
}

impl Engine {
    /// The path the current entries call, if any were written.
    pub fn exported_launcher(&self) -> Option<PathBuf> {
        std::fs::read_to_string(record(self.store.root()))
            .ok()
            .map(|s| PathBuf::from(s.trim_end_matches('\n')))
    }

    /// Note the path the entries now call.
    pub(crate) fn note_launcher(&self, exe: &Path) {
        let _ = berth_image::fsutil::write_atomic(
            &self.store.tmp_dir(),
            &record(self.store.root()),
            format!("{}\n", exe.display()).as_bytes(),
        );
    }

    /// Generate every installed app's menu files again, calling the
    /// current stable path. Returns how many apps were exported.
    pub fn reexport_all(&self, fe: &dyn Frontend) -> Result<usize> {
        let _lock = self.lock_shared(fe)?;
        let mut n = 0;
        for d in self.apps.list() {
            let entry = self
                .store
                .entry_by_digest(&berth_image::Digest::parse(&d.image)?)
                .with_context(|| format!("the image of {}", d.app_id))?;
            let image = self.store.load_image(&entry)?;
            let mut meta = self.app_meta(&image)?;
            meta.id = d.app_id.clone();
            let x = desktop::prepare(&meta, &image, &self.store, fe)?;
            desktop::export_files(self.store.root(), &x, &self.store.tmp_dir())?;
            n += 1;
        }
        // Once, not once per app.
        if n > 0 || desktop::catalog_path(self.store.root()).exists() {
            desktop::write_catalog(self.store.root(), &self.store.tmp_dir())?;
        }
        desktop::register_bundle_type(self.store.root(), &self.store.tmp_dir())?;
        self.note_launcher(&desktop::berth_exe());
        Ok(n)
    }

    /// After an app's files were exported with the current path: if other
    /// entries call another one, generate them all again.
    pub(crate) fn after_export(&self, fe: &dyn Frontend) {
        let now = desktop::berth_exe();
        match self.exported_launcher() {
            Some(old) if old == now => {}
            Some(_) => {
                if let Err(e) = self.reexport_all(fe) {
                    fe.warn(&format!(
                        "warning: the other menu entries still call an older berth: {e}"
                    ));
                }
            }
            None => self.note_launcher(&now),
        }
    }

    /// When the program the entries call is gone (`cargo clean`, a moved
    /// build), write them again with the current stable path. Cheap when
    /// nothing moved: one stat.
    pub fn refresh_launcher(&self, fe: &dyn Frontend) {
        let Some(old) = self.exported_launcher() else {
            return;
        };
        if is_executable_file(&old) {
            return;
        }
        match self.reexport_all(fe) {
            Ok(n) if n > 0 => fe.info(&format!(
                "{} is gone: the menu entries of {n} app(s) now call {}",
                old.display(),
                desktop::berth_exe().display()
            )),
            Ok(_) => {}
            Err(e) => fe.warn(&format!(
                "warning: {} is gone and the menu entries could not be rewritten: {e}",
                old.display()
            )),
        }
    }
}
