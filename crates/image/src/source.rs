//! Where an import reads from: a tar archive (indexed once, then read by
//! byte range, so layers can be read in parallel) or a directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::unique_name;
use crate::layer::Compression;
use crate::unpack::sanitize_path;

/// Outer archives with more entries than this are refused.
const MAX_ARCHIVE_ENTRIES: usize = 1 << 20;

pub trait Source: Sync {
    fn exists(&self, path: &str) -> bool;
    /// A reader for a file and its size.
    fn open(&self, path: &str) -> Result<(Box<dyn Read + Send + '_>, u64)>;

    /// Read a small file whole, refusing anything over `limit` bytes.
    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let (r, size) = self.open(path)?;
        if size > limit {
            return Err(Error::invalid(
                path,
                format!("{size} bytes is over the {limit}-byte limit"),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        r.take(limit)
            .read_to_end(&mut buf)
            .ctx(|| format!("reading {path} from the archive"))?;
        Ok(buf)
    }
}

/// Open a file or directory as a source. Compressed archives (`.tar.gz`,
/// `.tar.zst`) are first decompressed into `tmp_dir`.
pub fn open_source(path: &Path, tmp_dir: &Path) -> Result<Box<dyn Source>> {
    let meta = std::fs::metadata(path).ctx(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        return Ok(Box::new(DirSource::open(path)?));
    }
    Ok(Box::new(TarSource::open(path, tmp_dir)?))
}

pub struct DirSource {
    root: OwnedFd,
}

impl DirSource {
    pub fn open(path: &Path) -> Result<DirSource> {
        let root = rustix::fs::open(path, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .ctx(|| format!("opening directory {}", path.display()))?;
        Ok(DirSource { root })
    }

    fn open_file(&self, path: &str) -> rustix::io::Result<OwnedFd> {
        // Symlinks inside the directory are fine; leaving it is not. A FIFO
        // must not block the open (it is then refused as not a file).
        rustix::fs::openat2(
            &self.root,
            path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
    }
}

impl Source for DirSource {
    fn exists(&self, path: &str) -> bool {
        self.open_file(path).is_ok()
    }

    fn open(&self, path: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let fd = self
            .open_file(path)
            .ctx(|| format!("opening {path} in the directory"))?;
        let f = File::from(fd);
        let m = f.metadata().ctx(|| format!("reading {path}"))?;
        if !m.is_file() {
            return Err(Error::invalid(path, "not a regular file"));
        }
        Ok((Box::new(BufReader::with_capacity(1 << 20, f)), m.len()))
    }
}

pub struct TarSource {
    file: File,
    entries: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
    _tmp: Option<TempFile>,
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl TarSource {
    pub fn open(path: &Path, tmp_dir: &Path) -> Result<TarSource> {
        let mut file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
        let mut head = [0u8; 4];
        let n = file
            .read_at(&mut head, 0)
            .ctx(|| format!("reading {}", path.display()))?;
        let mut tmp = None;
        let compression = Compression::detect(&head[..n]);
        if compression != Compression::None {
            let t = tmp_dir.join(unique_name("archive-"));
            let guard = TempFile(t.clone());
            let mut out = File::create(&t).ctx(|| format!("creating {}", t.display()))?;
            let mut dec = compression
                .reader(BufReader::new(file))
                .ctx(|| format!("decompressing {}", path.display()))?;
            io::copy(&mut dec, &mut out).map_err(|e| {
                Error::invalid(
                    path.display().to_string(),
                    format!("corrupt compressed archive: {e}"),
                )
            })?;
            file = File::open(&t).ctx(|| format!("opening {}", t.display()))?;
            tmp = Some(guard);
        }
        let (entries, links) = index_tar(&file).map_err(|e| {
            Error::invalid(
                path.display().to_string(),
                format!("not a readable tar archive: {e}"),
            )
        })?;
        Ok(TarSource {
            file,
            entries,
            links,
            _tmp: tmp,
        })
    }

    fn lookup(&self, path: &str) -> Option<(u64, u64)> {
        let mut p = norm(path)?;
        for _ in 0..8 {
            if let Some(e) = self.entries.get(&p) {
                return Some(*e);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }
}

type TarIndex = (HashMap<String, (u64, u64)>, HashMap<String, String>);

fn index_tar(file: &File) -> io::Result<TarIndex> {
    let mut entries = HashMap::new();
    let mut links = HashMap::new();
    let mut ar = tar::Archive::new(file);
    for (i, e) in ar.entries_with_seek()?.enumerate() {
        if i >= MAX_ARCHIVE_ENTRIES {
            return Err(io::Error::other("too many entries"));
        }
        let e = e?;
        let Some(name) = norm_bytes(&e.path_bytes()) else {
            continue;
        };
        match e.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                entries.insert(name, (e.raw_file_position(), e.size()));
            }
            tar::EntryType::Link => {
                if let Some(t) = e.link_name_bytes().and_then(|t| norm_bytes(&t)) {
                    links.insert(name, t);
                }
            }
            tar::EntryType::Symlink => {
                // docker save links duplicate layers: a/layer.tar -> ../b/layer.tar
                if let Some(t) = e.link_name_bytes() {
                    let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                    let joined = parent.join(Path::new(&*String::from_utf8_lossy(&t)));
                    if let Some(t) = lexical_norm(&joined) {
                        links.insert(name, t);
                    }
                }
            }
            _ => {}
        }
    }
    if entries.is_empty() {
        return Err(io::Error::other("no files in the archive"));
    }
    Ok((entries, links))
}

fn norm(p: &str) -> Option<String> {
    norm_bytes(p.as_bytes())
}

fn norm_bytes(p: &[u8]) -> Option<String> {
    sanitize_path(p)
        .ok()
        .flatten()
        .and_then(|p| p.to_str().map(str::to_owned))
}

/// Resolve `a/../b` lexically, refusing to climb above the root.
fn lexical_norm(p: &Path) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.to_str()?.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

impl Source for TarSource {
    fn exists(&self, path: &str) -> bool {
        self.lookup(path).is_some()
    }

    fn open(&self, path: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let (off, size) = self
            .lookup(path)
            .ok_or_else(|| Error::invalid("archive", format!("{path} is missing")))?;
        Ok((
            Box::new(RangeReader {
                file: &self.file,
                pos: off,
                end: off + size,
            }),
            size,
        ))
    }
}

/// Reads one byte range of a file with pread, so many can run at once.
struct RangeReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical() {
        assert_eq!(
            lexical_norm(Path::new("a/../b/layer.tar")).as_deref(),
            Some("b/layer.tar")
        );
        assert_eq!(lexical_norm(Path::new("../x")), None);
    }
}
