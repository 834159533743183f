//! Ingesting one layer in a single pass over its bytes.
//!
//! ```text
//! source ─► sha256 + size ─► blob temp file          (this thread)
//!             └─ chunks ─► decompress ─► limits ─► sha256 (diff-id) ─► unpack   (worker)
//! ```
//! Nothing becomes visible until both digests match: the blob and the
//! unpacked tree are renamed into place only then.

use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, HashingReader, verify};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{remove_tree, unique_name};
use crate::progress::Progress;
use crate::store::Store;
use crate::unpack::{UnpackOptions, UnpackReport, unpack_recorded};

const CHUNK: usize = 256 << 10;

/// Decompression-bomb limits, per layer. See docs/on-disk-format.md.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest uncompressed layer accepted.
    pub max_layer_bytes: u64,
    /// Largest expansion ratio accepted once a layer is past `ratio_floor`.
    pub max_ratio: u64,
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_layer_bytes: 32 << 30,
            max_ratio: 100,
            ratio_floor: 256 << 20,
        }
    }
}

impl Limits {
    /// Defaults, overridden by `BERTH_MAX_LAYER_SIZE` (bytes, with an
    /// optional K/M/G suffix) and `BERTH_MAX_LAYER_RATIO`.
    pub fn from_env() -> Result<Limits> {
        let mut l = Limits::default();
        if let Ok(v) = std::env::var("BERTH_MAX_LAYER_SIZE") {
            l.max_layer_bytes = parse_size(&v)?;
        }
        if let Ok(v) = std::env::var("BERTH_MAX_LAYER_RATIO") {
            l.max_ratio = v.trim().parse().map_err(|_| {
                Error::invalid("BERTH_MAX_LAYER_RATIO", format!("{v:?} is not a number"))
            })?;
        }
        Ok(l)
    }
}

/// Parse `123`, `10K`, `64M`, `2G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| Error::invalid("size", format!("{s:?} (use e.g. 512M or 2G)")))
}

/// Carried inside an `io::Error` out of the decompressor.
#[derive(Debug)]
pub struct LimitExceeded {
    pub layer: String,
    pub reason: String,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "layer {} {}", self.layer, self.reason)
    }
}

impl std::error::Error for LimitExceeded {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// What a layer media type (`...tar+gzip`, `...tar.gzip`, `...tar`)
    /// says about its bytes.
    pub fn declared_by(media_type: &str) -> Compression {
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Compression::None => "an uncompressed tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// A decompressing reader over `r`.
    pub fn reader<'a, R: BufRead + Send + 'a>(self, r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        })
    }
}

/// Feeds the compressor in pieces of one size whatever the writes were:
/// the deflate output of zlib-rs depends on how its input arrives, and
/// the same tar must give the same blob (the chunks of a runtime are cut
/// from trees whose other content shifts the writes; a blob re-created
/// from its layer must match the one berth wrote). A flush does nothing,
/// for the same reason.
pub struct Even<W: io::Write> {
    inner: W,
    buf: Vec<u8>,
}

const EVEN: usize = 64 << 10;

impl<W: io::Write> Even<W> {
    pub fn new(inner: W) -> Self {
        Even {
            inner,
            buf: Vec::with_capacity(EVEN),
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&self.buf)?;
        Ok(self.inner)
    }
}

impl<W: io::Write> io::Write for Even<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let k = (EVEN - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..k]);
            data = &data[k..];
            if self.buf.len() == EVEN {
                self.inner.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// berth's gzip for layers it writes: level 6, a fixed header (mtime 0,
/// no name) and even pieces, so one tar always gives one blob.
pub fn gzip<W: io::Write>(w: W) -> Even<flate2::write::GzEncoder<W>> {
    Even::new(flate2::write::GzEncoder::new(
        w,
        flate2::Compression::new(6),
    ))
}

/// berth's zstd for layers it writes: level 3, one thread.
pub fn zstd<W: io::Write>(w: W) -> io::Result<Even<zstd::stream::write::Encoder<'static, W>>> {
    Ok(Even::new(zstd::stream::write::Encoder::new(w, 3)?))
}

/// What to do with one layer.
pub struct LayerJob {
    /// Short name for messages.
    pub name: String,
    /// Compressed digest and size, when the source promises them.
    pub expected: Option<(Digest, u64)>,
    /// The uncompressed digest the image config promises.
    pub diff_id: Digest,
    /// The compression the media type declares; bytes that say otherwise
    /// are refused (a registry or `push` would mislabel them again).
    pub declared: Option<Compression>,
    pub write_blob: bool,
    pub unpack: bool,
}

