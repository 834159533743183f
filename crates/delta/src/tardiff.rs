//! The tar-diff format (containers/tar-diff, which oci-delta artifacts
//! carry): a new layer's uncompressed tar, rebuilt byte for byte from the
//! files of an image the receiver already has.
//!
//! A delta is an 8-byte header, `tardf1\n\0` or `tardf2\n\0`, then one
//! zstd stream of operations, each an opcode byte and an unsigned LEB128
//! varint `n`:
//!
//! - `DATA n`: the next `n` bytes of the stream go to the output;
//! - `OPEN n`: the next `n` bytes name a file of the old image, which
//!   becomes the current file, at offset 0;
//! - `COPY n`: `n` bytes of the current file, from its offset, go out;
//! - `ADD_DATA n`: `n` bytes of the stream, each added (mod 256) to the
//!   current file's next byte, go out;
//! - `SEEK n`: the current file's offset becomes `n`;
//! - `ZSTD_DICT n` (`tardf2` only): the next `n` bytes are one zstd frame
//!   compressed with the whole current file as its reference prefix
//!   (`zstd --patch-from`); what it decompresses to goes out.
//!
//! Written here because no Rust crate reads or writes the format. Every
//! length is bounded before anything is allocated, and the output is
//! capped: the caller checks the result against the layer's diff-id.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

use crate::error::{Error, Result};

pub const HEADER_V1: &[u8; 8] = b"tardf1\n\0";
pub const HEADER_V2: &[u8; 8] = b"tardf2\n\0";

const OP_DATA: u8 = 0;
const OP_OPEN: u8 = 1;
const OP_COPY: u8 = 2;
const OP_ADD_DATA: u8 = 3;
const OP_SEEK: u8 = 4;
const OP_ZSTD_DICT: u8 = 5;

/// The longest file name an `OPEN` may carry (the reference tar-patch's).
const MAX_NAME: u64 = 4096;
/// The largest old file a `ZSTD_DICT` may use as its reference, and the
/// window its frame may ask for: memory a hostile delta can make berth use.
const MAX_DICT: u64 = 1 << 28;
const MAX_WINDOW_LOG: u32 = 28;
/// The largest old file `generate` patches against; bigger ones go whole.
const GENERATE_DICT: u64 = 64 << 20;
/// Bytes of old files a delta may read beyond four times its output.
const WORK_SLACK: u64 = 256 << 20;
/// Below this a file goes literally: an `OPEN` and a frame cost more.
const SMALL: u64 = 64;

/// The files of the old image a delta is applied to (or made against).
pub trait Source {
    /// The regular file at `path` (relative, `/`-separated, as the tar
    /// names it) in the old image's merged tree; `None` when there is none.
    fn open(&mut self, path: &str) -> Result<Option<File>>;
}

