//! Small filesystem helpers: atomic replace, directory fsync and a tree
//! removal that copes with read-only directories (rootless unpacked layers).

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags};

use crate::error::{IoContext, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name that no other process or thread will pick.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{t:08x}", std::process::id())
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("syncing directory {}", dir.display()))
}

/// Write `bytes` to `dest` atomically: temp file in `tmp_dir` (same
/// filesystem), fsync, rename, fsync the parent.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_dir.join(unique_name("w-"));
    let res = (|| {
        let mut f = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .ctx(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, dest).ctx(|| format!("renaming into {}", dest.display()))?;
        fsync_dir(dest.parent().unwrap_or(Path::new(".")))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Remove a file or a whole tree without following symlinks, making
/// read-only directories writable on the way (layers may contain 0555 dirs).
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("inspecting {}", path.display())),
        Ok(m) if !m.is_dir() => {
            fs::remove_file(path).ctx(|| format!("removing {}", path.display()))
        }
        Ok(_) => {
            let parent = path.parent().unwrap_or(Path::new("."));
            let name = path.file_name().unwrap_or(path.as_os_str());
            let pfd = rustix::fs::open(parent, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .ctx(|| format!("opening {}", parent.display()))?;
            remove_at(pfd.as_fd(), Path::new(name), path)
        }
    }
}

#[cfg(test)]
#[test]
fn writer_pids() {
    assert_eq!(
        writer_pid(&unique_name("layer-")),
        Some(std::process::id() as i32)
    );
    assert_eq!(writer_pid("trash-12-0-0000abcd"), Some(12));
    assert_eq!(writer_pid("bundle-abc123"), None);
    assert_eq!(writer_pid("12-0-0000abcd"), None);
    assert_eq!(writer_pid("x-12-0-zz"), None);
}

fn remove_at(parent: std::os::fd::BorrowedFd<'_>, name: &Path, shown: &Path) -> Result<()> {
    let ctx = || format!("removing {}", shown.display());
    let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).ctx(ctx)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return rustix::fs::unlinkat(parent, name, AtFlags::empty()).ctx(ctx);
    }
    let _ = rustix::fs::chmodat(parent, name, Mode::from_raw_mode(0o700), AtFlags::empty());
    let dfd: OwnedFd = rustix::fs::openat(
        parent,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
    )
    .ctx(ctx)?;
    let mut names: Vec<PathBuf> = Vec::new();
    let mut dir = rustix::fs::Dir::read_from(&dfd).ctx(ctx)?;
    for ent in dir.by_ref() {
        let ent = ent.ctx(ctx)?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(PathBuf::from(
                std::ffi::OsStr::from_encoded_bytes_unchecked_safe(n),
            ));
        }
    }
    for n in names {
        remove_at(dfd.as_fd(), &n, &shown.join(&n))?;
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR).ctx(ctx)
}

/// `OsStr::from_encoded_bytes_unchecked` is unsafe; on Unix every byte
/// string is a valid OsStr, so go through the safe `OsStrExt` instead.
trait OsStrFromBytes {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr;
}

impl OsStrFromBytes for std::ffi::OsStr {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

/// The pid in a name made by `unique_name` (`prefix-PID-n-t`).
pub fn writer_pid(name: &str) -> Option<i32> {
    let mut parts = name.rsplitn(4, '-');
    let (t, n, pid, prefix) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let prefix_ok = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'.');
    let t_ok = t.len() == 8 && t.bytes().all(|b| b.is_ascii_hexdigit());
    let n_ok = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    if !(prefix_ok && t_ok && n_ok) {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0)
}

/// Whether a process with this pid exists (EPERM: it does, as another user).
pub fn pid_alive(pid: i32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(p),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Total size in bytes of regular files under a tree (for reports).
pub fn tree_size(path: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}
