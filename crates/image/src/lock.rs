//! Advisory file locks (flock) that keep concurrent berth processes safe.
//!
//! - `store.lock`: shared by every command that adds or reads content,
//!   exclusive for `gc`, so gc never removes blobs an import is writing.
//! - `index.lock`: exclusive around each read-modify-write of index.json,
//!   so two imports never lose each other's tags.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::FlockOperation;

use crate::error::{IoContext, Result};

#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// Take a lock, blocking. `on_wait` is called once if we have to wait.
pub fn lock(path: &Path, kind: LockKind, on_wait: &dyn Fn()) -> Result<LockGuard> {
    let file = open(path)?;
    let (nb, block) = match kind {
        LockKind::Shared => (
            FlockOperation::NonBlockingLockShared,
            FlockOperation::LockShared,
        ),
        LockKind::Exclusive => (
            FlockOperation::NonBlockingLockExclusive,
            FlockOperation::LockExclusive,
        ),
    };
    if rustix::fs::flock(&file, nb).is_err() {
        on_wait();
        rustix::fs::flock(&file, block).ctx(|| format!("locking {}", path.display()))?;
    }
    Ok(LockGuard { _file: file })
}

/// Take a lock only if it is free right now.
pub fn try_lock(path: &Path, kind: LockKind) -> Result<Option<LockGuard>> {
    let file = open(path)?;
    let op = match kind {
        LockKind::Shared => FlockOperation::NonBlockingLockShared,
        LockKind::Exclusive => FlockOperation::NonBlockingLockExclusive,
    };
    Ok(rustix::fs::flock(&file, op)
        .ok()
        .map(|()| LockGuard { _file: file }))
}

/// flock works on a read-only fd, so a store that is read-only (a
/// read-only mount, or another user's) can still be read under its lock.
/// A missing lock file in a read-only store means nobody can be writing.
fn open(path: &Path) -> Result<File> {
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    match rw {
        Ok(f) => Ok(f),
        Err(e)
            if e.raw_os_error() == Some(rustix::io::Errno::ROFS.raw_os_error())
                || e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            match File::open(path) {
                Ok(f) => Ok(f),
                Err(_) => File::open(path.parent().unwrap_or(Path::new("/")))
                    .ctx(|| format!("opening lock file {}", path.display())),
            }
        }
        Err(e) => Err(e).ctx(|| format!("opening lock file {}", path.display())),
    }
}
