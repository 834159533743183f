//! `berth fsck`: re-verify every blob digest and every reference.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::digest::{Digest, HashingReader};
use crate::error::{IoContext, Result};
use crate::progress::Progress;
use crate::store::{ImageEntry, Store};

#[derive(Debug, Default, serde::Serialize)]
pub struct FsckReport {
    /// Damage: a missing or corrupt blob, an unreadable document, a missing layer.
    pub problems: Vec<String>,
    /// Harmless leftovers that gc removes.
    pub notes: Vec<String>,
    pub images: usize,
    pub blobs_checked: usize,
    pub layers_checked: usize,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn fsck(store: &Store, progress: &dyn Progress) -> Result<FsckReport> {
    let mut r = FsckReport::default();
    match fs::read(store.root().join("oci-layout")) {
        Ok(b) if serde_json::from_slice::<serde_json::Value>(&b).is_ok() => {}
        _ => r
            .problems
            .push("oci-layout is missing or not valid JSON".into()),
    }

    // 1. Every blob's content matches its name.
    let dir = store.blobs_dir();
    let mut files = Vec::new();
    for e in fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
        let e = e.ctx(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        match Digest::from_hex(&name) {
            Some(d) => {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                progress.add_total(len);
                files.push(d);
            }
            None => r.notes.push(format!("stray file blobs/sha256/{name}")),
        }
    }
    let corrupt = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(d) = files.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let res = File::open(store.blob_path(d)).and_then(|f| {
                        let mut h = HashingReader::new(f);
                        let mut sink = ProgressSink(progress);
                        io::copy(&mut h, &mut sink)?;
                        Ok(h.finish().0)
                    });
                    let bad = match res {
                        Ok(got) if &got == d => None,
                        Ok(got) => {
                            Some(format!("blob {d} is corrupt: its content hashes to {got}"))
                        }
                        Err(e) => Some(format!("blob {d} cannot be read: {e}")),
                    };
                    if let (Some(b), Ok(mut c)) = (bad, corrupt.lock()) {
                        c.push(b);
                    }
                }
            });
        }
    });
    let corrupt = corrupt.into_inner().unwrap_or_default();
    r.blobs_checked = files.len();
    r.problems.extend(corrupt);
    let present: HashSet<Digest> = files.into_iter().collect();

    // 2. Every image's documents and layers are there.
    let images = match store.images() {
        Ok(i) => i,
        Err(e) => {
            r.problems.push(format!("index.json cannot be read: {e}"));
            Vec::new()
        }
    };
    r.images = images.len();
    let mut live_layers = HashSet::new();
    for e in &images {
        check_image(store, e, &present, &mut r, &mut live_layers);
    }

    // 3. Leftovers.
    let layers = store.layers_dir();
    for e in fs::read_dir(&layers)
        .ctx(|| format!("listing {}", layers.display()))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        match Digest::from_hex(&name) {
            Some(d) if live_layers.contains(&d) => {}
            _ => r
                .notes
                .push(format!("unreferenced layer layers/{name} (gc removes it)")),
        }
    }
    let tmp: Vec<_> = fs::read_dir(store.tmp_dir())
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    if !tmp.is_empty() {
        r.notes.push(format!(
            "{} temporary file(s) left by interrupted work (gc removes them)",
            tmp.len()
        ));
    }
    Ok(r)
}

fn check_image(
    store: &Store,
    e: &ImageEntry,
    present: &HashSet<Digest>,
    r: &mut FsckReport,
    live_layers: &mut HashSet<Digest>,
) {
    let label = e
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| e.digest.short().to_owned());
    if !present.contains(&e.digest) {
        r.problems.push(format!(
            "image {label}: manifest blob {} is missing",
            e.digest
        ));
        return;
    }
    let img = match store.load_image(e) {
        Ok(i) => i,
        Err(err) => {
            r.problems.push(format!("image {label}: {err}"));
            return;
        }
    };
    let (digests, diff_ids) = match (img.layer_digests(), img.diff_ids()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(err), _) | (_, Err(err)) => {
            r.problems.push(format!("image {label}: {err}"));
            return;
        }
    };
    for d in digests {
        if !present.contains(&d) {
            r.problems
                .push(format!("image {label}: layer blob {d} is missing"));
        }
    }
    for d in diff_ids {
        r.layers_checked += 1;
        if !store.has_layer(&d) {
            r.problems.push(format!(
                "image {label}: unpacked layer {d} is missing (re-import the image)"
            ));
        }
        live_layers.insert(d);
    }
}

struct ProgressSink<'a>(&'a dyn Progress);

impl io::Write for ProgressSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.advance(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
