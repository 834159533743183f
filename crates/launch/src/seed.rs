//! An app's first private home from the home its image carries (a commit
//! with `--with-data`, label `org.berth.commit.home`): the image's layers
//! at that path, merged as overlayfs merges them, copied into a new data
//! directory. Written by hand: no crate copies overlayfs lower layers
//! (char 0:0 whiteouts, opaque directories) fd by fd.
//!
//! The layers are the store's, unpacked beneath their directories, but
//! their content is the image's: every entry is opened relative to its
//! directory's fd and never followed, so a symlink in a layer cannot make
//! the copy read or write anywhere else.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

const DIR: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// Copy `rel` (a path inside the image, e.g. `home/alice`) of `layers`
/// (bottom first) into `tmp`, then rename it to `dest` unless `dest`
/// exists by then (another first run seeded it). Returns the bytes copied.
pub fn seed_home(layers: &[&Path], rel: &Path, tmp: &Path, dest: &Path) -> io::Result<u64> {
    std::fs::DirBuilder::new().mode(0o700).create(tmp)?;
    let res = (|| {
        let out = rustix::fs::open(tmp, DIR, Mode::empty())?;
        let mut bytes = 0;
        for layer in layers {
            match at_path(layer, rel)? {
                At::Absent => {}
                // This layer removed the home, or replaced it: what lower
                // layers gave is gone (as overlayfs shows it).
                At::Gone => clear(out.as_fd())?,
                At::Dir { fd, opaque } => {
                    if opaque {
                        clear(out.as_fd())?;
                    }
                    bytes += merge(fd.as_fd(), out.as_fd(), 0)?;
                }
            }
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Never over a data directory another first run made meanwhile
        // (plain rename would replace an empty one it may have mounted).
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            tmp,
            rustix::fs::CWD,
            dest,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(bytes),
            Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => {
                let _ = std::fs::remove_dir_all(tmp);
                Ok(bytes)
            }
            Err(e) => Err(e.into()),
        }
    })();
    if res.is_err() {
        let _ = std::fs::remove_dir_all(tmp);
    }
    res
}

/// What one layer says of the path.
enum At {
    /// Nothing: lower layers show through.
    Absent,
    /// A whiteout, a file in its place, or an opaque parent without it.
    Gone,
    /// A directory; `opaque`: it or a parent hides the lower layers'.
    Dir { fd: OwnedFd, opaque: bool },
}

fn at_path(root: &Path, rel: &Path) -> io::Result<At> {
    let Ok(mut fd) = rustix::fs::open(root, DIR, Mode::empty()) else {
        return Ok(At::Absent);
    };
    let mut hidden = false;
    for c in rel.components() {
        let std::path::Component::Normal(c) = c else {
            return Ok(At::Absent);
        };
        let st = match rustix::fs::statat(&fd, c, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) if hidden => return Ok(At::Gone),
            Err(rustix::io::Errno::NOENT) => return Ok(At::Absent),
            Err(e) => return Err(e.into()),
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Ok(At::Gone);
        }
        fd = rustix::fs::openat(&fd, c, DIR, Mode::empty())?;
        hidden |= berth_image::unpack::is_opaque(fd.as_fd());
    }
    Ok(At::Dir { fd, opaque: hidden })
}

/// Empty directory `dir`.
fn clear(dir: BorrowedFd<'_>) -> io::Result<()> {
    for n in names(dir)? {
        remove(dir, &n)?;
    }
    Ok(())
}

fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(dir)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(std::ffi::OsString::from(std::ffi::OsStr::from_bytes(n)));
        }
    }
    Ok(out)
}

/// Merge directory `src` over `dst`: a whiteout removes, an opaque
/// directory replaces, anything else is copied over.
fn merge(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, depth: usize) -> io::Result<u64> {
    // Deeper than any home needs; a hostile layer's nesting stops here.
    if depth > 256 {
        return Ok(0);
    }
    let mut bytes = 0;
    for name in names(src)? {
        let st = rustix::fs::statat(src, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777) & !Mode::from_raw_mode(0o7000);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::CharacterDevice if st.st_rdev == 0 => remove(dst, &name)?,
            FileType::Directory => {
                let s = rustix::fs::openat(src, &name, DIR, Mode::empty())?;
                if berth_image::unpack::is_opaque(s.as_fd()) {
                    remove(dst, &name)?;
                }
                match rustix::fs::statat(dst, &name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(d) if FileType::from_raw_mode(d.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        remove(dst, &name)?;
                        rustix::fs::mkdirat(dst, &name, mode | Mode::RWXU)?;
                    }
                    Err(_) => rustix::fs::mkdirat(dst, &name, mode | Mode::RWXU)?,
                }
                let d = rustix::fs::openat(dst, &name, DIR, Mode::empty())?;
                bytes += merge(s.as_fd(), d.as_fd(), depth + 1)?;
            }
            FileType::RegularFile => {
                remove(dst, &name)?;
                let from = rustix::fs::openat(
                    src,
                    &name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                    Mode::empty(),
                )?;
                let to = rustix::fs::openat(
                    dst,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode | Mode::RUSR | Mode::WUSR,
                )?;
                bytes += io::copy(&mut File::from(from), &mut File::from(to))?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, &name, Vec::new())?;
                remove(dst, &name)?;
                rustix::fs::symlinkat(target.as_c_str(), dst, &name)?;
            }
            // Devices, FIFOs and sockets have no place in a home.
            _ => {}
        }
    }
    Ok(bytes)
}

