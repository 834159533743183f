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

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ctx(|| format!("opening lock file {}", path.display()))
}
