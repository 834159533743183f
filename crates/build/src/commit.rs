//! `berth commit`: what an instance changed (the upper directory of its
//! root's overlay) as one layer, with overlay's markers turned back into
//! the OCI forms: a whiteout (character device 0:0) becomes `.wh.NAME`,
//! an opaque directory (`*.overlay.opaque=y`) gets `.wh..wh..opq`.
//! Files keep their modes, owners and times, as `podman commit` keeps
//! them; setuid and setgid bits are dropped (import would drop them).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::{Error, Result};
use crate::layer::LayerWriter;

/// What a commit layer holds.
#[derive(Debug, Default, serde::Serialize)]
pub struct ChangeStats {
    pub files: u64,
    pub bytes: u64,
    /// Paths the instance removed from the image.
    pub removed: u64,
    /// Entries a layer cannot carry (sockets, devices), left out.
    pub skipped: Vec<String>,
}

/// Write the changes in overlay upper directory `upper` into `w`, under
/// `prefix` (empty: the root). `as_root`: the (uid, gid) that owns what
/// a rootless sandbox wrote, recorded as root's like any image's files
/// (its copied-up directories were root's in the image).
pub fn upper_layer(
    upper: &Path,
    prefix: &str,
    as_root: Option<(u32, u32)>,
    w: &mut LayerWriter,
) -> Result<ChangeStats> {
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|c| c == "." || c == "..") {
        return Err(Error::invalid("layer prefix", prefix.to_owned()));
    }
    let mut stats = ChangeStats::default();
    let mut tar = tar::Builder::new(&mut *w);
    let werr = |e: io::Error| Error::Io {
        context: "writing the commit layer".into(),
        source: e,
    };
    let mut acc = PathBuf::new();
    for c in prefix.split('/').filter(|c| !c.is_empty()) {
        acc.push(c);
        let mut h = header(tar::EntryType::Directory, 0o755, 0, 0, 0);
        let mut p = acc.clone().into_os_string();
        p.push("/");
        tar.append_data(&mut h, &p, io::empty()).map_err(werr)?;
    }
    // A plain directory (an app's data) is the whole of that path, not
    // changes to it: what the image had there is replaced, so a file the
    // app deleted does not come back from below.
    if !acc.as_os_str().is_empty() {
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
        tar.append_data(&mut h, acc.join(".wh..wh..opq"), io::empty())
            .map_err(werr)?;
    }
    let root = rustix::fs::open(
        upper,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        context: format!("opening {}", upper.display()),
        source: e.into(),
    })?;
    walk(
        root.as_fd(),
        &acc,
        &mut tar,
        &mut HashMap::new(),
        &mut stats,
        as_root,
    )?;
    tar.finish().map_err(werr)?;
    Ok(stats)
}

