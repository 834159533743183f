//! A layer's tar stream without its files' bytes, what containers/storage
//! calls tar-split: header blocks, padding, PAX records and anything else
//! of the stream kept as they were, and each regular file's bytes named
//! by its path in the unpacked layer. With the tree it gives back the
//! exact tar, the diff-id, so the compressed blob need not be kept
//! (docs/on-disk-format.md, "Blobs re-created from the layer").
//!
//! Written here: tar-split is a Go library with no Rust counterpart, and
//! the record must follow berth's own unpacker (which file each byte range
//! went to). Whatever it cannot follow stays raw bytes in the record, and
//! a record is kept only once it rebuilt the layer's diff-id.
//!
//! Format (`layers/<diff-id hex>.tar-split`, zstd-compressed):
//! `berth-tar-split 1\n`, then segments: `R` u32le length, bytes (at most
//! 1 MiB); `F` u64le size, u16le length, a relative path (at most 4 KiB);
//! `E` and nothing after.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

const MAGIC: &[u8] = b"berth-tar-split 1\n";
const MAX_RAW: usize = 1 << 20;
const MAX_PATH: usize = 4096;
/// Raw bytes are written out once this many gathered.
const FLUSH_AT: usize = 64 << 10;

/// One piece of a recorded tar stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Segment {
    /// Bytes of the stream as they were.
    Raw(Vec<u8>),
    /// `size` bytes: the content of the regular file at `path`.
    File { path: Vec<u8>, size: u64 },
}

/// Reads segments from a decompressed record. Every length is bounded
/// before anything is allocated; a record that ends without `E` is an
/// error (a cut-off record must not rebuild a shorter tar).
pub struct Segments<R> {
    r: R,
    ended: bool,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::invalid("layer tar record", reason)
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            bad("it is cut off")
        } else {
            Error::Io {
                context: "reading a layer tar record".into(),
                source: e,
            }
        }
    })
}

impl<R: Read> Segments<R> {
    pub fn new(mut r: R) -> Result<Self> {
        let mut magic = [0u8; MAGIC.len()];
        read_exact(&mut r, &mut magic)?;
        if magic != MAGIC {
            return Err(bad("it does not start with berth's tar record header"));
        }
        Ok(Segments { r, ended: false })
    }

    /// The next segment, or None after `E` (checked to be the end).
    pub fn next_segment(&mut self) -> Result<Option<Segment>> {
        if self.ended {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        read_exact(&mut self.r, &mut tag)?;
        match tag[0] {
            b'R' => {
                let mut n = [0u8; 4];
                read_exact(&mut self.r, &mut n)?;
                let n = u32::from_le_bytes(n) as usize;
                if n == 0 || n > MAX_RAW {
                    return Err(bad(format!("a raw segment of {n} bytes")));
                }
                let mut b = vec![0u8; n];
                read_exact(&mut self.r, &mut b)?;
                Ok(Some(Segment::Raw(b)))
            }
            b'F' => {
                let mut size = [0u8; 8];
                read_exact(&mut self.r, &mut size)?;
                let mut n = [0u8; 2];
                read_exact(&mut self.r, &mut n)?;
                let n = usize::from(u16::from_le_bytes(n));
                if n == 0 || n > MAX_PATH {
                    return Err(bad(format!("a path of {n} bytes")));
                }
                let mut path = vec![0u8; n];
                read_exact(&mut self.r, &mut path)?;
                check_path(&path)?;
                Ok(Some(Segment::File {
                    path,
                    size: u64::from_le_bytes(size),
                }))
            }
            b'E' => {
                let mut more = [0u8; 1];
                match self.r.read(&mut more) {
                    Ok(0) => {
                        self.ended = true;
                        Ok(None)
                    }
                    Ok(_) => Err(bad("bytes after its end")),
                    Err(e) => Err(Error::Io {
                        context: "reading a layer tar record".into(),
                        source: e,
                    }),
                }
            }
            t => Err(bad(format!("unknown segment {t:#04x}"))),
        }
    }
}

/// A path the record may name: relative, no `..`, no NUL. (It is opened
/// beneath the layer anyway; this keeps odd records out early.)
fn check_path(p: &[u8]) -> Result<()> {
    if p.starts_with(b"/") || p.contains(&0) || p.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err(bad(format!(
            "a file path it may not name: {}",
            crate::content::escape(p)
        )));
    }
    Ok(())
}

