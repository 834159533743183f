//! One copy of each file: the regular files of unpacked layers are hard
//! links into `objects/`, keyed by their content and by everything a hard
//! link shares (mode, owner, modification time, xattrs). Two versions of a
//! runtime that share most files, or apps that ship the same library, cost
//! those files once, as in an OSTree repository or composefs' object
//! store. Overlay mounts see the same files; content records and `fsck`
//! are unchanged (they read through any link).
//!
//! Links are made in a layer's tree while it is still in `tmp/`, before
//! it is put in place. An object is linked only after its bytes were read
//! and found to be what its name says (a damaged one is replaced), so a
//! layer never takes damage from another. gc removes objects no layer
//! links any more (one link left).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::store::Store;

/// Smaller files stay as they are: a link saves less than it costs.
const MIN_SIZE: u64 = 1024;

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// What `share` did to one tree.
#[derive(Debug, Default, Clone, Copy)]
pub struct Shared {
    /// Files that became links to an object the store had.
    pub linked: u64,
    pub bytes_saved: u64,
    /// Files that became new objects.
    pub added: u64,
}

/// A regular file of a content record: its path (raw bytes), size, sha256
/// and xattrs field.
struct FileLine {
    path: Vec<u8>,
    size: u64,
    sha: String,
    xattrs: String,
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn files_of(record: &str) -> Vec<FileLine> {
    record
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            // path type mode uid gid size sha256 xattrs
            if f.len() != 8 || f[1] != "f" {
                return None;
            }
            Some(FileLine {
                path: unescape(f[0])?,
                size: f[5].parse().ok()?,
                sha: f[6].to_owned(),
                xattrs: f[7].to_owned(),
            })
        })
        .collect()
}

impl Store {
    pub fn objects_dir(&self) -> PathBuf {
        self.root().join("objects")
    }
}

fn io(what: String) -> impl FnOnce(Errno) -> Error {
    move |e| Error::Io {
        context: what,
        source: e.into(),
    }
}

