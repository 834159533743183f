//! Content records of unpacked layers: one line per file with its path,
//! type, mode, owner, size, xattrs and data digest, sorted by path.
//! Written when a layer is unpacked (its presence is the layer's completion
//! marker) and recomputed by `fsck` to find files that were deleted,
//! truncated or changed in `layers/`. Composefs' dump format is the model;
//! ours is smaller because the tree itself holds the data.
//!
//! ```text
//! berth-content 1
//! / d 755 @ @ - - -
//! /etc/debian_version f 644 @ @ 5 9a3f...c1 -
//! /bin/sh l 777 @ @ 4 dash -
//! /home/user f 644 1000 1000 0 e3b0...55 -
//! ```
//! Fields: path, type (`f d l c b p s`), mode (octal, with setuid/setgid/
//! sticky), uid, gid (`@`: the reader's own, so a user namespace that
//! renumbers the store's owner reads the same record), size, digest (`f`),
//! target (`l`) or rdev (`c b`) or
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
    lending(root, None, &st, 0o500, || walk(root, b"", &mut out))?;
    Ok(out)
}

fn walk(dir: BorrowedFd<'_>, prefix: &[u8], out: &mut String) -> Result<()> {
    let shown = || display_path(if prefix.is_empty() { b"/" } else { prefix });
    let names = read_names(dir).map_err(|e| io_err(&shown(), e))?;
    for name in names {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(&name);
        let p = display_path(&path);
        let name_os = std::ffi::OsStr::from_bytes(&name);
        let st = rustix::fs::statat(dir, name_os, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(&p, e))?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let x = xattrs_of(dir, Some(&name))?;
        match ft {
            FileType::Symlink => {
                let t =
                    rustix::fs::readlinkat(dir, name_os, Vec::new()).map_err(|e| io_err(&p, e))?;
                line(out, &path, &st, escape(t.as_bytes()), x);
            }
            FileType::Directory => {
                line(out, &path, &st, "-".into(), x);
                lending(dir, Some(name_os), &st, 0o500, || {
                    let sub = rustix::fs::openat(
                        dir,
                        name_os,
                        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
                        Mode::empty(),
                    )
                    .map_err(|e| io_err(&p, e))?;
                    walk(sub.as_fd(), &path, out)
                })?;
            }
            FileType::RegularFile => {
                let fd = lending(dir, Some(name_os), &st, 0o400, || {
                    rustix::fs::openat(
                        dir,
                        name_os,
                        OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
                        Mode::empty(),
                    )
                    .map_err(|e| io_err(&p, e))
                })?;
                let digest = hash_file(fd).map_err(|e| Error::Io {
                    context: format!("reading {p}"),
                    source: e,
                })?;
                line(out, &path, &st, digest, x);
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                line(out, &path, &st, format!("{:x}", st.st_rdev), x);
            }
            _ => line(out, &path, &st, "-".into(), x),
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

/// Run `f` with the owner bits `need` on an entry (`name` in `dir`, or
/// `dir` itself). Rootless layers keep the image's modes (a 0500 or 0000
/// directory, a 0000 file) and a user has no DAC override: if we own the
/// entry, lend ourselves the bits for the call and put the mode back,
/// also when `f` fails. Root reads everything as it is.
fn lending<T>(
    dir: BorrowedFd<'_>,
    name: Option<&std::ffi::OsStr>,
    st: &rustix::fs::Stat,
    need: u32,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let euid = rustix::process::geteuid();
    if st.st_mode & need == need || euid.is_root() || st.st_uid != euid.as_raw() {
        return f();
    }
    let old = Mode::from_raw_mode(st.st_mode & 0o7777);
    let lent = Mode::from_raw_mode((st.st_mode & 0o7777) | need);
    let set = |m: Mode| match name {
        Some(n) => rustix::fs::chmodat(dir, n, m, AtFlags::empty()),
        None => rustix::fs::fchmod(dir, m),
    };
    let shown = name.map_or_else(|| "/".to_owned(), |n| escape(n.as_bytes()));
    set(lent).map_err(|e| io_err(&shown, e))?;
    let r = f();
    let back = set(old);
    let v = r?;
    back.map_err(|e| io_err(&shown, e))?;
    Ok(v)
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

/// xattrs the kernel or an LSM sets on its own (labels, integrity
/// measurements): not part of what was unpacked.
fn managed_xattr(name: &[u8]) -> bool {
    [
        &b"security.selinux"[..],
        b"security.ima",
        b"security.evm",
        b"security.SMACK64",
        b"security.apparmor",
    ]
    .contains(&name)
}

/// `name=hexvalue` pairs, sorted. A child is read through
/// /proc/self/fd/DIR/NAME with the l* calls, so the directory fd anchors
/// the lookup and the last component is never followed; the tree's own
/// root through its fd.
pub(crate) fn xattrs_of(dir: BorrowedFd<'_>, name: Option<&[u8]>) -> Result<String> {
    let mut path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir)).into_bytes();
    if let Some(n) = name {
        path.push(b'/');
        path.extend_from_slice(n);
    }
    let path = std::ffi::OsStr::from_bytes(&path);
    let shown = || display_path(name.unwrap_or(b"/"));
    let list_into = |buf: &mut [u8]| match name {
        Some(_) => rustix::fs::llistxattr(path, buf),
        None => rustix::fs::flistxattr(dir, buf),
    };
    let get_into = |x: &std::ffi::OsStr, buf: &mut [u8]| match name {
        Some(_) => rustix::fs::lgetxattr(path, x, buf),
        None => rustix::fs::fgetxattr(dir, x, buf),
    };
    let mut list = vec![0u8; 4096];
    let n = loop {
        match list_into(&mut list[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => list.resize(list.len() * 4, 0),
            Err(Errno::OPNOTSUPP) => return Ok("-".into()),
            Err(e) => return Err(io_err(&shown(), e)),
        }
    };
    let mut names: Vec<&[u8]> = list[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty() && !managed_xattr(s))
        .collect();
    names.sort();
    let mut out = String::new();
    for xn in names {
        let xname = std::ffi::OsStr::from_bytes(xn);
        let mut val = vec![0u8; 1024];
        let len = loop {
            match get_into(xname, &mut val[..]) {
                Ok(n) => break Some(n),
                Err(Errno::RANGE) => val.resize(val.len() * 4, 0),
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(io_err(&shown(), e)),
            }
        };
        let Some(len) = len else { continue };
        if !out.is_empty() {
            out.push(',');
        }
        // `=` and `,` separate the pairs, so a name may not hold them raw.
        let _ = write!(
            out,
            "{}={}",
            escape_with(xn, b"=,"),
            hex::encode(&val[..len])
        );
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
    // Owned by whoever reads the tree (the store's owner, however a user
    // namespace numbers it): `@`. Other owners (a root store keeps the
    // image's) by number.
    let uid = if st.st_uid == rustix::process::geteuid().as_raw() {
        "@".to_owned()
    } else {
        st.st_uid.to_string()
    };
    let gid = if st.st_gid == rustix::process::getegid().as_raw() {
        "@".to_owned()
    } else {
        st.st_gid.to_string()
    };
    let _ = writeln!(
        out,
        "{} {t} {:o} {uid} {gid} {size} {extra} {xattrs}",
        escape(path),
        st.st_mode & 0o7777
    );
}

/// Percent-escape bytes outside printable ASCII, and `%` and space.
pub fn escape(b: &[u8]) -> String {
    escape_with(b, b"")
}

/// `escape`, also escaping the bytes in `more`.
fn escape_with(b: &[u8], more: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() && c != b'%' && !more.contains(&c) {
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

    #[test]
    fn closed_directories_are_read_and_left_as_they_were() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), "x").unwrap();
        std::fs::write(d.join("g"), "y").unwrap();
        let perm = |p: &std::path::Path, m: u32| {
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
        };
        perm(&d.join("g"), 0o000);
        perm(&d.join("sub"), 0o000);
        perm(&d, 0o100);
        let r = rec(t.path());
        perm(&d, 0o755);
        perm(&d.join("sub"), 0o755);
        assert!(r.contains("/d/sub/f f "), "{r}");
        assert!(r.contains("/d/g f 0 "), "{r}");
        assert!(r.contains("/d d 100 "), "{r}");
        assert!(r.contains("/d/sub d 0 "), "{r}");
        let mode = |p: &std::path::Path| {
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
                & 0o7777
        };
        assert_eq!(mode(&d.join("g")), 0);
    }

    #[test]
    fn xattrs_of_the_root_and_odd_names_are_recorded_apart() {
        let t = tempfile::tempdir().unwrap();
        let set = |p: &std::path::Path, k: &str, v: &[u8]| {
            rustix::fs::setxattr(p, k, v, rustix::fs::XattrFlags::empty())
        };
        if set(t.path(), "user.opaque", b"y").is_err() {
            return; // no user xattrs on this filesystem
        }
        let r = rec(t.path());
        assert!(r.lines().nth(1).unwrap().contains("user.opaque=79"), "{r}");
        let a = t.path().join("a");
        let b = t.path().join("b");
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        set(&a, "user.a", b"\x01").unwrap();
        set(&a, "user.b", b"\x02").unwrap();
        set(&b, "user.a=01,user.b", b"\x02").unwrap();
        let r = rec(t.path());
        let line_of = |n: &str| {
            r.lines()
                .find(|l| l.starts_with(n))
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        };
        assert_ne!(line_of("/a "), line_of("/b "), "{r}");
    }
}
