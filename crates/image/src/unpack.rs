//! Hostile-input-safe layer unpacking.
//!
//! Every write happens relative to an open directory fd of the layer's
//! private temp dir. Parent directories are resolved with openat2
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so no entry can write through a
//! symlink (planted by an earlier entry or otherwise) or leave the tree.
//! Whiteouts are converted to overlayfs form here (char 0:0 nodes and the
//! `overlay.opaque` xattr) so the layer dir can be an overlay lower layer.
//!
//! The tar crate parses headers (ustar, GNU, PAX); the extraction loop is
//! ours because `tar::Archive::unpack` follows no fd-relative discipline and
//! does not know OCI whiteouts.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Whether a directory of an unpacked layer (or an overlay upper
/// directory) hides the lower layers' entries: the xattr this module
/// writes for `.wh..wh..opq`, or overlayfs writes for a recreated dir.
pub fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    ["user.overlay.opaque", "trusted.overlay.opaque"]
        .iter()
        .any(|k| {
            let mut v = [0u8; 4];
            rustix::fs::fgetxattr(dir, *k, &mut v[..]).is_ok_and(|n| n == 1 && v[0] == b'y')
        })
}
/// Where the original owner of a file is recorded when a rootless unpack
/// cannot chown (only for owners other than 0:0).
pub const OWNER_XATTR: &str = "user.berth.owner";

#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// Running as real root: chown to the tar's uid/gid and also write
    /// `trusted.overlay.*` markers. Otherwise files belong to the user.
    pub privileged: bool,
}

impl UnpackOptions {
    pub fn for_current_user() -> Self {
        UnpackOptions {
            privileged: rustix::process::geteuid().is_root(),
        }
    }
}

/// What was changed or left out while unpacking, for the user's warning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackReport {
    pub entries: u64,
    pub whiteouts: u64,
    pub dropped_devices: Vec<String>,
    pub stripped_setid: Vec<String>,
    pub dropped_xattrs: u64,
    /// GNU sparse files, stored with their holes filled.
    pub sparse: Vec<String>,
}

impl UnpackReport {
    pub fn merge(&mut self, o: UnpackReport) {
        self.entries += o.entries;
        self.whiteouts += o.whiteouts;
        self.dropped_devices.extend(o.dropped_devices);
        self.stripped_setid.extend(o.stripped_setid);
        self.dropped_xattrs += o.dropped_xattrs;
        self.sparse.extend(o.sparse);
    }
}

/// Normalize a tar entry path: strip `./` and empty components; refuse
/// absolute paths, `..` and NUL. `None` is the layer root itself.
pub fn sanitize_path(raw: &[u8]) -> std::result::Result<Option<PathBuf>, &'static str> {
    if raw.contains(&0) {
        return Err("path contains a NUL byte");
    }
    if raw.starts_with(b"/") {
        return Err("absolute path");
    }
    let mut out = PathBuf::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains '..'"),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Would a symlink at `link` (relative to the layer root) with `target`
/// resolve, lexically, to somewhere above the image root? Absolute targets
/// are rooted at the image root, as they are inside the sandbox.
pub fn symlink_escapes(link: &Path, target: &[u8]) -> bool {
    let mut depth: usize = if target.starts_with(b"/") {
        0
    } else {
        link.parent().map_or(0, |p| p.components().count())
    };
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

/// Which xattrs from an image we keep. Overlay and berth's own namespaces
/// could forge whiteouts or ownership; file capabilities and other
/// `security.*` attributes grant privilege, like setuid.
pub fn xattr_allowed(name: &str, privileged: bool) -> bool {
    if name.starts_with("user.overlay.") || name.starts_with("user.berth.") {
        return false;
    }
    if name.starts_with("user.") || name.starts_with("system.posix_acl_") {
        return true;
    }
    privileged && name.starts_with("trusted.") && !name.starts_with("trusted.overlay.")
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: i64,
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    opts: &'a UnpackOptions,
    report: UnpackReport,
    dirs: Vec<DirMeta>,
    cache: Option<(PathBuf, OwnedFd)>,
    split: Option<&'a crate::tarsplit::Recorder>,
}

/// Unpack a tar stream into the directory `root` (normally an empty
/// private temp dir). Stops at the tar end-of-archive marker; the caller
/// drains any rest of the stream.
pub fn unpack<R: Read>(
    reader: R,
    root: BorrowedFd<'_>,
    opts: &UnpackOptions,
) -> Result<UnpackReport> {
    unpack_recorded(reader, root, opts, None)
}

/// `unpack`, telling `split` which bytes of the stream went into which
/// regular file (`reader` must be the `Tee` that feeds it, read by
/// nothing else).
pub fn unpack_recorded<R: Read>(
    reader: R,
    root: BorrowedFd<'_>,
    opts: &UnpackOptions,
    split: Option<&crate::tarsplit::Recorder>,
) -> Result<UnpackReport> {
    let mut archive = tar::Archive::new(reader);
    let mut u = Unpacker {
        root,
        opts,
        split,
        report: UnpackReport::default(),
        dirs: Vec::new(),
        cache: None,
    };
    let entries = archive.entries().map_err(tar_err)?;
    for entry in entries {
        let mut entry = entry.map_err(tar_err)?;
        u.entry(&mut entry)?;
        u.report.entries += 1;
    }
    u.finish_dirs()?;
    Ok(u.report)
}

fn tar_err(e: io::Error) -> Error {
    // Decompression limit errors travel inside io::Error; keep their type.
    if let Some(limit) = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<crate::layer::LimitExceeded>())
    {
        return Error::TooLarge {
            layer: limit.layer.clone(),
            reason: limit.reason.clone(),
        };
    }
    Error::invalid(
        "layer archive",
        format!("corrupt or truncated tar/compressed data: {e}"),
    )
}