/// The sha256 of what `fd` holds, read from the start.
fn sha_of(fd: BorrowedFd<'_>) -> std::io::Result<String> {
    let mut f = std::fs::File::from(fd.try_clone_to_owned()?);
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Link the regular files of the tree at `root` (described by `record`,
/// its content record) into the store's objects: each becomes a link to
/// an existing object of the same content and attributes, or a new object.
/// Files already linked elsewhere in the tree, and small ones, are left.
/// Best effort per file: what cannot be linked stays a file of its own.
pub fn share(store: &Store, root: BorrowedFd<'_>, record: &str) -> Result<Shared> {
    let dir = store.objects_dir();
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    let objects = rustix::fs::open(
        &dir,
        OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::PATH,
        Mode::empty(),
    )
    .map_err(io(format!("opening {}", dir.display())))?;
    let mut done = Shared::default();
    // Objects this tree made or linked: two equal files of one layer stay two files
    // (an image's own files keep inodes of their own; a build copying them
    // with `cp -a` must not find them linked).
    let mut made = std::collections::HashSet::new();
    for f in files_of(record) {
        if f.size < MIN_SIZE || f.sha.len() != 64 || !f.sha.bytes().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        share_one(objects.as_fd(), root, &f, &mut done, &mut made)?;
    }
    Ok(done)
}

fn share_one(
    objects: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    f: &FileLine,
    done: &mut Shared,
    made: &mut std::collections::HashSet<String>,
) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let rel = f.path.strip_prefix(b"/").unwrap_or(&f.path);
    let (parent, name) = match rel.iter().rposition(|&c| c == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&b""[..], rel),
    };
    let name = std::ffi::OsStr::from_bytes(name);
    let parent = if parent.is_empty() { &b"."[..] } else { parent };
    let Ok(dir): std::result::Result<OwnedFd, _> = rustix::fs::openat2(
        root,
        std::ffi::OsStr::from_bytes(parent),
        OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
        RESOLVE,
    ) else {
        return Ok(());
    };
    // Linking changes the directory's times; the layer keeps the image's.
    let Ok(dst) = rustix::fs::fstat(&dir) else {
        return Ok(());
    };
    let keep_times = || {
        let _ = rustix::fs::futimens(
            &dir,
            &rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: dst.st_atime,
                    tv_nsec: dst.st_atime_nsec as _,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: dst.st_mtime,
                    tv_nsec: dst.st_mtime_nsec as _,
                },
            },
        );
    };
    let Ok(st) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return Ok(());
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_nlink != 1
        || st.st_size as u64 != f.size
    {
        return Ok(());
    }
    // Everything a hard link shares is in the name: the content, the mode
    // and owner, the modification time, and the xattrs (hashed).
    let xh = hex::encode(&Sha256::digest(f.xattrs.as_bytes())[..8]);
    let key = format!(
        "{}.{:o}.{}.{}.{}.{}.{xh}",
        &f.sha[2..],
        st.st_mode & 0o7777,
        st.st_uid,
        st.st_gid,
        st.st_mtime,
        st.st_mtime_nsec
    );
    if made.contains(&key) {
        return Ok(());
    }
    // Best effort: an objects/ entry that is not a directory only means
    // this file is not shared.
    let sub = &f.sha[..2];
    let _ = rustix::fs::mkdirat(objects, sub, Mode::from_raw_mode(0o755));
    let Ok(odir) = rustix::fs::openat(
        objects,
        sub,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::PATH,
        Mode::empty(),
    ) else {
        return Ok(());
    };
    // An object of this key that is what it says: link it in place of the
    // file. One that is not (damaged on disk): replace it with this file.
    if let Ok(obj) = rustix::fs::openat(
        &odir,
        &key,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        let ok = rustix::fs::fstat(&obj).is_ok_and(|o| {
            FileType::from_raw_mode(o.st_mode) == FileType::RegularFile
                && o.st_size == st.st_size
                && o.st_mode == st.st_mode
                && o.st_uid == st.st_uid
                && o.st_gid == st.st_gid
                && o.st_mtime == st.st_mtime
                && o.st_mtime_nsec == st.st_mtime_nsec
        }) && crate::content::xattrs_of(odir.as_fd(), Some(key.as_bytes()))
            .is_ok_and(|x| x == f.xattrs)
            && sha_of(obj.as_fd()).is_ok_and(|h| h == f.sha);
        if ok {
            // A name the image cannot have chosen: linkat fails on any
            // existing name, and only a link made here is ever removed.
            let tmp = crate::fsutil::unique_name(".berth-link-");
            if rustix::fs::linkat(&odir, &key, &dir, &tmp, AtFlags::empty()).is_ok() {
                if rustix::fs::renameat(&dir, &tmp, &dir, name).is_ok() {
                    done.linked += 1;
                    done.bytes_saved += f.size;
                    made.insert(key);
                } else {
                    let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
                }
            }
            keep_times();
            return Ok(());
        }
        let _ = rustix::fs::unlinkat(&odir, &key, AtFlags::empty());
    }
    if rustix::fs::linkat(&dir, name, &odir, &key, AtFlags::empty()).is_ok() {
        done.added += 1;
        made.insert(key);
    }
    Ok(())
}

/// Remove the objects no layer links any more; returns (objects, bytes).
/// The caller holds the store's exclusive lock.
pub fn prune(store: &Store) -> Result<(u64, u64)> {
    let (mut n, mut bytes) = (0, 0);
    let Ok(subs) = std::fs::read_dir(store.objects_dir()) else {
        return Ok((0, 0));
    };
    for sub in subs.flatten() {
        let Ok(files) = std::fs::read_dir(sub.path()) else {
            continue;
        };
        for f in files.flatten() {
            use std::os::unix::fs::MetadataExt;
            let Ok(m) = f.path().symlink_metadata() else {
                continue;
            };
            if m.nlink() <= 1 && std::fs::remove_file(f.path()).is_ok() {
                n += 1;
                bytes += m.len();
            }
        }
    }
    Ok((n, bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn record_lines_are_read_back() {
        let r = "berth-content 1\n/ d 755 @ @ - - -\n/a%20b f 644 @ @ 2048 aaaa -\n/l l 777 @ @ 1 a -\n";
        let f = files_of(r);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, b"/a b");
        assert_eq!(f[0].size, 2048);
        assert_eq!(unescape("%zz"), None);
        assert_eq!(unescape("%4"), None);
    }
}