/// The owner a rootless unpack recorded for a file it could not chown
/// (copied up with the file), else the user's own files as root's.
fn owner(fd: BorrowedFd<'_>, uid: u32, gid: u32, as_root: Option<(u32, u32)>) -> (u32, u32) {
    let Some((u, g)) = as_root else {
        return (uid, gid);
    };
    let mut buf = [0u8; 48];
    let recorded = rustix::fs::fgetxattr(fd, berth_image::unpack::OWNER_XATTR, &mut buf[..])
        .ok()
        .and_then(|n| std::str::from_utf8(&buf[..n]).ok())
        .and_then(|v| v.split_once(':'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    recorded.unwrap_or((
        if uid == u { 0 } else { uid },
        if gid == g { 0 } else { gid },
    ))
}

/// Whether `upper` holds the directory `path` (absolute, as inside the
/// sandbox), reached without following a link: a root whose changes
/// carry a home.
pub fn has_dir(upper: &Path, path: &str) -> bool {
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::PATH | OFlags::CLOEXEC;
    let Ok(mut fd) = rustix::fs::open(upper, flags, Mode::empty()) else {
        return false;
    };
    for c in path.split('/').filter(|c| !c.is_empty()) {
        if c == ".." || c == "." {
            return false;
        }
        match rustix::fs::openat(&fd, c, flags, Mode::empty()) {
            Ok(next) => fd = next,
            Err(_) => return false,
        }
    }
    true
}

fn header(kind: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(u64::try_from(mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// Entries are opened relative to their directory's fd, never followed:
/// a running instance (one that could not be frozen) may swap a
/// directory for a symlink to a host path while it is read, and only
/// its own root may end up in the layer.
fn walk<W: Write>(
    dir: BorrowedFd<'_>,
    rel: &Path,
    tar: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
    stats: &mut ChangeStats,
    as_root: Option<(u32, u32)>,
) -> Result<()> {
    let shown = |p: &Path| {
        if p.as_os_str().is_empty() {
            ".".into()
        } else {
            p.display().to_string()
        }
    };
    let sys = |what: String| {
        move |e: rustix::io::Errno| Error::Io {
            context: what,
            source: e.into(),
        }
    };
    let mut names: Vec<OsString> = Vec::new();
    let listing =
        rustix::fs::Dir::read_from(dir).map_err(sys(format!("reading {}", shown(rel))))?;
    for e in listing {
        let e = e.map_err(sys(format!("reading {}", shown(rel))))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsString::from_vec(n.to_vec()));
        }
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let werr = |p: &Path| {
        let p = p.display().to_string();
        move |e: io::Error| Error::Io {
            context: format!("adding {p} to the layer"),
            source: e,
        }
    };
    for name in names {
        let path = rel.join(&name);
        let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(sys(format!("reading {}", path.display())))?;
        let (mut uid, mut gid, mtime) = (st.st_uid, st.st_gid, st.st_mtime);
        if let Some((u, g)) = as_root {
            // Links and FIFOs (no fd to read a recorded owner from).
            uid = if uid == u { 0 } else { uid };
            gid = if gid == g { 0 } else { gid };
        }
        // OCI reserves these names for whiteouts: as a file they would
        // remove or hide the image's files when the layer is applied.
        if name.as_encoded_bytes().starts_with(b".wh.") {
            stats.skipped.push(format!(
                "{} (a name layers reserve for whiteouts)",
                path.display()
            ));
            continue;
        }
        let mode = st.st_mode & 0o1777;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::CharacterDevice if st.st_rdev == 0 => {
                // overlayfs' whiteout: the image's file is gone.
                let mut wh = OsString::from(".wh.");
                wh.push(&name);
                let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, mtime);
                tar.append_data(&mut h, rel.join(wh), io::empty())
                    .map_err(werr(&path))?;
                stats.removed += 1;
            }
            FileType::Directory => {
                let sub = rustix::fs::openat(
                    dir,
                    &name,
                    OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys(format!("opening {}", path.display())))?;
                let (uid, gid) = owner(sub.as_fd(), st.st_uid, st.st_gid, as_root);
                let mut h = header(tar::EntryType::Directory, mode, uid, gid, mtime);
                let mut p = path.clone().into_os_string();
                p.push("/");
                tar.append_data(&mut h, &p, io::empty())
                    .map_err(werr(&path))?;
                if berth_image::unpack::is_opaque(sub.as_fd()) {
                    // Replaces the image's directory instead of merging.
                    let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, mtime);
                    tar.append_data(&mut h, path.join(".wh..wh..opq"), io::empty())
                        .map_err(werr(&path))?;
                }
                walk(sub.as_fd(), &path, tar, links, stats, as_root)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, &name, Vec::new())
                    .map_err(sys(format!("reading {}", path.display())))?;
                // A link leading out of the root (`../../etc/shadow`) is
                // refused by every import: left out, said, the rest kept.
                if berth_image::unpack::symlink_escapes(&path, target.as_bytes()) {
                    stats.skipped.push(format!(
                        "{} (a symbolic link out of the root)",
                        path.display()
                    ));
                    continue;
                }
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                let mut h = header(tar::EntryType::Symlink, 0o777, uid, gid, mtime);
                tar.append_link(&mut h, &path, &target)
                    .map_err(werr(&path))?;
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = links.get(&key) {
                        let mut h = header(tar::EntryType::Link, mode, uid, gid, mtime);
                        tar.append_link(&mut h, &path, first).map_err(werr(&path))?;
                        continue;
                    }
                    links.insert(key, path.clone());
                }
                // Non-blocking: a FIFO swapped in must not hang the commit
                // (the dev/ino check below then refuses it).
                let fd = rustix::fs::openat(
                    dir,
                    &name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC
                        | OFlags::NOCTTY
                        | OFlags::NONBLOCK,
                    Mode::empty(),
                )
                .map_err(sys(format!("opening {}", path.display())))?;
                // Whatever sits there now must still be that file.
                let now =
                    rustix::fs::fstat(&fd).map_err(sys(format!("reading {}", path.display())))?;
                if (now.st_dev, now.st_ino) != key {
                    return Err(Error::invalid(
                        "the instance's root",
                        format!("{} changed while it was read", path.display()),
                    ));
                }
                let len = u64::try_from(st.st_size).unwrap_or(0);
                let (uid, gid) = owner(fd.as_fd(), st.st_uid, st.st_gid, as_root);
                let mut h = header(tar::EntryType::Regular, mode, uid, gid, mtime);
                h.set_size(len);
                // A file still being written is taken as it was when listed;
                // one that shrank meanwhile is an error, never a short entry.
                let mut body = Exactly {
                    inner: io::Read::take(File::from(fd), len),
                    left: len,
                };
                tar.append_data(&mut h, &path, &mut body)
                    .map_err(werr(&path))?;
                stats.files += 1;
                stats.bytes += len;
            }
            FileType::Fifo => {
                let mut h = header(tar::EntryType::Fifo, mode, uid, gid, mtime);
                tar.append_data(&mut h, &path, io::empty())
                    .map_err(werr(&path))?;
            }
            _ => stats.skipped.push(path.display().to_string()),
        }
    }
    Ok(())
}

