//! Layer blobs written by berth itself: a tar stream, gzip-compressed,
//! hashed twice on the way to disk (diff-id of the tar, digest of the blob).
//! `dir_layer` makes a reproducible layer from a directory: sorted entries,
//! one mtime, root ownership, no xattrs, so rebuilding the same tree gives
//! the same digest.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::Digest;
use berth_image::digest::HashingWriter;
use berth_image::layer::{Even, gzip};
use flate2::write::GzEncoder;

use crate::error::{Error, IoContext, Result};

pub const MEDIA_TYPE_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A finished layer blob on disk.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

type Stack = HashingWriter<Even<GzEncoder<HashingWriter<BufWriter<File>>>>>;

/// Where a layer's tar stream goes: `write` it, then `finish`.
pub struct LayerWriter {
    path: PathBuf,
    inner: Stack,
}

impl LayerWriter {
    pub fn create(path: &Path) -> Result<LayerWriter> {
        let f = File::create(path).ctx(|| format!("creating {}", path.display()))?;
        let blob = HashingWriter::new(BufWriter::with_capacity(1 << 20, f));
        Ok(LayerWriter {
            path: path.to_owned(),
            inner: HashingWriter::new(gzip(blob)),
        })
    }

    pub fn finish(self) -> Result<LayerBlob> {
        let werr = |e: io::Error| Error::Io {
            context: format!("writing {}", self.path.display()),
            source: e,
        };
        let (even, diff_id, _) = self.inner.finish();
        let blob = even.finish().map_err(werr)?.finish().map_err(werr)?;
        let (buf, digest, size) = blob.finish();
        let f = buf.into_inner().map_err(|e| werr(e.into_error()))?;
        f.sync_all().map_err(werr)?;
        Ok(LayerBlob {
            path: self.path,
            digest,
            size,
            diff_id,
        })
    }
}

impl Write for LayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A header with the fields every berth-written entry normalizes.
pub(crate) fn header(kind: tar::EntryType, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// What `dir_layer` put in the layer.
#[derive(Debug, Default)]
pub struct DirLayerStats {
    pub files: u64,
    pub bytes: u64,
    /// Sockets, fifos and devices, which a layer never carries.
    pub skipped: Vec<String>,
}

/// Write `dir` into `w` as `prefix/...` (for example `app/bin/hello`).
/// Entries are sorted by name, owned by root, dated `mtime`, with the
/// permission bits kept (setuid/setgid dropped) and hard links preserved.
pub fn dir_layer(
    dir: &Path,
    prefix: &str,
    mtime: u64,
    w: &mut LayerWriter,
) -> Result<DirLayerStats> {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Err(Error::invalid("layer prefix", prefix.to_owned()));
    }
    tree_layer(dir, prefix, mtime, w)
}

/// Write `dir` into `w` as the root of the file system (`usr/bin/...`):
/// a layer of unpacked packages. Otherwise as [`dir_layer`].
pub fn root_layer(dir: &Path, mtime: u64, w: &mut LayerWriter) -> Result<DirLayerStats> {
    tree_layer(dir, "", mtime, w)
}

fn tree_layer(dir: &Path, prefix: &str, mtime: u64, w: &mut LayerWriter) -> Result<DirLayerStats> {
    if !prefix.is_empty()
        && prefix
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(Error::invalid("layer prefix", prefix.to_owned()));
    }
    let mut stats = DirLayerStats::default();
    let mut tar = tar::Builder::new(&mut *w);
    let werr = |e: io::Error| Error::Io {
        context: "writing the app layer".into(),
        source: e,
    };
    // The prefix's own directories, so the layer stands alone.
    let mut acc = String::new();
    for c in prefix.split('/').filter(|c| !c.is_empty()) {
        acc.push_str(c);
        acc.push('/');
        let mut h = header(tar::EntryType::Directory, 0o755, mtime);
        tar.append_data(&mut h, &acc, io::empty()).map_err(werr)?;
    }
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(
        dir,
        Path::new(prefix),
        mtime,
        &mut tar,
        &mut links,
        &mut stats,
    )?;
    tar.finish().map_err(werr)?;
    Ok(stats)
}