fn mode_of(m: u32) -> Mode {
    Mode::from_raw_mode(m)
}

fn ts(secs: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn open_dir_at(dir: BorrowedFd<'_>, rel: &Path) -> rustix::io::Result<OwnedFd> {
    let p: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        dir,
        p,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        RESOLVE,
    )
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let rel = match sanitize_path(&raw) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()), // the root itself: nothing to create
            Err(why) => return Err(Error::unsafe_entry(shown, why)),
        };
        let header = entry.header();
        let kind = header.entry_type();
        let bad_header =
            |e: io::Error| Error::invalid("layer archive", format!("entry {shown:?}: {e}"));
        let mut mode = header.mode().map_err(bad_header)? & 0o7777;
        let uid = header.uid().map_err(bad_header)?;
        let gid = header.gid().map_err(bad_header)?;
        let mtime = i64::try_from(header.mtime().map_err(bad_header)?).unwrap_or(0);
        let name = rel
            .file_name()
            .map(OsStr::as_bytes)
            .unwrap_or_default()
            .to_vec();
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();

        if let Some(rest) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent, rest, &shown);
        }
        if mode & 0o6000 != 0 && !kind.is_dir() {
            self.report.stripped_setid.push(shown.clone());
            mode &= !0o6000;
        }
        let xattrs = self.xattrs(entry)?;
        let owner = (uid, gid);
        let name = OsStr::from_bytes(&name).to_os_string();

        if kind == tar::EntryType::GNUSparse {
            // The tar crate expands old-GNU sparse entries: the holes
            // become zeros on disk, which the user should know.
            self.report.sparse.push(shown.clone());
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let pfd = self.parent(&parent, &shown)?;
                let fd = create_excl(pfd.as_fd(), &name, &shown)?;
                let mut file = std::fs::File::from(fd);
                // Bytes of a file the owner cannot read (rootless, a 0000
                // file) or that the tar crate expands (sparse) stay raw.
                if let Some(rec) = self
                    .split
                    .filter(|_| kind != tar::EntryType::GNUSparse && mode & 0o400 != 0)
                {
                    rec.file(
                        entry.raw_file_position(),
                        entry.size(),
                        rel.as_os_str().as_bytes(),
                    );
                }
                io::copy(entry, &mut file).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof || e.get_ref().is_some() {
                        tar_err(e)
                    } else {
                        Error::Io {
                            context: format!("writing {shown}"),
                            source: e,
                        }
                    }
                })?;
                self.apply_fd(file.as_fd(), owner, mode, &xattrs, &shown)?;
                rustix::fs::futimens(&file, &ts(mtime))
                    .ctx(|| format!("setting times of {shown}"))?;
            }
            tar::EntryType::Directory => {
                let pfd = self.parent(&parent, &shown)?;
                match rustix::fs::mkdirat(&pfd, &name, mode_of(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        if !is_dir_at(pfd.as_fd(), &name) {
                            replace_existing(pfd.as_fd(), &name, &shown)?;
                            rustix::fs::mkdirat(&pfd, &name, mode_of(0o700))
                                .ctx(|| format!("creating directory {shown}"))?;
                        }
                    }
                    Err(e) => return Err(e).ctx(|| format!("creating directory {shown}")),
                }
                let dfd = open_dir_at(pfd.as_fd(), Path::new(&name))
                    .ctx(|| format!("opening directory {shown}"))?;
                self.apply_fd(dfd.as_fd(), owner, 0o700, &xattrs, &shown)?;
                self.dirs.push(DirMeta {
                    path: rel.clone(),
                    mode,
                    mtime,
                });
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::unsafe_entry(&shown, "symlink without a target"))?
                    .into_owned();
                if target.is_empty() || target.contains(&0) {
                    return Err(Error::unsafe_entry(
                        &shown,
                        "empty or invalid symlink target",
                    ));
                }
                if symlink_escapes(&rel, &target) {
                    return Err(Error::unsafe_entry(
                        &shown,
                        format!(
                            "symlink target {:?} points out of the image tree",
                            String::from_utf8_lossy(&target)
                        ),
                    ));
                }
                let pfd = self.parent(&parent, &shown)?;
                let target = OsStr::from_bytes(&target);
                match rustix::fs::symlinkat(target, &pfd, &name) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        replace_existing(pfd.as_fd(), &name, &shown)?;
                        rustix::fs::symlinkat(target, &pfd, &name)
                            .ctx(|| format!("creating symlink {shown}"))?;
                    }
                    Err(e) => return Err(e).ctx(|| format!("creating symlink {shown}")),
                }
                if self.opts.privileged {
                    rustix::fs::chownat(
                        &pfd,
                        &name,
                        Some(uid_of(uid)),
                        Some(gid_of(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .ctx(|| format!("changing owner of {shown}"))?;
                }
                let _ = rustix::fs::utimensat(&pfd, &name, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW);
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::unsafe_entry(&shown, "hardlink without a target"))?
                    .into_owned();
                let target_rel = match sanitize_path(&target) {
                    Ok(Some(p)) => p,
                    Ok(None) => return Err(Error::unsafe_entry(&shown, "hardlink to the root")),
                    Err(why) => {
                        return Err(Error::unsafe_entry(
                            &shown,
                            format!("hardlink target points out of the tree ({why})"),
                        ));
                    }
                };
                let tparent = target_rel.parent().unwrap_or(Path::new(""));
                let tname = target_rel.file_name().unwrap_or_default();
                let tfd = open_dir_at(self.root, tparent).map_err(|_| {
                    Error::unsafe_entry(&shown, "hardlink target is not inside this layer")
                })?;
                let pfd = self.parent(&parent, &shown)?;
                let link = || rustix::fs::linkat(&tfd, tname, &pfd, &name, AtFlags::empty());
                match link() {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        replace_existing(pfd.as_fd(), &name, &shown)?;
                        link().ctx(|| format!("creating hardlink {shown}"))?;
                    }
                    Err(Errno::NOENT) => {
                        return Err(Error::unsafe_entry(
                            &shown,
                            "hardlink target is not inside this layer",
                        ));
                    }
                    Err(Errno::PERM) => {
                        return Err(Error::unsafe_entry(&shown, "hardlink to a directory"));
                    }
                    Err(e) => return Err(e).ctx(|| format!("creating hardlink {shown}")),
                }
            }
            tar::EntryType::Fifo => {
                let pfd = self.parent(&parent, &shown)?;
                let mk =
                    || rustix::fs::mknodat(&pfd, &name, FileType::Fifo, mode_of(mode & 0o777), 0);
                match mk() {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        replace_existing(pfd.as_fd(), &name, &shown)?;
                        mk().ctx(|| format!("creating fifo {shown}"))?;
                    }
                    Err(e) => return Err(e).ctx(|| format!("creating fifo {shown}")),
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                // Device nodes never come from an image: /dev is built by
                // the sandbox. Leave them out and tell the user.
                self.report.dropped_devices.push(shown);
            }
            tar::EntryType::XGlobalHeader => {}
            other => {
                return Err(Error::unsafe_entry(
                    shown,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ));
            }
        }
        Ok(())
    }

    /// An OCI whiteout: `.wh..wh..opq` makes the parent opaque, `.wh.NAME`
    /// hides NAME from lower layers.
    fn whiteout(&mut self, parent: &Path, rest: &[u8], shown: &str) -> Result<()> {
        self.report.whiteouts += 1;
        let pfd = self.parent(parent, shown)?;
        if rest == &OPAQUE_MARKER.as_bytes()[WHITEOUT_PREFIX.len()..] {
            let mut names = vec!["user.overlay.opaque"];
            if self.opts.privileged {
                names.push("trusted.overlay.opaque");
            }
            for n in names {
                rustix::fs::fsetxattr(&pfd, n, b"y", XattrFlags::empty())
                    .ctx(|| format!("marking {} opaque", parent.display()))?;
            }
            return Ok(());
        }
        if rest.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(()); // other AUFS metadata (.wh..wh.plnk etc.): meaningless here
        }
        if rest.is_empty() || rest == b"." || rest == b".." {
            return Err(Error::unsafe_entry(shown, "malformed whiteout name"));
        }
        let target = OsStr::from_bytes(rest);
        if exists_at(pfd.as_fd(), target) {
            replace_existing(pfd.as_fd(), target, shown)?;
        }
        rustix::fs::mknodat(&pfd, target, FileType::CharacterDevice, Mode::empty(), 0)
            .ctx(|| format!("creating whiteout for {shown}"))
    }

    fn xattrs<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| Error::invalid("layer archive", format!("bad PAX header: {e}")))?
        else {
            return Ok(out);
        };
        for ext in exts {
            let ext =
                ext.map_err(|e| Error::invalid("layer archive", format!("bad PAX header: {e}")))?;
            let Ok(key) = ext.key() else { continue };
            // PAX sparse files (GNU.sparse.*) store a map and the data
            // without holes; read as plain entries they would unpack as
            // wrong bytes under a wrong name, so refuse them plainly.
            if key.starts_with("GNU.sparse.") {
                return Err(Error::Unsupported(format!(
                    "PAX sparse file entries ({key}) in a layer; write the layer without sparse files (GNU tar: without --sparse)"
                )));
            }
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if xattr_allowed(name, self.opts.privileged) {
                    out.push((name.to_owned(), ext.value_bytes().to_vec()));
                } else {
                    self.report.dropped_xattrs += 1;
                }
            }
        }
        Ok(out)
    }

    fn apply_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        (uid, gid): (u64, u64),
        mode: u32,
        xattrs: &[(String, Vec<u8>)],
        shown: &str,
    ) -> Result<()> {
        if self.opts.privileged {
            rustix::fs::fchown(fd, Some(uid_of(uid)), Some(gid_of(gid)))
                .ctx(|| format!("changing owner of {shown}"))?;
        } else if (uid, gid) != (0, 0) {
            let v = format!("{uid}:{gid}");
            let _ = rustix::fs::fsetxattr(fd, OWNER_XATTR, v.as_bytes(), XattrFlags::empty());
        }
        for (n, v) in xattrs {
            // A filesystem without user xattrs is not a reason to fail.
            match rustix::fs::fsetxattr(fd, n.as_str(), v, XattrFlags::empty()) {
                Ok(()) | Err(Errno::OPNOTSUPP) => {}
                Err(Errno::PERM | Errno::ACCESS) => self.report.dropped_xattrs += 1,
                Err(e) => return Err(e).ctx(|| format!("setting xattr {n} on {shown}")),
            }
        }
        rustix::fs::fchmod(fd, mode_of(mode)).ctx(|| format!("setting mode of {shown}"))
    }

    /// The directory that will hold an entry, created (0755) if missing.
    fn parent(&mut self, rel: &Path, shown: &str) -> Result<OwnedFd> {
        if let Some((p, fd)) = &self.cache
            && p == rel
        {
            return fd.try_clone().ctx(|| "duplicating a directory fd".into());
        }
        let fd = match open_dir_at(self.root, rel) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => self.create_parents(rel, shown)?,
            Err(e) => return Err(parent_error(self.root, rel, e, shown)),
        };
        self.cache = Some((
            rel.to_path_buf(),
            fd.try_clone().ctx(|| "duplicating fd".into())?,
        ));
        Ok(fd)
    }

    fn create_parents(&mut self, rel: &Path, shown: &str) -> Result<OwnedFd> {
        let mut cur = open_dir_at(self.root, Path::new("")).ctx(|| "opening layer root".into())?;
        for comp in rel.components() {
            let c = comp.as_os_str();
            match rustix::fs::mkdirat(&cur, c, mode_of(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).ctx(|| format!("creating parents of {shown}")),
            }
            cur = open_dir_at(cur.as_fd(), Path::new(c))
                .map_err(|e| parent_error(self.root, rel, e, shown))?;
        }
        Ok(cur)
    }

    fn finish_dirs(&mut self) -> Result<()> {
        self.cache = None;
        // Deepest first, so setting a parent's mtime comes last.
        for d in self.dirs.iter().rev() {
            let fd = open_dir_at(self.root, &d.path)
                .ctx(|| format!("opening directory {}", d.path.display()))?;
            rustix::fs::fchmod(&fd, mode_of(d.mode))
                .ctx(|| format!("setting mode of {}", d.path.display()))?;
            let _ = rustix::fs::futimens(&fd, &ts(d.mtime));
        }
        Ok(())
    }
}