/// Parse a whole decompressed record (the fuzz target's entry point).
pub fn parse(bytes: &[u8]) -> Result<Vec<Segment>> {
    let mut s = Segments::new(bytes)?;
    let mut out = Vec::new();
    while let Some(seg) = s.next_segment()? {
        out.push(seg);
    }
    Ok(out)
}

/// Records a tar stream as it is read (through `Tee`), while the unpacker
/// says which byte ranges went into which files (`file`). Failures do not
/// stop the unpack: the record is then just not kept.
pub struct Recorder {
    st: RefCell<State>,
}

struct State {
    path: PathBuf,
    out: Option<zstd::stream::write::Encoder<'static, BufWriter<File>>>,
    raw: Vec<u8>,
    pos: u64,
    skip_until: u64,
    failed: Option<String>,
    kept: bool,
}

impl Drop for State {
    fn drop(&mut self) {
        if !self.kept {
            self.out = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl State {
    fn fail(&mut self, why: String) {
        if self.failed.is_none() {
            self.failed = Some(why);
        }
        self.out = None;
        self.raw = Vec::new();
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(o) = self.out.as_mut()
            && let Err(e) = o.write_all(bytes)
        {
            self.fail(format!("writing it: {e}"));
        }
    }

    fn flush_raw(&mut self) {
        let raw = std::mem::take(&mut self.raw);
        for piece in raw.chunks(MAX_RAW) {
            let n = u32::try_from(piece.len()).unwrap_or(u32::MAX);
            self.put(b"R");
            self.put(&n.to_le_bytes());
            self.put(piece);
        }
        self.raw = raw;
        self.raw.clear();
    }
}

impl Recorder {
    /// A record written to `path` (a temp file; removed unless `finish`
    /// hands it over).
    pub fn create(path: PathBuf) -> Recorder {
        let mut st = State {
            path,
            out: None,
            raw: Vec::new(),
            pos: 0,
            skip_until: 0,
            failed: None,
            kept: false,
        };
        match File::create(&st.path).and_then(|f| {
            zstd::stream::write::Encoder::new(BufWriter::with_capacity(1 << 16, f), 3)
        }) {
            Ok(e) => {
                st.out = Some(e);
                st.put(MAGIC);
            }
            Err(e) => st.fail(format!("creating it: {e}")),
        }
        Recorder {
            st: RefCell::new(st),
        }
    }

    /// The `size` bytes at stream offset `pos` are the content of the
    /// regular file `path` (relative to the layer). Called before they
    /// are read.
    pub fn file(&self, pos: u64, size: u64, path: &[u8]) {
        let mut st = self.st.borrow_mut();
        if st.failed.is_some() || size == 0 || path.len() > MAX_PATH || check_path(path).is_err() {
            return; // its bytes stay raw
        }
        if st.pos != pos || st.pos < st.skip_until {
            let at = st.pos;
            st.fail(format!("file content at {pos}, but the stream is at {at}"));
            return;
        }
        st.flush_raw();
        st.put(b"F");
        st.put(&size.to_le_bytes());
        st.put(&u16::try_from(path.len()).unwrap_or(0).to_le_bytes());
        st.put(path);
        st.skip_until = pos.saturating_add(size);
    }

    fn take(&self, mut data: &[u8]) {
        let mut st = self.st.borrow_mut();
        if st.failed.is_some() {
            return;
        }
        while !data.is_empty() {
            if st.pos < st.skip_until {
                let k = usize::try_from(st.skip_until - st.pos)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                st.pos += k as u64;
                data = &data[k..];
                continue;
            }
            st.raw.extend_from_slice(data);
            st.pos += data.len() as u64;
            if st.raw.len() >= FLUSH_AT {
                st.flush_raw();
            }
            break;
        }
    }

    /// End the record: its path, or why there is none.
    pub fn finish(self) -> std::result::Result<PathBuf, String> {
        let mut st = self.st.into_inner();
        if st.failed.is_none() && st.pos < st.skip_until {
            st.fail("the stream ended inside a file".into());
        }
        st.flush_raw();
        st.put(b"E");
        let done = match (st.failed.take(), st.out.take()) {
            (None, Some(enc)) => enc
                .finish()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("writing it: {e}")),
            (Some(why), _) => Err(why),
            (None, None) => Err("it was not written".into()),
        };
        st.kept = done.is_ok();
        done.map(|()| st.path.clone())
    }
}

/// Passes a stream through, recording it.
pub struct Tee<'a, R> {
    pub inner: R,
    pub rec: Option<&'a Recorder>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(r) = self.rec {
            r.take(&buf[..n]);
        }
        Ok(n)
    }
}