/// Apply `delta` to `source`, writing the rebuilt tar to `out`; at most
/// `max_output` bytes are written. Returns the bytes written. Whether the
/// result is the layer it claims to be is for the caller to check.
pub fn apply(
    delta: impl Read,
    source: &mut dyn Source,
    out: &mut dyn Write,
    max_output: u64,
) -> Result<u64> {
    let mut delta = BufReader::new(delta);
    let mut header = [0u8; 8];
    delta
        .read_exact(&mut header)
        .map_err(|_| invalid("shorter than its header"))?;
    let v2 = match &header {
        h if h == HEADER_V2 => true,
        h if h == HEADER_V1 => false,
        _ => return Err(invalid("not a tar-diff (bad header)")),
    };
    let decoder = zstd::stream::read::Decoder::with_buffer(delta)
        .map_err(|e| Error::io("starting the delta's decompression", e))?;
    let mut ops = BufReader::new(decoder);
    let mut out = Capped {
        inner: out,
        left: max_output,
    };
    let mut current: Option<File> = None;
    // The whole current file, read once per OPEN for ZSTD_DICT.
    let mut dict: Option<Vec<u8>> = None;
    // Reading old files costs time the output does not show: a delta may
    // read at most a few times what it writes (every OPEN counts a page).
    let mut work: u64 = 0;
    loop {
        if work > WORK_SLACK.saturating_add((max_output - out.left).saturating_mul(4)) {
            return Err(invalid("reads far more of the old files than it writes"));
        }
        let op = match ops.fill_buf() {
            Ok([]) => break,
            Ok(b) => b[0],
            Err(e) => return Err(Error::io("reading the delta", e)),
        };
        ops.consume(1);
        let n = uvarint(&mut ops)?;
        match op {
            OP_DATA => copy_exact(&mut (&mut ops).take(n), &mut out, n, "data")?,
            OP_OPEN => {
                if n > MAX_NAME {
                    return Err(invalid(format!("names a file of {n} bytes")));
                }
                let mut name = vec![0u8; n as usize];
                ops.read_exact(&mut name)
                    .map_err(|_| invalid("ends inside a file name"))?;
                let name = String::from_utf8(name)
                    .map_err(|_| invalid("names a file that is not UTF-8"))?;
                work += 4096;
                dict = None;
                current = Some(source.open(&name)?.ok_or_else(|| {
                    invalid(format!(
                        "names {}, which the old image does not have",
                        berth_image::content::escape(name.as_bytes())
                    ))
                })?);
            }
            OP_COPY => {
                work = work.saturating_add(n);
                let f = open_file(&mut current)?;
                copy_exact(&mut Read::by_ref(f).take(n), &mut out, n, "old file")?;
            }
            OP_ADD_DATA => {
                work = work.saturating_add(n);
                let f = open_file(&mut current)?;
                let (mut left, mut a, mut b) = (n, vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
                while left > 0 {
                    let k = left.min(a.len() as u64) as usize;
                    ops.read_exact(&mut a[..k])
                        .map_err(|_| invalid("ends inside added data"))?;
                    f.read_exact(&mut b[..k])
                        .map_err(|_| invalid("adds to more of a file than there is"))?;
                    for (x, y) in a[..k].iter_mut().zip(&b[..k]) {
                        *x = x.wrapping_add(*y);
                    }
                    out.write_all(&a[..k])
                        .map_err(|e| Error::io("writing the rebuilt layer", e))?;
                    left -= k as u64;
                }
            }
            OP_SEEK => {
                open_file(&mut current)?
                    .seek(SeekFrom::Start(n))
                    .map_err(|e| Error::io("seeking in an old file", e))?;
            }
            OP_ZSTD_DICT if v2 => {
                if dict.is_none() {
                    let f = open_file(&mut current)?;
                    let size = f
                        .metadata()
                        .map_err(|e| Error::io("reading an old file", e))?
                        .len();
                    if size > MAX_DICT {
                        return Err(invalid(format!(
                            "patches against an old file of {size} bytes, more than berth allows"
                        )));
                    }
                    work = work.saturating_add(size);
                    let mut d = Vec::with_capacity(size as usize);
                    f.seek(SeekFrom::Start(0))
                        .and_then(|_| Read::by_ref(f).take(MAX_DICT).read_to_end(&mut d))
                        .map_err(|e| Error::io("reading an old file", e))?;
                    dict = Some(d);
                }
                let dict = dict.as_deref().unwrap_or_default();
                let mut frame = (&mut ops).take(n);
                {
                    let mut dec = zstd::stream::read::Decoder::with_ref_prefix(
                        BufReader::new(&mut frame),
                        dict,
                    )
                    .map_err(|e| Error::io("starting a patch", e))?
                    .single_frame();
                    dec.window_log_max(MAX_WINDOW_LOG)
                        .map_err(|e| Error::io("starting a patch", e))?;
                    io::copy(&mut dec, &mut out).map_err(|e| out.error(e, "a patch"))?;
                }
                io::copy(&mut frame, &mut io::sink())
                    .map_err(|e| Error::io("reading the delta", e))?;
                // As the reference tar-patch leaves it: at the file's end.
                open_file(&mut current)?
                    .seek(SeekFrom::End(0))
                    .map_err(|e| Error::io("seeking in an old file", e))?;
            }
            other => return Err(invalid(format!("has an unknown operation {other}"))),
        }
    }
    Ok(max_output - out.left)
}

fn open_file(current: &mut Option<File>) -> Result<&mut File> {
    current
        .as_mut()
        .ok_or_else(|| invalid("reads an old file before naming one"))
}

fn copy_exact(from: &mut dyn Read, out: &mut Capped<'_>, n: u64, what: &str) -> Result<()> {
    let copied = io::copy(from, out).map_err(|e| out.error(e, what))?;
    if copied != n {
        return Err(invalid(format!("asks for more {what} than there is")));
    }
    Ok(())
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("the delta {why}"))
}

fn uvarint(r: &mut impl Read) -> Result<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)
            .map_err(|_| invalid("ends inside an operation"))?;
        let bits = u64::from(b[0] & 0x7f);
        if i == 9 && bits > 1 {
            return Err(invalid("has a number too large"));
        }
        v |= bits << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(invalid("has a number too large"))
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A writer that refuses to write past its limit.
struct Capped<'a> {
    inner: &'a mut dyn Write,
    left: u64,
}

