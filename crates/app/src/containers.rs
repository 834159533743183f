//! Working containers (`$BERTH_HOME/containers/<name>/`): an image and a
//! writable root that lasts across runs (`berth create`, `berth run
//! --container`, `berth commit`, `berth rm`). This module owns the
//! records and their lock; the launch mounts `root/upper` over the image,
//! and the engine makes images of it.
//!
//! ```text
//! containers/NAME/container.json   {name, image, digest, created_unix}
//! containers/NAME/root/upper       what the runs changed (overlayfs upper)
//! containers/NAME/root/work        overlayfs' work directory
//! containers/NAME/lock             flock-ed by the run using it
//! ```

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("no container {0:?} (see `berth containers`)")]
    NotFound(String),
    #[error("container {0:?} exists already (`berth rm {0}` removes it)")]
    Exists(String),
    #[error("container {0:?} is in use by a running instance (stop it with `berth kill`)")]
    Busy(String),
}

type Result<T, E = ContainerError> = std::result::Result<T, E>;

fn io<T>(r: std::io::Result<T>, context: impl FnOnce() -> String) -> Result<T> {
    r.map_err(|source| ContainerError::Io {
        context: context(),
        source,
    })
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// Its manifest digest: the runs use this image, whatever the name
    /// points to later (gc keeps it).
    pub digest: String,
    pub created_unix: u64,
}

/// Label of an image whose layers carry a home (`berth commit` of a
/// container or `--with-data`): its path. A run of the image as the user
/// of that home gets a temporary writable root, so the home it carries is
/// its starting home instead of being hidden by an empty one.
pub const LABEL_HOME: &str = "org.berth.commit.home";

/// A container name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}` (a directory name
/// and a word in messages).
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub struct ContainerStore {
    dir: PathBuf,
}

/// Held while a run uses a container's root: one run at a time (overlayfs
/// refuses an upper directory two mounts share), and no `rm` meanwhile.
pub struct ContainerLock {
    _fd: std::os::fd::OwnedFd,
}

impl ContainerStore {
    pub fn new(store_root: &Path) -> ContainerStore {
        ContainerStore {
            dir: store_root.join("containers"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `root/upper` and `root/work` of container `name`.
    pub fn root(&self, name: &str) -> PathBuf {
        self.path(name).join("root")
    }

    fn check(&self, name: &str) -> Result<()> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(ContainerError::Invalid(format!(
                "{name:?} is not a container name: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64"
            )))
        }
    }

    /// Record a new container of image `digest` (named `image`). Its
    /// directory appears whole or not at all.
    pub fn create(&self, name: &str, image: &str, digest: &str, now: u64) -> Result<Container> {
        self.check(name)?;
        let dest = self.path(name);
        if dest.exists() {
            return Err(ContainerError::Exists(name.to_owned()));
        }
        io(fs::create_dir_all(&self.dir), || {
            format!("creating {}", self.dir.display())
        })?;
        let tmp = self.dir.join(format!(".new-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let c = Container {
            name: name.to_owned(),
            image: image.to_owned(),
            digest: digest.to_owned(),
            created_unix: now,
        };
        let made = (|| {
            for d in ["root/upper", "root/work"] {
                io(fs::create_dir_all(tmp.join(d)), || {
                    format!("creating {}", tmp.join(d).display())
                })?;
            }
            let bytes = serde_json::to_vec_pretty(&c)
                .map_err(|e| ContainerError::Invalid(e.to_string()))?;
            let mut f = io(fs::File::create(tmp.join("container.json")), || {
                "writing container.json".into()
            })?;
            io(f.write_all(&bytes).and_then(|()| f.sync_all()), || {
                "writing container.json".into()
            })?;
            match fs::rename(&tmp, &dest) {
                Ok(()) => Ok(()),
                Err(_) if dest.exists() => Err(ContainerError::Exists(name.to_owned())),
                Err(e) => io(Err(e), || format!("creating {}", dest.display())),
            }
        })();
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        made.map(|()| c)
    }

    pub fn get(&self, name: &str) -> Result<Container> {
        self.check(name)?;
        let p = self.path(name).join("container.json");
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(name.to_owned()));
            }
            Err(e) => return io(Err(e), || format!("reading {}", p.display())),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| ContainerError::Invalid(format!("{} is damaged: {e}", p.display())))
    }

    /// Every container, by name.
    pub fn list(&self) -> Vec<Container> {
        let mut out: Vec<Container> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.get(e.file_name().to_str()?).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Take container `name` for a run (or a removal): `Busy` if a run
    /// holds it.
    pub fn lock(&self, name: &str) -> Result<ContainerLock> {
        self.get(name)?;
        let p = self.path(name).join("lock");
        let f = io(
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&p),
            || format!("opening {}", p.display()),
        )?;
        match rustix::fs::flock(
            f.as_fd(),
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        ) {
            Ok(()) => Ok(ContainerLock { _fd: f.into() }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(ContainerError::Busy(name.to_owned())),
            Err(e) => io(Err(e.into()), || format!("locking {}", p.display())),
        }
    }

    /// What a `create` or `rm` killed midway left behind: `.new-NAME-PID`
    /// and `.rm-NAME-PID` directories of processes that are gone (a root
    /// being removed can be large; it must not stay forever).
    pub fn leftovers(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let rest = name
                    .strip_prefix(".new-")
                    .or_else(|| name.strip_prefix(".rm-"))?;
                let pid: u32 = rest.rsplit_once('-')?.1.parse().ok()?;
                let alive =
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
                (!alive).then(|| e.path())
            })
            .collect()
    }

    /// Take container `name` away (not while it runs): it is gone from
    /// the records at once; the caller deletes the returned directory
    /// (a root a rootless run wrote may need permissions fixed first).
    pub fn remove(&self, name: &str) -> Result<PathBuf> {
        let lock = self.lock(name)?;
        let gone = self.dir.join(format!(".rm-{name}-{}", std::process::id()));
        io(fs::rename(self.path(name), &gone), || {
            format!("removing container {name}")
        })?;
        drop(lock);
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_records() {
        for ok in ["a", "dev-box", "x.1_b"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "..", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        let d = tempfile::tempdir().unwrap();
        let s = ContainerStore::new(d.path());
        let c = s.create("box", "img:1", "sha256:00", 7).unwrap();
        assert!(s.root("box").join("upper").is_dir());
        assert_eq!(s.get("box").unwrap(), c);
        assert!(matches!(
            s.create("box", "img:1", "sha256:00", 7),
            Err(ContainerError::Exists(_))
        ));
        assert_eq!(s.list(), vec![c]);
        let held = s.lock("box").unwrap();
        assert!(matches!(s.lock("box"), Err(ContainerError::Busy(_))));
        assert!(matches!(s.remove("box"), Err(ContainerError::Busy(_))));
        drop(held);
        let gone = s.remove("box").unwrap();
        assert!(gone.is_dir() && !s.path("box").exists());
        // Ours (this process lives) is no leftover; a dead writer's is.
        assert!(s.leftovers().is_empty());
        let dead = d.path().join("containers/.rm-old-4000000");
        fs::create_dir_all(dead.join("root/upper")).unwrap();
        fs::create_dir_all(d.path().join("containers/.new-x-4000001")).unwrap();
        let mut left = s.leftovers();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(s.list().is_empty(), "leftovers are no containers");
        assert!(matches!(s.get("box"), Err(ContainerError::NotFound(_))));
        assert!(matches!(s.get("../x"), Err(ContainerError::Invalid(_))));
    }
}
