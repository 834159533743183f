//! Installed apps on disk (`$BERTH_HOME/apps/<app-id>/`): numbered
//! deployments kept for rollback, a `current` pointer replaced atomically,
//! and per-user `overrides.toml`. This module does the I/O; the rules it
//! applies live in `permissions`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::permissions::{Permission, PermissionSet};

/// Deployments kept per app (the current one and older ones).
pub const KEEP_DEPLOYMENTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("no app {0:?} is installed (see `berth list`)")]
    NotInstalled(String),
}

fn io<T>(r: std::io::Result<T>, context: impl FnOnce() -> String) -> Result<T, DeployError> {
    r.map_err(|source| DeployError::Io {
        context: context(),
        source,
    })
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Deployment {
    pub serial: u64,
    pub app_id: String,
    pub name: String,
    /// Manifest digest of the image.
    pub image: String,
    /// Where it came from (a file, or an image name).
    pub origin: String,
    pub command: Vec<String>,
    /// What the user consented to, in canonical form: exactly the set the
    /// review showed (`PermissionSet`'s text, which round-trips).
    pub granted: String,
    pub installed_unix: u64,
    /// A Flatpak app: the manifest digest of the runtime image it was
    /// installed with (kept while the deployment is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

impl Deployment {
    /// The consented permissions. A stored value that does not parse is
    /// an error, never an empty (or any other) set.
    pub fn granted(&self) -> Result<PermissionSet, DeployError> {
        PermissionSet::parse_list(&self.granted).map_err(|e| {
            DeployError::Invalid(format!(
                "the permissions stored for {} are damaged ({e}); reinstall the app",
                self.app_id
            ))
        })
    }
}

/// Refuse to store a permission text unless it is canonical: it parses,
/// and prints back exactly as given. What is stored is what was reviewed.
fn check_canonical_list(text: &str) -> Result<(), DeployError> {
    match PermissionSet::parse_list(text) {
        Ok(set) if set.to_string() == text => Ok(()),
        Ok(set) => Err(DeployError::Invalid(format!(
            "permissions {text:?} are not in canonical form (expected {:?})",
            set.to_string()
        ))),
        Err(e) => Err(DeployError::Invalid(e.to_string())),
    }
}

fn check_canonical(text: &str) -> Result<Permission, DeployError> {
    match Permission::parse(text) {
        Ok(p) if p.to_string() == text => Ok(p),
        Ok(p) => Err(DeployError::Invalid(format!(
            "overrides.toml: {text:?} is not in canonical form (expected {:?})",
            p.to_string()
        ))),
        Err(e) => Err(DeployError::Invalid(format!("overrides.toml: {e}"))),
    }
}

/// The user's changes layered over an app's granted permissions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Overrides {
    #[serde(default)]
    pub grant: Vec<String>,
    #[serde(default)]
    pub revoke: Vec<String>,
}

/// Where an effective permission comes from.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Image,
    Override,
}

/// image permissions − revokes + grants, each with its source.
pub fn effective(
    granted: &PermissionSet,
    o: &Overrides,
) -> Result<Vec<(Permission, Source)>, DeployError> {
    let parse = |s: &String| check_canonical(s);
    let revoked: Vec<Permission> = o.revoke.iter().map(parse).collect::<Result<_, _>>()?;
    let mut out: Vec<(Permission, Source)> = granted
        .iter()
        .filter(|p| !revoked.contains(p))
        .map(|p| (p.clone(), Source::Image))
        .collect();
    for g in &o.grant {
        let p = parse(g)?;
        if !revoked.contains(&p) && !out.iter().any(|(q, _)| q == &p) {
            out.push((p, Source::Override));
        }
    }
    Ok(out)
}

pub struct AppStore {
    root: PathBuf,
}

impl AppStore {
    /// `home` is `$BERTH_HOME`.
    pub fn new(home: &Path) -> AppStore {
        AppStore {
            root: home.join("apps"),
        }
    }