const TOO_LARGE: &str = "the rebuilt layer is larger than berth allows";

impl Capped<'_> {
    fn error(&self, e: io::Error, what: &str) -> Error {
        if e.to_string() == TOO_LARGE {
            invalid("rebuilds a layer larger than berth allows")
        } else if e.kind() == io::ErrorKind::Other || e.kind() == io::ErrorKind::InvalidData {
            invalid(format!("has a damaged {what}: {e}"))
        } else {
            Error::io("writing the rebuilt layer", e)
        }
    }
}

impl Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other(TOO_LARGE));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a generated delta is made of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Made {
    /// File bytes the receiver copies from its old files.
    pub copied: u64,
    /// File bytes rebuilt from a patch against the old file of that path.
    pub patched: u64,
    /// Bytes sent as they are (tar headers, new files), before compression.
    pub literal: u64,
}

/// Make a tar-diff (`tardf2`) that rebuilds the uncompressed tar `new`
/// from `source`: files the old image has at the same path are copied
/// when equal and patched (a zstd frame against the old file) when not;
/// the rest goes literally. `level` is the outer zstd level.
pub fn generate(
    new: &mut File,
    source: &mut dyn Source,
    out: &mut dyn Write,
    level: i32,
) -> Result<Made> {
    let regions = file_regions(new)?;
    out.write_all(HEADER_V2)
        .map_err(|e| Error::io("writing the delta", e))?;
    let mut z = zstd::stream::write::Encoder::new(out, level)
        .map_err(|e| Error::io("starting the delta's compression", e))?;
    let _ = z.long_distance_matching(true);
    let mut made = Made::default();
    new.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("reading the new layer", e))?;
    let mut pos = 0u64;
    let end = new
        .metadata()
        .map_err(|e| Error::io("reading the new layer", e))?
        .len();
    for r in regions {
        literal(new, &mut z, r.start - pos, &mut made)?;
        pos = r.start + r.size;
        let old = if r.size >= SMALL {
            source.open(&r.path)?
        } else {
            None
        };
        let Some(mut old) = old else {
            literal(new, &mut z, r.size, &mut made)?;
            continue;
        };
        if r.size > GENERATE_DICT {
            // Too large to patch against: copied when equal, else sent whole,
            // compared as a stream.
            let equal = same_stream(&mut old, new, r.size)?;
            new.seek(SeekFrom::Start(r.start))
                .map_err(|e| Error::io("reading the new layer", e))?;
            if equal {
                new.seek(SeekFrom::Start(pos))
                    .map_err(|e| Error::io("reading the new layer", e))?;
                let mut op = Vec::new();
                op_header(&mut op, OP_OPEN, r.path.len() as u64);
                op.extend_from_slice(r.path.as_bytes());
                op_header(&mut op, OP_COPY, r.size);
                z.write_all(&op)
                    .map_err(|e| Error::io("writing the delta", e))?;
                made.copied += r.size;
            } else {
                literal(new, &mut z, r.size, &mut made)?;
            }
            continue;
        }
        let mut data = Vec::new();
        Read::by_ref(new)
            .take(r.size)
            .read_to_end(&mut data)
            .map_err(|e| Error::io("reading the new layer", e))?;
        let old_size = old
            .metadata()
            .map_err(|e| Error::io("reading an old file", e))?
            .len();
        let mut op = Vec::new();
        if old_size == r.size && same_bytes(&mut old, &data)? {
            op_header(&mut op, OP_OPEN, r.path.len() as u64);
            op.extend_from_slice(r.path.as_bytes());
            op_header(&mut op, OP_COPY, r.size);
            made.copied += r.size;
        } else if old_size <= GENERATE_DICT {
            let mut dict = Vec::with_capacity(old_size as usize);
            old.seek(SeekFrom::Start(0))
                .and_then(|_| old.read_to_end(&mut dict))
                .map_err(|e| Error::io("reading an old file", e))?;
            let frame = patch(&dict, &data, level)?;
            if (frame.len() as u64) + r.path.len() as u64 + 16 < r.size {
                op_header(&mut op, OP_OPEN, r.path.len() as u64);
                op.extend_from_slice(r.path.as_bytes());
                op_header(&mut op, OP_ZSTD_DICT, frame.len() as u64);
                op.extend_from_slice(&frame);
                made.patched += r.size;
            }
        }
        if op.is_empty() {
            op_header(&mut op, OP_DATA, r.size);
            op.extend_from_slice(&data);
            made.literal += r.size;
        }
        z.write_all(&op)
            .map_err(|e| Error::io("writing the delta", e))?;
    }
    literal(new, &mut z, end.saturating_sub(pos), &mut made)?;
    z.finish()
        .map_err(|e| Error::io("finishing the delta", e))?;
    Ok(made)
}