fn walk<W: Write>(
    dir: &Path,
    rel: &Path,
    mtime: u64,
    tar: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
    stats: &mut DirLayerStats,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .ctx(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .ctx(|| format!("reading {}", dir.display()))?;
    // Byte order, independent of locale and of the filesystem's order.
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let werr = |p: &Path| {
        let p = p.display().to_string();
        move |e: io::Error| Error::Io {
            context: format!("adding {p} to the layer"),
            source: e,
        }
    };
    for name in names {
        let host = dir.join(&name);
        let path = rel.join(&name);
        let md = fs::symlink_metadata(&host).ctx(|| format!("reading {}", host.display()))?;
        let mode = md.permissions().mode() & 0o1777;
        let ft = md.file_type();
        if ft.is_dir() {
            let mut h = header(tar::EntryType::Directory, mode, mtime);
            let mut p = path.clone().into_os_string();
            p.push("/");
            tar.append_data(&mut h, &p, io::empty())
                .map_err(werr(&path))?;
            walk(&host, &path, mtime, tar, links, stats)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).ctx(|| format!("reading {}", host.display()))?;
            let mut h = header(tar::EntryType::Symlink, 0o777, mtime);
            tar.append_link(&mut h, &path, &target)
                .map_err(werr(&path))?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    let mut h = header(tar::EntryType::Link, mode, mtime);
                    tar.append_link(&mut h, &path, first).map_err(werr(&path))?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), path.clone());
            }
            let f = File::open(&host).ctx(|| format!("opening {}", host.display()))?;
            let mut h = header(tar::EntryType::Regular, mode, mtime);
            h.set_size(md.len());
            // `take` guards against a file that grows while we read it.
            tar.append_data(&mut h, &path, io::Read::take(f, md.len()))
                .map_err(werr(&path))?;
            stats.files += 1;
            stats.bytes += md.len();
        } else {
            stats.skipped.push(path.display().to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_same_bytes_give_the_same_blob_however_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut blobs = Vec::new();
        for (n, step) in [(0, 1_000_000), (1, 4096), (2, 777), (3, 65_537)] {
            let mut w = LayerWriter::create(&dir.path().join(format!("{n}"))).unwrap();
            for c in data.chunks(step) {
                w.write_all(c).unwrap();
                w.flush().unwrap();
            }
            blobs.push(w.finish().unwrap().digest);
        }
        assert!(blobs.windows(2).all(|w| w[0] == w[1]), "{blobs:?}");
    }
    use super::*;

    fn build(dir: &Path, out: &Path) -> LayerBlob {
        let mut w = LayerWriter::create(out).unwrap();
        dir_layer(dir, "app", 1234, &mut w).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn same_tree_same_digest_whatever_the_times() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("bin/hello"), b"hi").unwrap();
        fs::write(src.join("README"), b"readme").unwrap();
        std::os::unix::fs::symlink("bin/hello", src.join("link")).unwrap();
        fs::hard_link(src.join("README"), src.join("README.hard")).unwrap();
        let a = build(&src, &t.path().join("a"));
        // Touch everything; the digest must not move.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        fs::write(src.join("bin/hello"), b"hi").unwrap();
        let b = build(&src, &t.path().join("b"));
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.diff_id, b.diff_id);
        // A content change does move it.
        fs::write(src.join("bin/hello"), b"ho").unwrap();
        let c = build(&src, &t.path().join("c"));
        assert_ne!(a.diff_id, c.diff_id);
    }

    #[test]
    fn entries_are_sorted_root_owned_and_dated() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(&src).unwrap();
        for n in ["b", "a", "C"] {
            fs::write(src.join(n), n).unwrap();
        }
        let blob = build(&src, &t.path().join("l"));
        let f = File::open(&blob.path).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut names = vec![];
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 0);
            assert_eq!(e.header().mtime().unwrap(), 1234);
            names.push(e.path().unwrap().display().to_string());
        }
        assert_eq!(names, ["app/", "app/C", "app/a", "app/b"]);
    }

    #[test]
    fn bad_prefix_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let mut w = LayerWriter::create(&t.path().join("x")).unwrap();
        assert!(dir_layer(t.path(), "../etc", 0, &mut w).is_err());
    }
}