/// Remove `name` from `dir` if it is there (a directory with all it holds).
fn remove(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rustix::fs::openat(dir, name, DIR, Mode::empty())?;
        clear(sub.as_fd())?;
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn layers_merge_with_whiteouts_and_links_stay_links() {
        let t = ok(tempfile::tempdir());
        let p = t.path();
        let l1 = p.join("l1/home/a");
        let l2 = p.join("l2/home/a");
        ok(std::fs::create_dir_all(l1.join("docs")));
        ok(std::fs::create_dir_all(&l2));
        ok(std::fs::write(l1.join("docs/old"), b"old"));
        ok(std::fs::write(l1.join("keep"), b"1"));
        ok(std::fs::write(l2.join("keep"), b"2"));
        ok(std::os::unix::fs::symlink("/etc/shadow", l2.join("link")));
        // A whiteout of docs/ in the upper layer (needs mknod: root only).
        let whiteout = rustix::fs::mknodat(
            rustix::fs::CWD,
            l2.join("docs"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .is_ok();
        // A store no app ran from yet: no data/ directory.
        let dest = p.join("store/data/org.example.App");
        let layers = [p.join("l1"), p.join("l2"), p.join("none")];
        let layers: Vec<&Path> = layers.iter().map(|l| l.as_path()).collect();
        ok(seed_home(
            &layers,
            Path::new("home/a"),
            &p.join("tmp"),
            &dest,
        ));
        assert_eq!(std::fs::read(dest.join("keep")).ok(), Some(b"2".to_vec()));
        assert_eq!(
            std::fs::read_link(dest.join("link")).ok(),
            Some("/etc/shadow".into())
        );
        assert_eq!(dest.join("docs").exists(), !whiteout);
        assert!(!p.join("tmp").exists());
        // A second seeding leaves the first alone.
        ok(std::fs::write(dest.join("mine"), b"x"));
        ok(seed_home(
            &layers,
            Path::new("home/a"),
            &p.join("tmp"),
            &dest,
        ));
        assert!(dest.join("mine").exists());
        assert!(!p.join("tmp").exists());
    }

    #[test]
    fn a_home_removed_or_replaced_above_hides_what_was_below() {
        let t = ok(tempfile::tempdir());
        let p = t.path();
        ok(std::fs::create_dir_all(p.join("l1/home/a")));
        ok(std::fs::write(p.join("l1/home/a/secret"), b"s"));
        // l2: the home is a file now; l3: a new, opaque home.
        ok(std::fs::create_dir_all(p.join("l2/home")));
        ok(std::fs::write(p.join("l2/home/a"), b""));
        ok(std::fs::create_dir_all(p.join("l3/home/a")));
        ok(std::fs::write(p.join("l3/home/a/new"), b"n"));
        let seed = |names: &[&str], out: &str| {
            let layers: Vec<std::path::PathBuf> = names.iter().map(|n| p.join(n)).collect();
            let layers: Vec<&Path> = layers.iter().map(|l| l.as_path()).collect();
            let dest = p.join(out);
            ok(seed_home(
                &layers,
                Path::new("home/a"),
                &p.join("tmp"),
                &dest,
            ));
            dest
        };
        let d = seed(&["l1", "l2", "l3"], "d1");
        assert!(!d.join("secret").exists());
        assert!(d.join("new").exists());
        // An opaque home in the top layer: only its own files.
        let l4 = p.join("l4/home/a");
        ok(std::fs::create_dir_all(&l4));
        ok(std::fs::write(l4.join("mine"), b"m"));
        let dir = ok(rustix::fs::open(&l4, DIR, Mode::empty()));
        if rustix::fs::fsetxattr(
            &dir,
            "user.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok()
        {
            let d = seed(&["l1", "l4"], "d2");
            assert!(!d.join("secret").exists());
            assert!(d.join("mine").exists());
        }
    }
}