pub struct LayerDone {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
    pub unpacked_size: u64,
    pub report: UnpackReport,
}

struct DecodeOut {
    diff_id: Digest,
    size: u64,
    compression: Compression,
    report: UnpackReport,
    /// The stream's tar record, unchecked.
    split: Option<PathBuf>,
}

/// Stream a layer from `src` into the store (see the module docs).
pub fn ingest(
    store: &Store,
    src: &mut dyn Read,
    job: &LayerJob,
    opts: &UnpackOptions,
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<LayerDone> {
    let mut blob = job.write_blob.then(|| store.blob_writer()).transpose()?;
    let tmp_dir = job
        .unpack
        .then(|| store.tmp_dir().join(unique_name("layer-")));
    if let Some(t) = &tmp_dir {
        fs::create_dir(t).ctx(|| format!("creating {}", t.display()))?;
    }
    let guard = TmpDirGuard(tmp_dir.clone());
    let root_fd = tmp_dir
        .as_ref()
        .map(|t| {
            rustix::fs::open(
                t,
                rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ctx(|| format!("opening {}", t.display()))
        })
        .transpose()?;

    // The tar record that lets the blob go (crate::tarsplit).
    let split = tmp_dir
        .as_ref()
        .map(|_| store.tmp_dir().join(unique_name("split-")));
    let (tx, rx) = sync_channel::<Vec<u8>>(8);
    let consumed = Arc::new(AtomicU64::new(0));
    let decoder_done = Arc::new(AtomicBool::new(false));
    let mut hasher = Sha256::new();
    let mut size = 0u64;

    let (read_result, decoded) = std::thread::scope(|s| {
        let consumed2 = consumed.clone();
        let done2 = decoder_done.clone();
        let unpack_to = root_fd.as_ref().map(|f| f.as_fd()).zip(split.clone());
        let worker =
            s.spawn(move || decode_side(rx, consumed2, &done2, unpack_to, opts, limits, job));
        let mut sending = true;
        let read_result: Result<()> = (|| loop {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(src, &mut buf).ctx(|| format!("reading layer {}", job.name))?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            hasher.update(&buf);
            size += n as u64;
            if let Some(b) = blob.as_mut() {
                io::Write::write_all(b, &buf)
                    .ctx(|| format!("writing blob for layer {}", job.name))?;
            }
            progress.advance(n as u64);
            if sending && tx.send(buf).is_err() {
                // The worker stopped: it finished (trailing bytes after the
                // compressed stream) or failed. Either way keep hashing when
                // a digest was promised, so a tampered blob is reported as
                // such rather than as whatever broke while decoding it.
                if !decoder_done.load(Ordering::SeqCst) && job.expected.is_none() {
                    return Ok(());
                }
                sending = false;
            }
        })();
        drop(tx);
        let decoded = worker
            .join()
            .unwrap_or_else(|_| Err(Error::Conflict("layer worker thread panicked".into())));
        (read_result, decoded)
    });
    // Removed on every way out unless installed with the layer.
    let split = SplitFile(decoded.as_ref().ok().and_then(|d| d.split.clone()));
    let digest = Digest::from_hash(hasher.finalize().as_slice());
    let what = format!("layer {}", job.name);
    // Order of blame: unreadable source, then a digest the blob does not
    // match, then whatever the decoder found.
    read_result?;
    if let Some((d, s)) = &job.expected {
        verify(&what, d, *s, &digest, size)?;
    }
    let decoded = decoded?;
    if decoded.diff_id != job.diff_id {
        return Err(Error::DigestMismatch {
            what: format!("uncompressed {what} (diff_id)"),
            expected: job.diff_id.to_string(),
            actual: decoded.diff_id.to_string(),
        });
    }
    if let (Some(t), Some(fd)) = (&tmp_dir, &root_fd) {
        rustix::fs::syncfs(fd).ctx(|| "syncing the unpacked layer".into())?;
        // The record describes the tree as it is on disk, after unpacking.
        let record = crate::content::record(fd.as_fd())?;
        // One copy of each file across layers (docs/on-disk-format.md).
        crate::objects::share(store, fd.as_fd(), &record)?;
        // The tar record is kept only once it gave back this very layer.
        let split = match &split.0 {
            // (A file not as recorded is an error there, here a "no".)
            Some(p) if crate::tarsplit::rebuilds(p, fd.as_fd(), &job.diff_id).unwrap_or(false) => {
                Some(p.as_path())
            }
            _ => None,
        };
        // Another process may have unpacked the same layer first: then
        // theirs is kept and ours discarded.
        store.install_layer(&job.diff_id, t, &record, split)?;
    }
    if let Some(b) = blob.take() {
        // A layer its record and tree re-create needs no blob.
        if crate::store::keep_blobs() || !store.has_split(&job.diff_id) {
            b.commit(&what, Some((&digest, size)))?;
        }
    }
    guard.disarm();
    Ok(LayerDone {
        digest,
        size,
        compression: decoded.compression,
        unpacked_size: decoded.size,
        report: decoded.report,
    })
}

fn decode_side(
    rx: Receiver<Vec<u8>>,
    consumed: Arc<AtomicU64>,
    done: &AtomicBool,
    // The tree to unpack into, and where its tar record goes.
    unpack_to: Option<(BorrowedFd<'_>, PathBuf)>,
    opts: &UnpackOptions,
    limits: &Limits,
    job: &LayerJob,
) -> Result<DecodeOut> {
    let (name, declared) = (job.name.as_str(), job.declared);
    let chan = ChannelReader {
        rx,
        cur: Vec::new(),
        pos: 0,
        consumed: consumed.clone(),
    };
    let mut br = BufReader::with_capacity(CHUNK, chan);
    let head = br.fill_buf().ctx(|| format!("reading layer {name}"))?;
    let compression = Compression::detect(head);
    if let Some(d) = declared.filter(|d| *d != compression) {
        return Err(Error::invalid(
            format!("layer {name}"),
            format!(
                "its media type says {} but its bytes are {}",
                d.describe(),
                compression.describe()
            ),
        ));
    }
    let dec = compression
        .reader(br)
        .ctx(|| format!("starting to decompress layer {name}"))?;
    let limited = LimitReader {
        inner: dec,
        count: 0,
        consumed,
        limits: limits.clone(),
        name: name.to_owned(),
    };
    let mut hr = HashingReader::new(limited);
    let (root, rec) = match unpack_to {
        Some((root, split)) => (Some(root), Some(crate::tarsplit::Recorder::create(split))),
        None => (None, None),
    };
    let mut tee = crate::tarsplit::Tee {
        inner: &mut hr,
        rec: rec.as_ref(),
    };
    let report = match root {
        Some(root) => unpack_recorded(&mut tee, root, opts, rec.as_ref())?,
        None => UnpackReport::default(),
    };
    // The diff-id covers the whole uncompressed stream, padding included.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| {
        Error::invalid(
            format!("layer {name}"),
            format!("corrupt or truncated data: {e}"),
        )
    })?;
    // Say "done" while the channel is still open, so the reader never
    // mistakes our hang-up for a failure.
    done.store(true, Ordering::SeqCst);
    let (diff_id, size) = hr.finish();
    Ok(DecodeOut {
        diff_id,
        size,
        compression,
        report,
        split: rec.and_then(|r| r.finish().ok()),
    })
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    consumed: Arc<AtomicU64>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(v) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct LimitReader<R> {
    inner: R,
    count: u64,
    consumed: Arc<AtomicU64>,
    limits: Limits,
    name: String,
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        let l = &self.limits;
        let fail = |reason: String| {
            Err(io::Error::other(LimitExceeded {
                layer: self.name.clone(),
                reason,
            }))
        };
        if self.count > l.max_layer_bytes {
            return fail(format!("expands to more than {} bytes", l.max_layer_bytes));
        }
        let compressed = self.consumed.load(Ordering::Relaxed).max(1);
        if self.count > l.ratio_floor && self.count / compressed > l.max_ratio {
            return fail(format!(
                "expands more than {}:1 ({} bytes from {compressed}); refusing a likely decompression bomb",
                l.max_ratio, self.count
            ));
        }
        Ok(n)
    }
}

/// A finished tar record in `tmp/`: removed unless installed with its
/// layer (the rename leaves nothing here to remove).
struct SplitFile(Option<PathBuf>);

impl Drop for SplitFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// Removes a temp dir unless disarmed (error paths, panics, early returns).
struct TmpDirGuard(Option<PathBuf>);

impl TmpDirGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TmpDirGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = remove_tree(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10").ok(), Some(10));
        assert_eq!(parse_size("10K").ok(), Some(10 << 10));
        assert_eq!(parse_size(" 2g ").ok(), Some(2 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"usr/"), Compression::None);
    }
}