    fn dir(&self, id: &str) -> Result<PathBuf, DeployError> {
        if !crate::metadata::valid_install_key(id) {
            return Err(DeployError::Invalid(format!(
                "{id:?} is not an app ID like org.example.App"
            )));
        }
        Ok(self.root.join(id))
    }

    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DeployError> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let res = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            if let Some(p) = path.parent() {
                fs::File::open(p)?.sync_all()?;
            }
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        io(res, || format!("writing {}", path.display()))
    }

    pub fn current(&self, id: &str) -> Result<Option<Deployment>, DeployError> {
        let dir = self.dir(id)?;
        let Ok(serial) = fs::read_to_string(dir.join("current")) else {
            return Ok(None);
        };
        let serial = serial.trim();
        let p = dir.join("deployments").join(format!("{serial}.json"));
        let bytes = io(fs::read(&p), || format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| DeployError::Invalid(format!("{} is damaged: {e}", p.display())))
    }

    pub fn require(&self, id: &str) -> Result<Deployment, DeployError> {
        self.current(id)?
            .ok_or_else(|| DeployError::NotInstalled(id.to_owned()))
    }

    /// Record a new deployment and make it current, atomically; prune old
    /// ones past `KEEP_DEPLOYMENTS`.
    pub fn deploy(&self, mut d: Deployment) -> Result<Deployment, DeployError> {
        check_canonical_list(&d.granted)?;
        let dir = self.dir(&d.app_id)?;
        let deps = dir.join("deployments");
        io(fs::create_dir_all(&deps), || {
            format!("creating {}", deps.display())
        })?;
        d.serial = self.serials(&d.app_id)?.last().copied().unwrap_or(0) + 1;
        let bytes =
            serde_json::to_vec_pretty(&d).map_err(|e| DeployError::Invalid(e.to_string()))?;
        Self::write_atomic(&deps.join(format!("{}.json", d.serial)), &bytes)?;
        Self::write_atomic(&dir.join("current"), d.serial.to_string().as_bytes())?;
        let serials = self.serials(&d.app_id)?;
        for old in serials
            .iter()
            .take(serials.len().saturating_sub(KEEP_DEPLOYMENTS))
        {
            let _ = fs::remove_file(deps.join(format!("{old}.json")));
        }
        Ok(d)
    }

    fn serials(&self, id: &str) -> Result<Vec<u64>, DeployError> {
        let deps = self.dir(id)?.join("deployments");
        let mut v: Vec<u64> = fs::read_dir(&deps)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        Ok(v)
    }

    /// Current deployments of every installed app, by ID.
    pub fn list(&self) -> Vec<Deployment> {
        let mut out: Vec<Deployment> = fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| self.current(e.file_name().to_str()?).ok().flatten())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.app_id.cmp(&b.app_id));
        out
    }

    /// Every image any kept deployment uses: gc must keep them.
    pub fn live_images(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.root) else {
            return out;
        };
        for e in rd.flatten() {
            // Not installed (see `orphans`): nothing it names is kept.
            if !e.path().join("current").exists() {
                continue;
            }
            let Ok(deps) = fs::read_dir(e.path().join("deployments")) else {
                continue;
            };
            for d in deps.flatten() {
                if let Some(dep) = fs::read(d.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Deployment>(&b).ok())
                {
                    out.extend(dep.runtime);
                    out.push(dep.image);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    pub fn overrides(&self, id: &str) -> Result<Overrides, DeployError> {
        let p = self.dir(id)?.join("overrides.toml");
        match fs::read_to_string(&p) {
            Ok(s) => toml::from_str(&s)
                .map_err(|e| DeployError::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overrides::default()),
            Err(e) => io(Err(e), || format!("reading {}", p.display())),
        }
    }

    /// Change the overrides under a lock: two front ends (the CLI and the
    /// permission manager) changing them at once both keep their change.
    pub fn update_overrides(
        &self,
        id: &str,
        change: impl FnOnce(&mut Overrides),
    ) -> Result<(), DeployError> {
        let dir = self.dir(id)?;
        let lock_path = dir.join("overrides.lock");
        let lock = io(
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path),
            || format!("opening {}", lock_path.display()),
        )?;
        io(
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                .map_err(std::io::Error::from),
            || format!("locking {}", lock_path.display()),
        )?;
        let mut o = self.overrides(id)?;
        change(&mut o);
        self.set_overrides(id, &o)
        // The lock goes with `lock`.
    }

    pub fn set_overrides(&self, id: &str, o: &Overrides) -> Result<(), DeployError> {
        let p = self.dir(id)?.join("overrides.toml");
        if o == &Overrides::default() {
            return match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    io(Err(e), || format!("removing {}", p.display()))
                }
                _ => Ok(()),
            };
        }
        // Nothing that would fail to apply is ever written.
        for t in o.grant.iter().chain(&o.revoke) {
            check_canonical(t)?;
        }
        let text = toml::to_string(o).map_err(|e| DeployError::Invalid(e.to_string()))?;
        Self::write_atomic(&p, text.as_bytes())
    }

    /// Every kept deployment, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<Deployment>, DeployError> {
        let deps = self.dir(id)?.join("deployments");
        let mut out = Vec::new();
        for s in self.serials(id)? {
            let p = deps.join(format!("{s}.json"));
            let bytes = io(fs::read(&p), || format!("reading {}", p.display()))?;
            out.push(
                serde_json::from_slice(&bytes).map_err(|e| {
                    DeployError::Invalid(format!("{} is damaged: {e}", p.display()))
                })?,
            );
        }
        Ok(out)
    }

    /// Make the deployment before the current one current (atomically).
    pub fn rollback(&self, id: &str) -> Result<Deployment, DeployError> {
        let cur = self.require(id)?;
        let prev = self
            .history(id)?
            .into_iter()
            .rev()
            .find(|d| d.serial < cur.serial && d.image != cur.image)
            .ok_or_else(|| {
                DeployError::Invalid(format!(
                    "{id} has no earlier deployment to roll back to (deployment {} is the oldest kept)",
                    cur.serial
                ))
            })?;
        Self::write_atomic(
            &self.dir(id)?.join("current"),
            prev.serial.to_string().as_bytes(),
        )?;
        Ok(prev)
    }

    /// A masked app is skipped by `update`.
    pub fn set_masked(&self, id: &str, masked: bool) -> Result<(), DeployError> {
        self.require(id)?;
        let p = self.dir(id)?.join("masked");
        if masked {
            Self::write_atomic(&p, b"masked: berth update skips this app\n")
        } else {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    io(Err(e), || format!("removing {}", p.display()))
                }
                _ => Ok(()),
            }
        }
    }

    pub fn is_masked(&self, id: &str) -> bool {
        self.dir(id).is_ok_and(|d| d.join("masked").exists())
    }

    /// Forget an app (its deployments and overrides): one rename takes the
    /// whole directory out of `apps/` into `tmp`, then it is deleted there.
    /// A crash leaves the app either installed or gone, never a directory
    /// of deployments without `current` that pins images forever.
    /// `gone` is a fresh name in the store's `tmp/` (its writer's pid in
    /// it, so an interrupted delete is cleaned up later).
    pub fn remove(&self, id: &str, gone: &Path) -> Result<(), DeployError> {
        let dir = self.dir(id)?;
        io(fs::rename(&dir, gone), || {
            format!("removing {}", dir.display())
        })?;
        if let Ok(f) = fs::File::open(&self.root) {
            let _ = f.sync_all();
        }
        io(fs::remove_dir_all(gone), || {
            format!("removing {}", gone.display())
        })
    }

    /// App directories without a `current` deployment: what an install
    /// killed before its first deployment was made current leaves behind.
    pub fn orphans(&self) -> Vec<PathBuf> {
        let Ok(rd) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.join("current").exists())
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(image: &str) -> Deployment {
        Deployment {
            serial: 0,
            app_id: "org.example.App".into(),
            name: "App".into(),
            image: image.into(),
            origin: "test".into(),
            command: vec![],
            granted: "socket=wayland;share=network".into(),
            installed_unix: 0,
            runtime: None,
        }
    }

    fn tmp() -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "berth-deploy-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn deployments_are_numbered_and_pruned() {
        let home = tmp();
        let s = AppStore::new(&home);
        assert!(s.current("org.example.App").ok().flatten().is_none());
        for i in 0..5 {
            let d = s
                .deploy(dep(&format!("sha256:{i}")))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(d.serial, i + 1);
        }
        assert_eq!(
            s.current("org.example.App").ok().flatten().map(|d| d.image),
            Some("sha256:4".into())
        );
        assert_eq!(s.serials("org.example.App").ok(), Some(vec![3, 4, 5]));
        assert_eq!(s.live_images(), vec!["sha256:2", "sha256:3", "sha256:4"]);
        assert_eq!(s.list().len(), 1);
        assert!(
            s.current("../../etc").is_err(),
            "IDs are validated before touching paths"
        );
        let _ = fs::remove_dir_all(&home);
    }

    #[test]
    fn overrides_layer_over_the_grant() {
        let home = tmp();
        let s = AppStore::new(&home);
        s.deploy(dep("sha256:x")).unwrap_or_else(|e| panic!("{e}"));
        let o = Overrides {
            grant: vec!["filesystem=xdg-documents:ro".into()],
            revoke: vec!["share=network".into()],
        };
        s.set_overrides("org.example.App", &o)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.overrides("org.example.App").ok(), Some(o.clone()));
        let eff = effective(
            &s.require("org.example.App")
                .ok()
                .and_then(|d| d.granted().ok())
                .unwrap_or_default(),
            &o,
        )
        .unwrap_or_default();
        let text: Vec<String> = eff.iter().map(|(p, src)| format!("{p}/{src:?}")).collect();
        assert_eq!(
            text,
            vec![
                "socket=wayland/Image",
                "filesystem=xdg-documents:ro/Override"
            ]
        );
        s.set_overrides("org.example.App", &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!home.join("apps/org.example.App/overrides.toml").exists());
        let _ = fs::remove_dir_all(&home);
    }

    #[test]
    fn stored_consent_is_exactly_the_reviewed_one() {
        let home = tmp();
        let s = AppStore::new(&home);
        // Not canonical: refused rather than stored in another meaning.
        for bad in [
            "share=network;filesystem=/opt/a:b:rw",
            "filesystem=/.",
            "socket=wayland;",
        ] {
            let mut d = dep("sha256:y");
            d.granted = bad.into();
            assert!(s.deploy(d).is_err(), "{bad:?}");
        }
        let o = Overrides {
            grant: vec!["filesystem=//".into()],
            revoke: vec![],
        };
        assert!(s.set_overrides("org.example.App", &o).is_err());
        assert!(!home.join("apps/org.example.App/overrides.toml").exists());
        // A damaged stored value is an error, not an empty set.
        let mut d = dep("sha256:z");
        d.granted = "socket=wayland;share=network".into();
        let mut d = s.deploy(d).unwrap_or_else(|e| panic!("{e}"));
        d.granted = "share=network;filesystem=/opt/a:b:rw;socket=wayland".into();
        assert!(d.granted().is_err());
        let _ = fs::remove_dir_all(&home);
    }
}