/// `left` bytes of `inner`, or an error if it ends sooner.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn an_upper_dir_becomes_an_oci_layer() {
        let d = tempfile::tempdir().unwrap();
        let up = d.path().join("upper");
        fs::create_dir_all(up.join("etc/new")).unwrap();
        fs::write(up.join("etc/new/file"), b"hello").unwrap();
        fs::write(up.join("etc/linked"), b"x").unwrap();
        fs::hard_link(up.join("etc/linked"), up.join("etc/linked2")).unwrap();
        std::os::unix::fs::symlink("new/file", up.join("etc/sym")).unwrap();
        // Out of the root: every import refuses it, so it stays out.
        std::os::unix::fs::symlink("../../../../etc/shadow", up.join("etc/out")).unwrap();
        let root = rustix::process::geteuid().is_root();
        if root {
            // What overlayfs leaves for a removed file.
            rustix::fs::mknodat(
                rustix::fs::CWD,
                up.join("etc/gone"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0),
                0,
            )
            .unwrap();
        }
        rustix::fs::setxattr(
            up.join("etc/new"),
            "user.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .ok();
        let out = d.path().join("layer");
        let mut w = LayerWriter::create(&out).unwrap();
        let stats = upper_layer(&up, "", None, &mut w).unwrap();
        let blob = w.finish().unwrap();
        assert_eq!(stats.files, 2);
        let f = File::open(&blob.path).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut names: Vec<(String, tar::EntryType)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let has = |p: &str, t: tar::EntryType| names.iter().any(|(n, k)| n == p && *k == t);
        assert!(has("etc/new/file", tar::EntryType::Regular), "{names:?}");
        assert!(has("etc/linked2", tar::EntryType::Link), "{names:?}");
        assert!(has("etc/sym", tar::EntryType::Symlink), "{names:?}");
        assert!(!names.iter().any(|(n, _)| n == "etc/out"), "{names:?}");
        assert!(stats.skipped.iter().any(|s| s.starts_with("etc/out")));
        if root {
            assert!(has("etc/.wh.gone", tar::EntryType::Regular), "{names:?}");
            assert_eq!(stats.removed, 1);
        }
        if rustix::fs::getxattr(up.join("etc/new"), "user.overlay.opaque", &mut [0u8; 4][..])
            .is_ok()
        {
            assert!(
                has("etc/new/.wh..wh..opq", tar::EntryType::Regular),
                "{names:?}"
            );
        }
    }
}
