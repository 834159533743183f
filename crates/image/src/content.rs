//! Content records of unpacked layers: one line per file with its path,
//! type, mode, owner, size, xattrs and data digest, sorted by path.
//! Written when a layer is unpacked (its presence is the layer's completion
//! marker) and recomputed by `fsck` to find files that were deleted,
//! truncated or changed in `layers/`. Composefs' dump format is the model;
//! ours is smaller because the tree itself holds the data.
//!
//! ```text
//! berth-content 1
//! / d 755 0 0 - - -
//! /etc/debian_version f 644 0 0 5 9a3f...c1 -
//! /bin/sh l 777 0 0 4 dash -
//! /usr/bin/ping f 755 0 0 90568 77ab...e0 security.capability=0100000200200000...
//! ```
//! Fields: path, type (`f d l c b p s`), mode (octal, with setuid/setgid/
//! sticky), uid, gid, size, digest (`f`), target (`l`) or rdev (`c b`) or
//! `-`, and xattrs as `name=hexvalue` joined by `,` or `-`. Paths and
//! targets are percent-escaped outside printable ASCII, so every field is
//! one word.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

pub const HEADER: &str = "berth-content 1";

/// Build the record of the tree under `root`.
pub fn record(root: BorrowedFd<'_>) -> Result<String> {
    let mut out = String::from(HEADER);
    out.push('\n');
    let st = rustix::fs::fstat(root).map_err(|e| io_err("/", e))?;
    line(&mut out, b"/", &st, "-".into(), xattrs_of(root, None)?);
    walk(root, b"", &mut out)?;
    Ok(out)
}

fn walk(dir: BorrowedFd<'_>, prefix: &[u8], out: &mut String) -> Result<()> {
    let shown = || display_path(if prefix.is_empty() { b"/" } else { prefix });
    let names =
        with_access(dir, None, true, || read_names(dir)).map_err(|e| io_err(&shown(), e))?;
    for name in names {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(&name);
        let p = display_path(&path);
        let name_os = std::ffi::OsStr::from_bytes(&name);
        let st = rustix::fs::statat(dir, name_os, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(&p, e))?;
        let ft = FileType::from_raw_mode(st.st_mode);
        match ft {
            FileType::Symlink => {
                let t =
                    rustix::fs::readlinkat(dir, name_os, Vec::new()).map_err(|e| io_err(&p, e))?;
                let extra = escape(t.as_bytes());
                let x = xattrs_of(dir, Some(&name))?;
                line(out, &path, &st, extra, x);
            }
            FileType::Directory => {
                let x = xattrs_of(dir, Some(&name))?;
                line(out, &path, &st, "-".into(), x);
                let sub = with_access(dir, Some(name_os), true, || {
                    rustix::fs::openat(
                        dir,
                        name_os,
                        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
                        Mode::empty(),
                    )
                })
                .map_err(|e| io_err(&p, e))?;
                walk(sub.as_fd(), &path, out)?;
            }
            FileType::RegularFile => {
                let fd = with_access(dir, Some(name_os), false, || {
                    rustix::fs::openat(
                        dir,
                        name_os,
                        OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
                        Mode::empty(),
                    )
                })
                .map_err(|e| io_err(&p, e))?;
                let digest = hash_file(fd).map_err(|e| Error::Io {
                    context: format!("reading {p}"),
                    source: e,
                })?;
                let x = xattrs_of(dir, Some(&name))?;
                line(out, &path, &st, digest, x);
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let x = xattrs_of(dir, Some(&name))?;
                line(out, &path, &st, format!("{:x}", st.st_rdev), x);
            }
            _ => {
                let x = xattrs_of(dir, Some(&name))?;
                line(out, &path, &st, "-".into(), x);
            }
        }
    }
    Ok(())
}

