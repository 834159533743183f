//! Deltas made from and applied to the layers of stored images.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use berth_image::layer::{Compression, LayerJob, Limits};
use berth_image::store::{ElidedBlob, SameLayer};
use berth_image::unpack::UnpackOptions;
use berth_image::{Digest, Store};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::files::ImageFiles;
use crate::tardiff::{self, Made};

/// A file in the store's `tmp/`, removed when dropped.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    fn new(store: &Store, prefix: &str) -> Result<TempFile> {
        let dir = store.tmp_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(TempFile {
            path: dir.join(berth_image::fsutil::unique_name(prefix)),
        })
    }
    fn create(&self) -> Result<File> {
        File::create(&self.path)
            .map_err(|e| Error::io(format!("creating {}", self.path.display()), e))
    }
    fn open(&self) -> Result<File> {
        File::open(&self.path).map_err(|e| Error::io(format!("opening {}", self.path.display()), e))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A delta made for one layer.
pub struct LayerDelta {
    pub file: TempFile,
    pub digest: Digest,
    pub size: u64,
    pub made: Made,
}

/// The stored blob that holds layer blob `blob`: itself, or the blob that
/// stands in for it.
fn stored_blob(store: &Store, blob: &Digest) -> Option<PathBuf> {
    if store.has_blob(blob) {
        return Some(store.blob_path(blob));
    }
    match store.elided(blob).and_then(|e| e.same_as) {
        Some(s) if store.has_blob(&s.digest) => Some(store.blob_path(&s.digest)),
        _ => None,
    }
}

/// Layer `diff_id`'s tar in `out`: rebuilt from its tree and record, or
/// from the blob `blob` (or its stand-in), checked against `diff_id`.
fn layer_tar_to(store: &Store, blob: &Digest, diff_id: &Digest, out: &TempFile) -> Result<File> {
    let io = |e| Error::io(format!("writing {}", out.path.display()), e);
    let mut w = BufWriter::new(out.create()?);
    let mut h = Tee {
        out: &mut w,
        hash: Sha256::new(),
    };
    if store.has_split(diff_id) {
        let mut r = store.layer_tar(diff_id)?;
        std::io::copy(&mut r, &mut h).map_err(io)?;
    } else {
        let Some(path) = stored_blob(store, blob) else {
            return Err(Error::Invalid(format!(
                "the store holds no blob of layer {blob}, so no delta can be made to it"
            )));
        };
        let rio = |e| Error::io(format!("reading {}", path.display()), e);
        let f = File::open(&path).map_err(rio)?;
        let mut r = BufReader::new(f);
        let head = std::io::BufRead::fill_buf(&mut r).map_err(rio)?;
        let mut rd = Compression::detect(head).reader(r).map_err(rio)?;
        std::io::copy(&mut rd, &mut h).map_err(rio)?;
    }
    let got = Digest::from_hash(&h.hash.finalize());
    if got != *diff_id {
        return Err(Error::Invalid(format!(
            "the store's copy of layer {diff_id} is damaged (it gives {got}); run `berth fsck`"
        )));
    }
    w.flush().map_err(io)?;
    drop(w);
    out.open()
}

fn sha256_file(path: &Path) -> Result<(Digest, u64)> {
    let io = |e| Error::io(format!("reading {}", path.display()), e);
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((Digest::from_hash(&h.finalize()), n))
}

/// A tar-diff that rebuilds layer blob `blob` (of a stored image) from
/// `old`'s files. `None` when it would not be smaller than `worth`
/// bytes (the layer's own blob, less what makes a delta worth fetching).
pub fn make(
    store: &Store,
    old: &mut ImageFiles,
    blob: &Digest,
    diff_id: &Digest,
    worth: u64,
    level: i32,
) -> Result<Option<LayerDelta>> {
    let tar = TempFile::new(store, "delta-tar-")?;
    let mut new = layer_tar_to(store, blob, diff_id, &tar)?;
    let file = TempFile::new(store, "delta-")?;
    let made = {
        let mut w = BufWriter::new(file.create()?);
        let made = tardiff::generate(&mut new, old, &mut w, level)?;
        w.flush()
            .map_err(|e| Error::io(format!("writing {}", file.path.display()), e))?;
        made
    };
    let (digest, size) = sha256_file(&file.path)?;
    if size >= worth {
        return Ok(None);
    }
    Ok(Some(LayerDelta {
        file,
        digest,
        size,
        made,
    }))
}

/// Writes to two places and hashes what went through.
struct Tee<'a> {
    out: &'a mut dyn Write,
    hash: Sha256,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Rebuild layer blob `blob` (content `diff_id`) from the tar-diff at
/// `delta` and `old`'s files, and put the layer in the store: the
/// rebuilt tar, zstd-compressed, is stored as a blob of that layer and
/// stands in for `blob`, which is recorded as held by its content (an
/// elided blob, never read: `verified` stays false). Nothing is kept
/// unless the rebuilt tar is `diff_id`'s content.
pub fn rebuild(
    store: &Store,
    old: &mut ImageFiles,
    delta: &Path,
    blob: &Digest,
    diff_id: &Digest,
    limits: &Limits,
) -> Result<()> {
    // What the store knows of `blob` already stands: a delta never
    // rewrites another image's record of it.
    if store.has_blob(blob) {
        return Err(Error::Invalid(format!(
            "layer blob {blob} is in the store already"
        )));
    }
    if let Some(e) = store.blob_record(blob) {
        let same = e.diff_id == *diff_id && store.has_layer(diff_id) && store.can_send(&e);
        return if same {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "the store records layer blob {blob} as other content"
            )))
        };
    }
    let input =
        File::open(delta).map_err(|e| Error::io(format!("opening {}", delta.display()), e))?;
    let writer = store.blob_writer()?;
    let mut z = zstd::stream::write::Encoder::new(writer, 3)
        .map_err(|e| Error::io("compressing the rebuilt layer", e))?;
    let mut tee = Tee {
        out: &mut z,
        hash: Sha256::new(),
    };
    tardiff::apply(input, old, &mut tee, limits.max_layer_bytes)?;
    let got = Digest::from_hash(&tee.hash.finalize());
    if got != *diff_id {
        return Err(Error::Invalid(format!(
            "the delta rebuilt {got}, not layer {diff_id}"
        )));
    }
    let writer = z
        .finish()
        .map_err(|e| Error::io("compressing the rebuilt layer", e))?;
    let (stand_in, size) = writer.commit("the rebuilt layer", None)?;
    if !store.has_layer(diff_id) {
        let job = LayerJob {
            name: blob.short().to_owned(),
            expected: Some((stand_in.clone(), size)),
            diff_id: diff_id.clone(),
            declared: Some(Compression::Zstd),
            write_blob: false,
            unpack: true,
        };
        let mut f = File::open(store.blob_path(&stand_in))
            .map_err(|e| Error::io(format!("opening blob {stand_in}"), e))?;
        berth_image::layer::ingest(
            store,
            &mut f,
            &job,
            &UnpackOptions::for_current_user(),
            limits,
            &berth_image::progress::NoProgress,
        )?;
    }
    // A layer that re-creates its blobs needs no stand-in either.
    let same_as = if store.has_split(diff_id)
        && !berth_image::store::keep_blobs()
        && store.blob_record(&stand_in).is_none()
    {
        store.trash(&store.blob_path(&stand_in))?;
        None
    } else {
        store.record_blob(&stand_in, diff_id)?;
        Some(SameLayer {
            digest: stand_in,
            size,
            media_type: Compression::Zstd.oci_media_type().to_owned(),
        })
    };
    store.elide_blob(
        blob,
        &ElidedBlob {
            diff_id: diff_id.clone(),
            same_as,
            verified: false,
            elided: true,
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_rebuild_never_rewrites_what_the_store_records_of_a_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (blob, theirs, mine) = (Digest::of(b"blob"), Digest::of(b"a"), Digest::of(b"b"));
        store.record_blob(&blob, &theirs).unwrap();
        let mut none = ImageFiles { layers: Vec::new() };
        let e = rebuild(
            &store,
            &mut none,
            Path::new("/nonexistent"),
            &blob,
            &mine,
            &Limits::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("records layer blob"), "{e}");
        assert_eq!(store.blob_record(&blob).unwrap().diff_id, theirs);
    }
}