fn op_header(out: &mut Vec<u8>, op: u8, n: u64) {
    out.push(op);
    put_uvarint(out, n);
}

fn literal(new: &mut File, z: &mut dyn Write, n: u64, made: &mut Made) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let mut h = Vec::new();
    op_header(&mut h, OP_DATA, n);
    z.write_all(&h)
        .map_err(|e| Error::io("writing the delta", e))?;
    let copied = io::copy(&mut Read::by_ref(new).take(n), z)
        .map_err(|e| Error::io("writing the delta", e))?;
    if copied != n {
        return Err(Error::Invalid("the new layer ended early".into()));
    }
    made.literal += n;
    Ok(())
}

/// Are the next `n` bytes of `new` the whole of `old`?
fn same_stream(old: &mut File, new: &mut File, n: u64) -> Result<bool> {
    let e = |e| Error::io("comparing files", e);
    if old.metadata().map_err(e)?.len() != n {
        return Ok(false);
    }
    old.seek(SeekFrom::Start(0)).map_err(e)?;
    let (mut a, mut b) = (vec![0u8; 256 << 10], vec![0u8; 256 << 10]);
    let mut left = n;
    while left > 0 {
        let k = left.min(a.len() as u64) as usize;
        old.read_exact(&mut a[..k]).map_err(e)?;
        new.read_exact(&mut b[..k]).map_err(e)?;
        if a[..k] != b[..k] {
            return Ok(false);
        }
        left -= k as u64;
    }
    Ok(true)
}

fn same_bytes(old: &mut File, data: &[u8]) -> Result<bool> {
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0;
    old.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("reading an old file", e))?;
    loop {
        let k = old
            .read(&mut buf)
            .map_err(|e| Error::io("reading an old file", e))?;
        if k == 0 {
            return Ok(at == data.len());
        }
        if at + k > data.len() || buf[..k] != data[at..at + k] {
            return Ok(false);
        }
        at += k;
    }
}

/// One zstd frame of `data` with `dict` as its reference prefix, and a
/// window that reaches back over all of it.
fn patch(dict: &[u8], data: &[u8], level: i32) -> Result<Vec<u8>> {
    let e = |e| Error::io("making a patch", e);
    let mut enc =
        zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), level, dict).map_err(e)?;
    let need = (dict.len() + data.len()).max(1 << 10) as u64;
    let log = (64 - need.leading_zeros()).clamp(10, MAX_WINDOW_LOG);
    enc.set_parameter(zstd::stream::raw::CParameter::WindowLog(log))
        .map_err(e)?;
    enc.set_pledged_src_size(Some(data.len() as u64))
        .map_err(e)?;
    enc.write_all(data).map_err(e)?;
    enc.finish().map_err(e)
}

struct Region {
    start: u64,
    size: u64,
    path: String,
}