fn parent_error(root: BorrowedFd<'_>, rel: &Path, e: Errno, shown: &str) -> Error {
    // O_NOFOLLOW|O_DIRECTORY on a symlink says ENOTDIR; name the real cause.
    let through_symlink = rel.ancestors().any(|a| {
        !a.as_os_str().is_empty()
            && rustix::fs::statat(root, a, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
    });
    let e = if through_symlink { Errno::LOOP } else { e };
    match e {
        Errno::LOOP | Errno::XDEV => Error::unsafe_entry(
            shown,
            "path goes through a symlink (a write through it could escape the layer)",
        ),
        Errno::NOTDIR => Error::unsafe_entry(shown, "a parent of this path is not a directory"),
        e => Error::Io {
            context: format!("opening the parent directory of {shown}"),
            source: e.into(),
        },
    }
}

fn uid_of(u: u64) -> Uid {
    Uid::from_raw(u32::try_from(u).unwrap_or(u32::MAX - 1))
}

fn gid_of(g: u64) -> Gid {
    Gid::from_raw(u32::try_from(g).unwrap_or(u32::MAX - 1))
}

fn exists_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

fn is_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// A later entry replaces an earlier non-directory one (tar semantics).
/// Replacing a directory with a non-directory is refused: real layers never
/// need it and it would orphan the directory's contents.
fn replace_existing(dir: BorrowedFd<'_>, name: &OsStr, shown: &str) -> Result<()> {
    if is_dir_at(dir, name) {
        return Err(Error::unsafe_entry(
            shown,
            "entry would replace a directory",
        ));
    }
    rustix::fs::unlinkat(dir, name, AtFlags::empty()).ctx(|| format!("replacing {shown}"))
}

fn create_excl(dir: BorrowedFd<'_>, name: &OsStr, shown: &str) -> Result<OwnedFd> {
    let open = || {
        rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode_of(0o600),
        )
    };
    match open() {
        Ok(fd) => Ok(fd),
        Err(Errno::EXIST) => {
            replace_existing(dir, name, shown)?;
            open().ctx(|| format!("creating {shown}"))
        }
        Err(e) => Err(e).ctx(|| format!("creating {shown}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize() {
        assert_eq!(
            sanitize_path(b"./a/b").ok().flatten(),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(
            sanitize_path(b"a//./b/").ok().flatten(),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(sanitize_path(b"./").ok(), Some(None));
        assert!(sanitize_path(b"/etc/passwd").is_err());
        assert!(sanitize_path(b"a/../../b").is_err());
        assert!(sanitize_path(b"..").is_err());
        assert!(sanitize_path(b"a\0b").is_err());
    }

    #[test]
    fn symlink_escape_is_lexical_from_the_link() {
        let l = Path::new("usr/lib/x");
        assert!(!symlink_escapes(l, b"/etc/passwd"));
        assert!(!symlink_escapes(l, b"../../bin/sh"));
        assert!(symlink_escapes(l, b"../../../etc"));
        assert!(!symlink_escapes(Path::new("lib"), b"usr/lib"));
        assert!(symlink_escapes(Path::new("a"), b"../x"));
        assert!(symlink_escapes(Path::new("a"), b"/../x"));
        assert!(!symlink_escapes(Path::new("a/b"), b"c/../../d"));
    }

    #[test]
    fn xattr_policy() {
        assert!(xattr_allowed("user.mime_type", false));
        assert!(!xattr_allowed("user.overlay.opaque", true));
        assert!(!xattr_allowed("trusted.overlay.redirect", true));
        assert!(!xattr_allowed("security.capability", true));
        assert!(!xattr_allowed("trusted.foo", false));
        assert!(xattr_allowed("trusted.foo", true));
    }
}
