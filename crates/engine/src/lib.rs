//! berth's engine: the app lifecycle every front end drives. The CLI and
//! the graphical installer only parse, ask and print; what happens lives
//! here, behind typed values:
//!
//! - [`Engine::review`] turns a source (a `.berth` file, a directory, an
//!   image name, a registry reference) into a [`Review`]: pure data the
//!   front end shows, permissions ranked in plain words;
//! - [`Engine::install`] deploys a review the user consented to; update,
//!   rollback, rebase, promote and uninstall follow the same rules;
//! - [`Engine::permissions`] and [`Engine::set_override`] are the
//!   permission manager's read and write sides;
//! - [`launch`] plans a launch as printable data and applies it (its own
//!   crate, so the front door that launches stays small);
//! - progress, notes and questions go through [`Frontend`].

mod containers;
mod delta;
pub mod desktop;
mod error;
mod flatpak;
pub mod frontend;
pub mod launcher;
mod lifecycle;
pub mod portal_store;
mod review;
mod source;
mod update;

use std::path::{Path, PathBuf};

use berth_app::deploy::AppStore;
use berth_image::Store;
use berth_image::lock::LockGuard;

pub use berth_launch as launch;
pub use containers::{Committed, LABEL_PARENT};
pub use delta::DeltaPushed;
pub use error::{Context, Error, Result};
pub use frontend::{Frontend, Quiet};
pub use lifecycle::{AppInfo, EffectivePermission, Installed, PermissionRow, Uninstalled};
pub use portal_store::PortalPermission;
pub use review::{Action, Review, app_of, risk_summary};
pub use source::{DownloadPreview, PullPlan, Pulled};
pub use update::{Rebased, RolledBack, UpdateCheck, UpdateOutcome};

/// The opened store and the apps installed in it.
pub struct Engine {
    store: Store,
    apps: AppStore,
}

impl Engine {
    /// Open (or create) the store at `root`.
    pub fn open(root: &Path) -> Result<Engine> {
        let store = Store::open(root)
            .with_context(|| format!("opening the store at {}", root.display()))?;
        Ok(Engine::new(store))
    }

    pub fn new(store: Store) -> Engine {
        let apps = AppStore::new(store.root());
        Engine { store, apps }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn apps(&self) -> &AppStore {
        &self.apps
    }

    /// The shared store lock every command but gc holds; `fe` hears about
    /// a wait for a running gc.
    pub fn lock_shared(&self, fe: &dyn Frontend) -> Result<LockGuard> {
        Ok(self
            .store
            .lock_shared(&|| fe.warn("waiting for a running `berth gc` to finish..."))?)
    }

    /// Where an installed app keeps its data.
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.store.root().join("data").join(id)
    }
}

/// The user's home, for ranking permissions by what they expose.
pub fn user_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .unwrap_or_else(|| "/".into())
}

/// A size in the units every summary and progress line uses (kB = 1000 B).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The message of an error and of every error under it, once each, as
/// one line: what front ends show the user.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        // Some errors repeat their source's message in their own.
        if !parts.last().is_some_and(|p| p.ends_with(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// A few items of a long list, for one line ("a, b, c, and 4 more"),
/// each escaped: they come from images.
pub fn summarize(items: &[String]) -> String {
    const SHOW: usize = 3;
    let shown: Vec<String> = items
        .iter()
        .take(SHOW)
        .map(|s| berth_app::text::escape(s).into_owned())
        .collect();
    if items.len() > SHOW {
        format!("{}, and {} more", shown.join(", "), items.len() - SHOW)
    } else {
        shown.join(", ")
    }
}

/// A directory under the store's tmp/, removed however we leave.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    pub fn new(engine: &Engine, prefix: &str) -> Result<WorkDir> {
        let p = engine
            .store
            .tmp_dir()
            .join(berth_image::fsutil::unique_name(prefix));
        error::io(std::fs::create_dir_all(&p), || {
            format!("creating {}", p.display())
        })?;
        Ok(WorkDir(p))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = berth_image::fsutil::remove_tree(&self.0);
    }
}