/// Where each regular file's data lies in the tar, and its path.
fn file_regions(new: &mut File) -> Result<Vec<Region>> {
    new.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("reading the new layer", e))?;
    let mut ar = tar::Archive::new(&*new);
    let mut out = Vec::new();
    let entries = ar
        .entries_with_seek()
        .map_err(|e| Error::io("reading the new layer", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading the new layer", e))?;
        let t = entry.header().entry_type();
        if !(t.is_file() || t == tar::EntryType::Continuous) || entry.size() == 0 {
            continue;
        }
        let Ok(path) = std::str::from_utf8(&entry.path_bytes()).map(str::to_owned) else {
            continue;
        };
        out.push(Region {
            start: entry.raw_file_position(),
            size: entry.size(),
            path,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    struct Dir(PathBuf, HashMap<String, usize>);
    impl Source for Dir {
        fn open(&mut self, path: &str) -> Result<Option<File>> {
            *self.1.entry(path.to_owned()).or_default() += 1;
            Ok(File::open(self.0.join(path)).ok())
        }
    }

    fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, d) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, &d[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_generated_delta_rebuilds_the_layer_and_is_small() {
        let dir = tempfile::tempdir().unwrap();
        let same = noise(200_000, 1);
        let old_lib = noise(300_000, 2);
        let mut new_lib = old_lib.clone();
        new_lib[1000..1010].copy_from_slice(b"0123456789");
        new_lib.extend_from_slice(b"a few bytes more");
        std::fs::create_dir_all(dir.path().join("old/usr/lib")).unwrap();
        std::fs::write(dir.path().join("old/usr/lib/same.so"), &same).unwrap();
        std::fs::write(dir.path().join("old/usr/lib/lib.so"), &old_lib).unwrap();
        let new = tar_of(&[
            ("usr/lib/same.so", same.clone()),
            ("usr/lib/lib.so", new_lib),
            ("usr/share/new", noise(5000, 3)),
            ("usr/share/tiny", b"hi".to_vec()),
        ]);
        let new_path = dir.path().join("new.tar");
        std::fs::write(&new_path, &new).unwrap();
        let mut src = Dir(dir.path().join("old"), HashMap::new());
        let mut delta = Vec::new();
        let made = generate(&mut File::open(&new_path).unwrap(), &mut src, &mut delta, 3).unwrap();
        assert_eq!(made.copied, 200_000);
        assert_eq!(made.patched, 300_016);
        assert!(delta.len() < 9000, "delta of {} bytes", delta.len());
        let mut out = Vec::new();
        let n = apply(&delta[..], &mut src, &mut out, 1 << 30).unwrap();
        assert_eq!(n as usize, new.len());
        assert!(out == new, "rebuilt tar differs");
        // The cap holds.
        let e = apply(&delta[..], &mut src, &mut Vec::new(), 1000).unwrap_err();
        assert!(e.to_string().contains("larger than berth allows"), "{e}");
    }

    fn stream(ops: &[(u8, u64, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (op, n, data) in ops {
            op_header(&mut body, *op, *n);
            body.extend_from_slice(data);
        }
        let mut out = HEADER_V1.to_vec();
        out.extend(zstd::encode_all(&body[..], 3).unwrap());
        out
    }

    #[test]
    fn every_operation_of_the_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"abcdefgh").unwrap();
        let mut src = Dir(dir.path().to_owned(), HashMap::new());
        let d = stream(&[
            (OP_DATA, 3, b"xyz"),
            (OP_OPEN, 1, b"f"),
            (OP_SEEK, 2, b""),
            (OP_COPY, 2, b""),
            (OP_ADD_DATA, 2, &[1, 1]),
        ]);
        let mut out = Vec::new();
        apply(&d[..], &mut src, &mut out, 100).unwrap();
        assert_eq!(out, b"xyzcdfg");
    }

    #[test]
    fn hostile_deltas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"tardf9\n\0".to_vec(), "bad header"),
            (b"tar".to_vec(), "shorter than its header"),
            (stream(&[(OP_COPY, 1, b"")]), "before naming one"),
            (stream(&[(OP_OPEN, 1, b"g")]), "does not have"),
            (stream(&[(OP_OPEN, 5000, b"")]), "file of 5000 bytes"),
            (
                stream(&[(OP_OPEN, 1, b"f"), (OP_COPY, 10, b"")]),
                "more old file",
            ),
            (stream(&[(OP_DATA, 10, b"abc")]), "more data"),
            (stream(&[(9, 0, b"")]), "unknown operation"),
            // ZSTD_DICT is tardf2 only.
            (
                stream(&[(OP_OPEN, 1, b"f"), (OP_ZSTD_DICT, 0, b"")]),
                "unknown operation",
            ),
            (
                stream(&[
                    (OP_OPEN, 1, b"f"),
                    (OP_ADD_DATA, 5, b"\x01\x01\x01\x01\x01"),
                ]),
                "more of a file",
            ),
        ];
        for (d, want) in cases {
            let mut src = Dir(dir.path().to_owned(), HashMap::new());
            let e = apply(&d[..], &mut src, &mut Vec::new(), 100).unwrap_err();
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
        }
        // Work the output does not show is bounded: opening old files
        // over and over, writing nothing.
        let mut ops = Vec::new();
        for _ in 0..70_000 {
            ops.push((OP_OPEN, 1, &b"f"[..]));
        }
        let d = stream(&ops);
        let mut src = Dir(dir.path().to_owned(), HashMap::new());
        let e = apply(&d[..], &mut src, &mut Vec::new(), 100).unwrap_err();
        assert!(e.to_string().contains("far more"), "{e}");
        let mut huge = vec![OP_DATA];
        huge.extend([0xff; 10]);
        let mut d = HEADER_V1.to_vec();
        d.extend(zstd::encode_all(&huge[..], 3).unwrap());
        let mut src = Dir(dir.path().to_owned(), HashMap::new());
        let e = apply(&d[..], &mut src, &mut Vec::new(), 100).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }
}
