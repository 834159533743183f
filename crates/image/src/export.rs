//! `berth export`: write one image as an OCI archive (the tar of an OCI
//! layout) that skopeo, podman and umoci read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, MediaType};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, unique_name};
use crate::progress::Progress;
use crate::store::{ImageEntry, REF_NAME, Store, new_index};

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    /// The archive's size.
    pub bytes: u64,
    /// The manifest in the archive: the store's, or one that names stored
    /// blobs in place of elided ones.
    pub digest: Digest,
    /// Layer blobs the store holds only as content (another compression
    /// of a stored layer): written as the stored blob of that layer.
    pub replaced: usize,
}

/// Write `entry` to `out` atomically. `name` becomes the archive's
/// `org.opencontainers.image.ref.name`. Layer blobs in `omit` are left out
/// (a thin bundle without its runtime), and so the manifest is the store's
/// byte for byte. A layer blob the store elided (it holds that layer's
/// content from another blob) is written as that other blob, in a manifest
/// rewritten to name it: a new image digest, said in `Exported`.
pub fn export(
    store: &Store,
    entry: &ImageEntry,
    name: Option<&str>,
    out: &Path,
    omit: &[Digest],
    progress: &dyn Progress,
) -> Result<Exported> {
    let image = store.load_image(entry)?;
    let Portable {
        manifest: manifest_bytes,
        digest: manifest_digest,
        mut blobs,
        replaced,
        made,
    } = portable(store, &image, omit)?;
    let path_of = |d: &Digest| {
        made.iter()
            .find(|t| t.digest == *d)
            .map_or_else(|| store.blob_path(d), |t| t.path.clone())
    };
    let manifest_bytes = (replaced > 0).then_some(manifest_bytes);
    // Two layers may share a stand-in: each blob once.
    let mut once = std::collections::HashSet::new();
    blobs.retain(|(d, _)| once.insert(d.clone()));
    let manifest_size = manifest_bytes
        .as_ref()
        .map_or(entry.size, |b| b.len() as u64);
    if manifest_bytes.is_none() {
        blobs.push((entry.digest.clone(), entry.size));
    }
    for (d, _) in &blobs {
        if !path_of(d).is_file() {
            return Err(Error::Conflict(format!(
                "blob {d} is missing from the store; run `berth fsck`"
            )));
        }
    }
    progress.add_total(blobs.iter().map(|(_, s)| s).sum());

    let mut desc = Descriptor::new(
        MediaType::ImageManifest,
        manifest_size,
        manifest_digest.to_oci(),
    );
    if let Some(n) = name {
        desc.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), n.to_owned())])));
    }
    let index = serde_json::to_vec(&new_index(vec![desc])).map_err(|source| Error::BadJson {
        what: "index.json".into(),
        source,
    })?;

    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fname = out
        .file_name()
        .ok_or_else(|| Error::invalid("output path", out.display().to_string()))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.{}",
        fname.to_string_lossy(),
        unique_name("tmp-")
    ));
    let res = (|| {
        let file = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
        let werr = |e: io::Error| Error::Io {
            context: format!("writing {}", tmp.display()),
            source: e,
        };
        for d in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0, 0o755);
            tar.append_data(&mut h, d, io::empty()).map_err(werr)?;
        }
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let mut h = header(tar::EntryType::Regular, layout.len() as u64, 0o644);
        tar.append_data(&mut h, "oci-layout", &layout[..])
            .map_err(werr)?;
        let mut h = header(tar::EntryType::Regular, index.len() as u64, 0o644);
        tar.append_data(&mut h, "index.json", &index[..])
            .map_err(werr)?;
        for (d, size) in &blobs {
            let f = File::open(path_of(d)).ctx(|| format!("opening blob {d}"))?;
            let mut h = header(tar::EntryType::Regular, *size, 0o644);
            // Verified as it streams: damage in the store must not leave
            // as an archive that fails to import elsewhere.
            let mut r = HashingReader::new(ProgressReader {
                inner: io::Read::take(f, *size + 1),
                progress,
            });
            tar.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut r)
                .map_err(werr)?;
            let (got, len) = r.finish();
            if len != *size || &got != d {
                return Err(Error::Conflict(format!(
                    "blob {d} in the store is damaged ({len} bytes hashing to {got}, expected {size} bytes); nothing was written. `berth fsck --repair` may fix it"
                )));
            }
        }
        if let Some(bytes) = &manifest_bytes {
            let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
            tar.append_data(
                &mut h,
                format!("blobs/sha256/{}", manifest_digest.hex()),
                &bytes[..],
            )
            .map_err(werr)?;
        }
        let mut w = tar.into_inner().map_err(werr)?;
        w.flush().map_err(werr)?;
        let file = w.into_inner().map_err(|e| werr(e.into_error()))?;
        file.sync_all().map_err(werr)?;
        let len = file.metadata().map_err(werr)?.len();
        fs::rename(&tmp, out).ctx(|| format!("moving the archive to {}", out.display()))?;
        fsync_dir(dir)?;
        Ok(Exported {
            bytes: len,
            digest: manifest_digest.clone(),
            replaced,
        })
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// An image as it can leave the store: its manifest (rewritten to name
/// stand-in blobs if any of its layer blobs are elided), that manifest's
/// digest, and the config and layer blobs to send, less `omit`.
pub struct Portable {
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub blobs: Vec<(Digest, u64)>,
    /// Layer blobs sent under another digest: a stored blob of the same
    /// layer, or one re-created from it that came out different.
    pub replaced: usize,
    /// Blobs re-created from their layers for this trip (in `tmp/`,
    /// removed when this is dropped).
    pub made: Vec<TempBlob>,
}