fn read_names(dir: BorrowedFd<'_>) -> std::result::Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    // read_from opens its own fd for "." (the offset is not shared).
    for e in rustix::fs::Dir::read_from(dir)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Run `f`; if it fails with EACCES on something we own (rootless layers
/// keep the image's modes, e.g. a 0500 directory or a 0000 file), lend
/// ourselves read access for the call and put the mode back.
fn with_access<T>(
    dir: BorrowedFd<'_>,
    name: Option<&std::ffi::OsStr>,
    is_dir: bool,
    mut f: impl FnMut() -> std::result::Result<T, Errno>,
) -> std::result::Result<T, Errno> {
    match f() {
        Err(Errno::ACCESS) => {}
        r => return r,
    }
    let target = name.unwrap_or(std::ffi::OsStr::new("."));
    let st = rustix::fs::statat(dir, target, AtFlags::SYMLINK_NOFOLLOW)?;
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(Errno::ACCESS);
    }
    let old = st.st_mode & 0o7777;
    let lend = if is_dir { 0o500 } else { 0o400 };
    rustix::fs::chmodat(
        dir,
        target,
        Mode::from_raw_mode(old | lend),
        AtFlags::empty(),
    )?;
    let r = f();
    let _ = rustix::fs::chmodat(dir, target, Mode::from_raw_mode(old), AtFlags::empty());
    r
}

fn hash_file(fd: OwnedFd) -> std::io::Result<String> {
    let mut f = std::fs::File::from(fd);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `name=hexvalue` pairs, sorted, through /proc/self/fd so the directory
/// fd anchors the lookup and the last component is never followed.
fn xattrs_of(dir: BorrowedFd<'_>, name: Option<&[u8]>) -> Result<String> {
    let mut path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir)).into_bytes();
    if let Some(n) = name {
        path.push(b'/');
        path.extend_from_slice(n);
    }
    let path = std::ffi::OsStr::from_bytes(&path);
    let shown = || display_path(name.unwrap_or(b"/"));
    let mut list = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut list[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => list.resize(list.len() * 4, 0),
            Err(Errno::OPNOTSUPP) => return Ok("-".into()),
            Err(e) => return Err(io_err(&shown(), e)),
        }
    };
    let mut names: Vec<&[u8]> = list[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .collect();
    names.sort();
    let mut out = String::new();
    for xn in names {
        let xname = std::ffi::OsStr::from_bytes(xn);
        let mut val = vec![0u8; 1024];
        let len = loop {
            match rustix::fs::lgetxattr(path, xname, &mut val[..]) {
                Ok(n) => break n,
                Err(Errno::RANGE) => val.resize(val.len() * 4, 0),
                Err(Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(io_err(&shown(), e)),
            }
        };
        if len == usize::MAX {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{}={}", escape(xn), hex::encode(&val[..len]));
    }
    Ok(if out.is_empty() { "-".into() } else { out })
}

fn line(out: &mut String, path: &[u8], st: &rustix::fs::Stat, extra: String, xattrs: String) {
    let ft = FileType::from_raw_mode(st.st_mode);
    let t = match ft {
        FileType::RegularFile => 'f',
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharacterDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        _ => 's',
    };
    // A directory's size depends on the filesystem, not on the image.
    let size = if ft == FileType::Directory {
        "-".to_owned()
    } else {
        st.st_size.to_string()
    };
    let _ = writeln!(
        out,
        "{} {t} {:o} {} {} {size} {extra} {xattrs}",
        escape(path),
        st.st_mode & 0o7777,
        st.st_uid,
        st.st_gid
    );
}

/// Percent-escape bytes outside printable ASCII, and `%` and space.
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() && c != b'%' {
            s.push(c as char);
        } else {
            let _ = write!(s, "%{c:02x}");
        }
    }
    s
}

fn display_path(p: &[u8]) -> String {
    escape(p)
}

fn io_err(path: &str, e: Errno) -> Error {
    Error::Io {
        context: format!("reading {path} in an unpacked layer"),
        source: e.into(),
    }
}

/// Differences between a stored record and a fresh one, as plain
/// sentences, at most `max` of them (then a count of the rest).
pub fn differences(stored: &str, now: &str, max: usize) -> Vec<String> {
    let parse = |t: &str| -> BTreeMap<String, String> {
        t.lines()
            .skip(1)
            .filter_map(|l| l.split_once(' ').map(|(p, r)| (p.to_owned(), r.to_owned())))
            .collect()
    };
    let mut out = Vec::new();
    if stored.lines().next() != Some(HEADER) {
        out.push("its content record is damaged or of an unknown version".into());
        return out;
    }
    let (a, b) = (parse(stored), parse(now));
    let mut n = 0usize;
    let mut push = |s: String| {
        n += 1;
        if n <= max {
            out.push(s);
        }
    };
    for (p, ra) in &a {
        match b.get(p) {
            None => push(format!("{p} is missing")),
            Some(rb) if rb != ra => push(format!("{p} changed ({})", what_changed(ra, rb))),
            Some(_) => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        push(format!("{p} was added"));
    }
    if n > max {
        out.push(format!("and {} more difference(s)", n - max));
    }
    out
}

fn what_changed(a: &str, b: &str) -> String {
    const FIELDS: [&str; 7] = [
        "type", "mode", "owner", "group", "size", "content", "xattrs",
    ];
    let fa: Vec<&str> = a.split(' ').collect();
    let fb: Vec<&str> = b.split(' ').collect();
    let changed: Vec<&str> = FIELDS
        .iter()
        .enumerate()
        .filter(|(i, _)| fa.get(*i) != fb.get(*i))
        .map(|(_, f)| *f)
        .collect();
    changed.join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn rec(dir: &std::path::Path) -> String {
        let fd = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        record(fd.as_fd()).unwrap()
    }

    #[test]
    fn records_and_finds_changes() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/debian_version"), "12.5\n").unwrap();
        std::fs::write(r.join("a b%\n"), "x").unwrap();
        symlink("etc/debian_version", r.join("link")).unwrap();
        let first = rec(r);
        assert!(first.starts_with(HEADER));
        assert!(first.contains("/a%20b%25%0a f "), "{first}");
        assert!(first.contains("/link l 777"), "{first}");
        assert_eq!(rec(r), first, "deterministic");
        assert!(differences(&first, &first, 10).is_empty());

        std::fs::write(r.join("etc/debian_version"), "").unwrap();
        let d = differences(&first, &rec(r), 10);
        assert_eq!(
            d,
            vec!["/etc/debian_version changed (size, content)".to_owned()]
        );

        std::fs::remove_file(r.join("etc/debian_version")).unwrap();
        std::fs::write(r.join("new"), "").unwrap();
        let d = differences(&first, &rec(r), 10);
        assert_eq!(
            d,
            vec![
                "/etc/debian_version is missing".to_owned(),
                "/new was added".to_owned()
            ]
        );
        assert_eq!(
            differences(&first, &rec(r), 1).len(),
            2,
            "capped plus a count"
        );
        assert!(!differences("garbage", &first, 5).is_empty());
    }

    #[test]
    fn same_bytes_same_digest_different_mode_differs() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "data").unwrap();
        let a = rec(t.path());
        std::fs::set_permissions(
            t.path().join("f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let d = differences(&a, &rec(t.path()), 5);
        assert_eq!(d, vec!["/f changed (mode)".to_owned()]);
    }
}