type Decoder = zstd::stream::read::Decoder<'static, BufReader<BufReader<File>>>;

/// A layer's tar, rebuilt from its record and its unpacked tree.
pub struct Rebuilt {
    segs: Segments<Decoder>,
    root: OwnedFd,
    cur: Cur,
}

enum Cur {
    Empty,
    Raw(Vec<u8>, usize),
    File {
        f: io::Take<File>,
        left: u64,
        path: Vec<u8>,
    },
    Done,
}

impl Rebuilt {
    /// Rebuild from record `split` and the layer tree `root`.
    pub fn open(split: &Path, root: BorrowedFd<'_>) -> Result<Rebuilt> {
        let f = File::open(split).ctx(|| format!("opening {}", split.display()))?;
        let dec = zstd::stream::read::Decoder::new(BufReader::new(f))
            .ctx(|| format!("reading {}", split.display()))?;
        let root = root
            .try_clone_to_owned()
            .ctx(|| "duplicating the layer's directory".into())?;
        Ok(Rebuilt {
            segs: Segments::new(dec)?,
            root,
            cur: Cur::Empty,
        })
    }

    fn advance(&mut self) -> Result<()> {
        self.cur = match self.segs.next_segment()? {
            None => Cur::Done,
            Some(Segment::Raw(b)) => Cur::Raw(b, 0),
            Some(Segment::File { path, size }) => {
                let f = open_beneath(self.root.as_fd(), &path)?;
                let st = rustix::fs::fstat(&f)
                    .map_err(io::Error::from)
                    .ctx(|| format!("reading {}", crate::content::escape(&path)))?;
                let is_file = rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::RegularFile;
                if !is_file || u64::try_from(st.st_size).ok() != Some(size) {
                    return Err(bad(format!(
                        "file {} of the layer is not the {size} bytes it records",
                        crate::content::escape(&path)
                    )));
                }
                Cur::File {
                    f: File::from(f).take(size),
                    left: size,
                    path,
                }
            }
        };
        Ok(())
    }
}