impl Portable {
    /// Where blob `d` of `blobs` is.
    pub fn path_of(&self, store: &Store, d: &Digest) -> PathBuf {
        self.made
            .iter()
            .find(|t| t.digest == *d)
            .map_or_else(|| store.blob_path(d), |t| t.path.clone())
    }
}

/// A layer blob re-created from its layer, in `tmp/` while it lives.
#[derive(Debug)]
pub struct TempBlob {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Re-create a blob of layer `diff_id` from its tree and tar record,
/// compressed as `media_type` says, the way berth compresses the layers
/// it writes (so a layer berth built comes back as the same blob). The
/// tar is checked against `diff_id` on the way: a changed tree is
/// refused, never sent.
pub fn recreate_blob(
    store: &Store,
    diff_id: &Digest,
    media_type: &str,
    progress: &dyn Progress,
) -> Result<TempBlob> {
    use crate::layer::Compression;
    let path = store.tmp_dir().join(unique_name("blob-"));
    let mut blob = TempBlob {
        digest: diff_id.clone(),
        size: 0,
        path,
    };
    let werr = |e: io::Error| Error::Io {
        context: format!("re-creating the blob of layer {diff_id}"),
        source: e,
    };
    let f = File::create(&blob.path).ctx(|| format!("creating {}", blob.path.display()))?;
    let out = crate::digest::HashingWriter::new(BufWriter::with_capacity(1 << 20, f));
    let mut tar = HashingReader::new(ProgressReader {
        inner: store.layer_tar(diff_id)?,
        progress,
    });
    let out = match Compression::declared_by(media_type) {
        Compression::None => {
            let mut out = out;
            io::copy(&mut tar, &mut out).map_err(werr)?;
            out
        }
        Compression::Gzip => {
            let mut z = crate::layer::gzip(out);
            io::copy(&mut tar, &mut z).map_err(werr)?;
            z.finish().and_then(|g| g.finish()).map_err(werr)?
        }
        Compression::Zstd => {
            let mut z = crate::layer::zstd(out).map_err(werr)?;
            io::copy(&mut tar, &mut z).map_err(werr)?;
            z.finish().and_then(|g| g.finish()).map_err(werr)?
        }
    };
    let (got, _) = tar.finish();
    if got != *diff_id {
        return Err(Error::Conflict(format!(
            "layer {diff_id} in the store is damaged (its files and tar record give {got}); nothing was sent. `berth fsck` tells which is damaged"
        )));
    }
    let (w, digest, size) = out.finish();
    let f = w.into_inner().map_err(|e| werr(e.into_error()))?;
    f.sync_all().map_err(werr)?;
    blob.digest = digest;
    blob.size = size;
    Ok(blob)
}

pub fn portable(store: &Store, image: &crate::store::Image, omit: &[Digest]) -> Result<Portable> {
    let mut made: Vec<TempBlob> = Vec::new();
    let mut made_for: HashMap<(Digest, String), (Digest, u64)> = HashMap::new();
    let mut blobs: Vec<(Digest, u64)> =
        vec![(image.config_digest.clone(), image.manifest.config().size())];
    let mut manifest = image.manifest.clone();
    let mut layers = manifest.layers().clone();
    let ids = image.diff_ids()?;
    let mut replaced = 0;
    for (i, l) in layers.iter_mut().enumerate() {
        let d = Digest::from_oci(l.digest())?;
        if omit.contains(&d) {
            continue;
        }
        if !store.has_blob(&d) {
            let id = ids.get(i);
            // Re-created from this image's own layer, in the blob's
            // compression: the same blob when berth wrote it.
            if let Some(id) = id.filter(|id| store.has_split(id)) {
                let key = (id.clone(), l.media_type().to_string());
                let t = match made_for.get(&key) {
                    Some(t) => t.clone(),
                    None => {
                        let t = recreate_blob(store, id, &key.1, &crate::progress::NoProgress)?;
                        let r = (t.digest.clone(), t.size);
                        made.push(t);
                        made_for.insert(key, r.clone());
                        r
                    }
                };
                if t.0 != d {
                    l.set_digest(t.0.to_oci());
                    l.set_size(t.1);
                    replaced += 1;
                }
                blobs.push(t);
                continue;
            }
            // The stand-in must be this image's layer: a record another
            // image made of the same blob digest may say other content.
            let recorded = store
                .elided(&d)
                .filter(|e| Some(&e.diff_id) == id)
                .and_then(|e| e.same_as)
                .filter(|s| store.has_blob(&s.digest));
            let same = match (recorded, id) {
                (Some(s), _) => Some(s),
                (None, Some(id)) => store.blob_for_layer(id)?.map(|(digest, size, media_type)| {
                    crate::store::SameLayer {
                        digest,
                        size,
                        media_type,
                    }
                }),
                (None, None) => None,
            };
            match same {
                Some(same) if store.has_blob(&same.digest) => {
                    l.set_digest(same.digest.to_oci());
                    l.set_size(same.size);
                    l.set_media_type(MediaType::from(same.media_type.as_str()));
                    blobs.push((same.digest, same.size));
                    replaced += 1;
                    continue;
                }
                _ => {
                    return Err(Error::Conflict(format!(
                        "blob {d} is missing from the store; run `berth fsck`"
                    )));
                }
            }
        }
        blobs.push((d, l.size()));
    }
    let (manifest, digest) = if replaced == 0 {
        let bytes = store.read_blob(&image.entry.digest, crate::store::MAX_MANIFEST_BYTES)?;
        (bytes, image.entry.digest.clone())
    } else {
        manifest.set_layers(layers);
        let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::BadJson {
            what: "rewritten manifest".into(),
            source,
        })?;
        let d = Digest::of(&bytes);
        (bytes, d)
    };
    Ok(Portable {
        manifest,
        digest,
        blobs,
        replaced,
        made,
    })
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: io::Read> io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
