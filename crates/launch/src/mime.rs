//! Which opened files an app may change: a file's type by the system's
//! shared-mime-info database, matched against the app's `edit=` grants.
//! Only the system's database (`/usr/share/mime`) is used: the user's and
//! berth's exported ones hold types that apps declare for themselves, and
//! an app could claim `*.kdbx` for a type of its own and then `edit=` it.
//! xdg-mime is a reimplementation of the freedesktop xdgmime library
//! (globs, magic, aliases, sub-classes).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Enough of the start of a file for most magic rules.
const SNIFF: u64 = 16 * 1024;
/// The data directory whose `mime/` is the system's database.
const SYSTEM_DATA: &str = "/usr/share";

/// A file the user opened, held open (`O_PATH`), and which file it is.
pub struct Opened {
    pub fd: OwnedFd,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

/// Open `path` without following a last symlink; a regular file only.
pub fn open(path: &Path) -> Option<Opened> {
    use rustix::fs::{FileType, Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then(|| Opened {
        fd,
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).unwrap_or(0),
    })
}

/// Is `path` still the file that was checked (`dev`, `ino`), a regular
/// file reached without a last symlink? Its `O_PATH` fd if so, opened
/// without `O_NOFOLLOW` (xdg-document-portal refuses fds opened with it)
/// and checked to be that same file again.
pub fn same_file(path: &Path, dev: u64, ino: u64) -> Option<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    open(path).filter(|o| o.dev == dev && o.ino == ino)?;
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (st.st_dev == dev && st.st_ino == ino).then_some(fd)
}

/// The system's MIME database, loaded once, when first needed.
#[derive(Default)]
pub struct Types {
    db: Option<Option<xdg_mime::SharedMimeInfo>>,
}

impl Types {
    fn db(&mut self) -> Option<&xdg_mime::SharedMimeInfo> {
        self.db
            .get_or_insert_with(|| {
                // A damaged database must not stop a launch: no type, no write.
                catch_unwind(|| xdg_mime::SharedMimeInfo::new_for_directory(SYSTEM_DATA)).ok()
            })
            .as_ref()
    }

    /// The opened file's type is, or derives from, one of `patterns`
    /// (`type/subtype` or `type/*`). `name` is the name it was opened by.
    pub fn editable(&mut self, file: &Opened, name: &str, patterns: &[String]) -> bool {
        if patterns.is_empty() {
            return false;
        }
        // Read through the held file, never the path again; an empty file
        // is typed by its name alone (as GIO does), not as "zero size".
        let mut data = Vec::new();
        if file.size > 0 {
            let Some(f) = reopen(&file.fd, file.dev, file.ino) else {
                return false;
            };
            let _ = std::fs::File::from(f).take(SNIFF).read_to_end(&mut data);
        }
        let Some(db) = self.db() else {
            return false;
        };
        catch_unwind(AssertUnwindSafe(|| {
            let mut guess = db.guess_mime_type();
            guess.file_name(name);
            if !data.is_empty() {
                guess.data(&data);
            }
            let found = guess.guess();
            let found = found.mime_type();
            patterns.iter().any(|p| {
                p.parse::<mime::Mime>()
                    .is_ok_and(|base| db.mime_type_subclass(found, &base))
            })
        }))
        .unwrap_or(false)
    }
}

/// The `O_PATH` fd opened for reading (through `/proc/self/fd`), if it is
/// still that regular file.
fn reopen(fd: &OwnedFd, dev: u64, ino: u64) -> Option<OwnedFd> {
    use rustix::fs::{FileType, Mode, OFlags};
    let proc = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd())
    );
    let f = rustix::fs::open(
        proc.as_str(),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&f).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        && st.st_dev == dev
        && st.st_ino == ino)
        .then_some(f)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check(types: &mut Types, p: &Path, pats: &[&str]) -> bool {
        let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
        let o = open(p).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        types.editable(&o, name, &pats)
    }

    #[test]
    fn types_and_subtypes_match() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("main.c");
        std::fs::write(&c, "int main(void) { return 0; }\n").unwrap();
        let png = d.path().join("x.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n").unwrap();
        let t = &mut Types::default();
        assert!(check(t, &c, &["text/x-csrc"]));
        assert!(check(t, &c, &["text/plain"]), "C source is text");
        assert!(check(t, &c, &["text/*"]));
        assert!(!check(t, &c, &["image/png"]));
        assert!(check(t, &png, &["image/*"]));
        assert!(!check(t, &png, &["text/plain"]));
        assert!(!check(t, &png, &[]));
        // Sniffed: no extension.
        let noext = d.path().join("picture");
        std::fs::write(&noext, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        assert!(check(t, &noext, &["image/png"]));
        // Empty: by its name.
        let empty = d.path().join("new.txt");
        std::fs::write(&empty, b"").unwrap();
        assert!(check(t, &empty, &["text/plain"]));
    }

    #[test]
    fn only_regular_files_by_their_own_name() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.txt");
        std::fs::write(&f, "x").unwrap();
        let link = d.path().join("link.txt");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(open(&link).is_none(), "a last symlink is not followed");
        assert!(open(d.path()).is_none(), "a directory is not a file");
        assert!(open(Path::new("/dev/null")).is_none());
        let o = open(&f).unwrap();
        assert!(same_file(&f, o.dev, o.ino).is_some());
        // Replaced by another file: not the same one.
        std::fs::remove_file(&f).unwrap();
        std::fs::write(d.path().join("b.txt"), "y").unwrap();
        std::fs::rename(d.path().join("b.txt"), &f).unwrap();
        assert!(same_file(&f, o.dev, o.ino).is_none());
    }
}