fn open_beneath(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    rustix::fs::openat2(
        root,
        std::ffi::OsStr::from_bytes(path),
        // Non-blocking: a FIFO at the path (a hostile layer's) must give
        // an error below, not hang the import holding the store lock.
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
    .map_err(io::Error::from)
    .ctx(|| format!("opening {} of the layer", crate::content::escape(path)))
}

fn to_io(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Read for Rebuilt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.cur {
                Cur::Done => return Ok(0),
                Cur::Empty => self.advance().map_err(to_io)?,
                Cur::Raw(b, at) => {
                    if *at < b.len() {
                        let n = (b.len() - *at).min(buf.len());
                        buf[..n].copy_from_slice(&b[*at..*at + n]);
                        *at += n;
                        return Ok(n);
                    }
                    self.advance().map_err(to_io)?;
                }
                Cur::File { f, left, path } => {
                    if *left == 0 {
                        self.advance().map_err(to_io)?;
                        continue;
                    }
                    let n = f.read(buf)?;
                    if n == 0 {
                        return Err(to_io(bad(format!(
                            "file {} of the layer is shorter than recorded",
                            crate::content::escape(path)
                        ))));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

/// Does record `split` with tree `root` rebuild exactly `diff_id`?
pub fn rebuilds(split: &Path, root: BorrowedFd<'_>, diff_id: &Digest) -> Result<bool> {
    let mut r = Rebuilt::open(split, root)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 17];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Io {
                    context: "rebuilding the layer's tar".into(),
                    source: e,
                });
            }
        };
        h.update(&buf[..n]);
    }
    Ok(Digest::from_hash(h.finalize().as_slice()) == *diff_id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(seg: &[Segment]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        for s in seg {
            match s {
                Segment::Raw(b) => {
                    v.push(b'R');
                    v.extend((b.len() as u32).to_le_bytes());
                    v.extend(b);
                }
                Segment::File { path, size } => {
                    v.push(b'F');
                    v.extend(size.to_le_bytes());
                    v.extend((path.len() as u16).to_le_bytes());
                    v.extend(path);
                }
            }
        }
        v.push(b'E');
        v
    }

    #[test]
    fn parses_what_it_writes_and_refuses_the_rest() {
        let segs = vec![
            Segment::Raw(b"hdr".to_vec()),
            Segment::File {
                path: b"usr/bin/x".to_vec(),
                size: 7,
            },
        ];
        let bytes = record(&segs);
        assert_eq!(parse(&bytes).unwrap(), segs);
        // Cut off anywhere: refused, never a shorter stream.
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut more = bytes.clone();
        more.push(0);
        assert!(parse(&more).is_err());
        for p in [&b"/etc/x"[..], b"a/../../x", b"a\0b"] {
            let r = record(&[Segment::File {
                path: p.to_vec(),
                size: 1,
            }]);
            assert!(parse(&r).is_err(), "{p:?}");
        }
        let mut huge = MAGIC.to_vec();
        huge.push(b'R');
        huge.extend(u32::MAX.to_le_bytes());
        assert!(parse(&huge).is_err());
    }

    #[test]
    fn a_recorded_stream_rebuilds_from_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("d")).unwrap();
        std::fs::write(tree.join("d/f"), b"0123456789").unwrap();
        let stream: Vec<u8> = [&b"HEADER"[..], b"0123456789", b"PAD+TRAILER"].concat();
        let rec = Recorder::create(dir.path().join("rec"));
        {
            let mut t = Tee {
                inner: &stream[..],
                rec: Some(&rec),
            };
            let mut b = [0u8; 6];
            t.read_exact(&mut b).unwrap();
            rec.file(6, 10, b"d/f");
            io::copy(&mut t, &mut io::sink()).unwrap();
        }
        let path = rec.finish().unwrap();
        let root = rustix::fs::open(&tree, OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut out = Vec::new();
        Rebuilt::open(&path, root.as_fd())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, stream);
        assert!(rebuilds(&path, root.as_fd(), &Digest::of(&stream)).unwrap());
        // A changed file no longer rebuilds the stream.
        std::fs::write(tree.join("d/f"), b"0123456780").unwrap();
        assert!(!rebuilds(&path, root.as_fd(), &Digest::of(&stream)).unwrap());
        std::fs::write(tree.join("d/f"), b"short").unwrap();
        assert!(rebuilds(&path, root.as_fd(), &Digest::of(&stream)).is_err());
        // A symlink in its place is not followed.
        std::fs::remove_file(tree.join("d/f")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tree.join("d/f")).unwrap();
        assert!(rebuilds(&path, root.as_fd(), &Digest::of(&stream)).is_err());
        // A FIFO in its place is an error at once, not a wait for a writer.
        std::fs::remove_file(tree.join("d/f")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            tree.join("d/f"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(rebuilds(&path, root.as_fd(), &Digest::of(&stream)).is_err());
    }

    #[test]
    fn a_file_announced_late_spoils_only_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::create(dir.path().join("rec"));
        let stream = b"HEADER0123456789";
        {
            let mut t = Tee {
                inner: &stream[..],
                rec: Some(&rec),
            };
            let mut b = [0u8; 8];
            t.read_exact(&mut b).unwrap();
            rec.file(6, 10, b"f");
            io::copy(&mut t, &mut io::sink()).unwrap();
        }
        assert!(rec.finish().is_err());
        assert!(!dir.path().join("rec").exists());
    }
}
