//! `berth fsck`: re-verify every blob digest, every reference and the
//! content of every unpacked layer against its record; `repair` re-creates
//! what can be re-created from blobs.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::digest::{Digest, HashingReader};
use crate::error::{IoContext, Result};
use crate::layer::{Compression, LayerJob, Limits, ingest};
use crate::progress::Progress;
use crate::store::{ImageEntry, Store};
use crate::unpack::UnpackOptions;

#[derive(Debug, Default, serde::Serialize)]
pub struct FsckReport {
    /// Damage: a missing or corrupt blob, an unreadable document, a missing
    /// or changed layer.
    pub problems: Vec<String>,
    /// Harmless leftovers that gc removes.
    pub notes: Vec<String>,
    pub images: usize,
    pub blobs_checked: usize,
    pub layers_checked: usize,
    /// Blobs whose content does not match their name.
    pub corrupt_blobs: Vec<Digest>,
    /// Blobs an image needs that are not in the store.
    pub missing_blobs: Vec<Digest>,
    /// Referenced layers that are missing, incomplete or changed.
    pub damaged_layers: Vec<Digest>,
    /// Intact layers whose tar record no longer rebuilds them (export and
    /// push cannot re-create their blobs).
    pub damaged_records: Vec<Digest>,
    /// Blobs no image, app or running instance references.
    pub unreferenced_blobs: Vec<Digest>,
    /// The blobs each referenced layer can be re-created from (every
    /// image that lists it may have its own, differently compressed).
    #[serde(skip)]
    sources: BTreeMap<Digest, Vec<LayerSource>>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Where a layer can be re-created from: its blob and declared type.
#[derive(Clone, Debug)]
struct LayerSource {
    blob: Digest,
    size: u64,
    declared: Compression,
}

/// Check the store. `extra_roots` are manifests that apps and running
/// instances use besides index.json.
pub fn fsck(store: &Store, extra_roots: &[Digest], progress: &dyn Progress) -> Result<FsckReport> {
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
    let corrupt = parallel(&files, |d| {
        let res = File::open(store.blob_path(d)).and_then(|f| {
            let mut h = HashingReader::new(f);
            let mut sink = ProgressSink(progress);
            io::copy(&mut h, &mut sink)?;
            Ok(h.finish().0)
        });
        match res {
            Ok(got) if &got == d => None,
            Ok(got) => Some((
                d.clone(),
                format!("blob {d} is corrupt: its content hashes to {got}"),
            )),
            Err(e) => Some((d.clone(), format!("blob {d} cannot be read: {e}"))),
        }
    });
    r.blobs_checked = files.len();
    for (d, msg) in corrupt {
        r.corrupt_blobs.push(d);
        r.problems.push(msg);
    }
    let present: HashSet<Digest> = files.iter().cloned().collect();

    // 2. Every image's documents and layers are there.
    let mut roots: Vec<(Digest, String)> = Vec::new();
    match store.images() {
        Ok(i) => {
            r.images = i.len();
            for e in i {
                let label = e
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| e.digest.short().to_owned());
                roots.push((e.digest, label));
            }
        }
        Err(e) => r.problems.push(format!("index.json cannot be read: {e}")),
    }
    for d in extra_roots {
        if !roots.iter().any(|(r, _)| r == d) {
            roots.push((d.clone(), format!("{} (used by an app)", d.short())));
        }
    }
    let mut live_blobs = HashSet::new();
    let mut live_layers: BTreeMap<Digest, Vec<LayerSource>> = BTreeMap::new();
    for (digest, label) in &roots {
        check_image(
            store,
            digest,
            label,
            &present,
            &mut r,
            &mut live_blobs,
            &mut live_layers,
        );
    }

    r.sources = live_layers.clone();
    // 3. Every referenced layer is complete and unchanged.
    let to_check: Vec<Digest> = live_layers.keys().cloned().collect();
    r.layers_checked = to_check.len();
    let damaged = parallel(&to_check, |d| {
        verify_layer(store, d, progress).map(|why| (d.clone(), why))
    });
    for (d, why) in damaged {
        match why {
            Damage::Tree(why) => {
                r.problems
                    .push(format!("unpacked layer {}: {why}", d.short()));
                r.damaged_layers.push(d);
            }
            Damage::Record(why) => {
                r.problems.push(format!(
                    "layer {}: {why}; the layer itself is intact and runs, but its blob cannot be re-created for export or push",
                    d.short()
                ));
                r.damaged_records.push(d);
            }
        }
    }

    // 4. Leftovers.
    for d in &files {
        if !live_blobs.contains(d) && !r.corrupt_blobs.contains(d) {
            r.unreferenced_blobs.push(d.clone());
        }
    }
    if !r.unreferenced_blobs.is_empty() {
        r.notes.push(format!(
            "{} unreferenced blob(s) (gc removes them): {}",
            r.unreferenced_blobs.len(),
            r.unreferenced_blobs
                .iter()
                .take(5)
                .map(|d| d.short().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let layers = store.layers_dir();
    for e in fs::read_dir(&layers)
        .ctx(|| format!("listing {}", layers.display()))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let hex = name
            .strip_suffix(".content")
            .or_else(|| name.strip_suffix(".tar-split"))
            .unwrap_or(&name);
        match Digest::from_hex(hex) {
            Some(d) if live_layers.contains_key(&d) => {}
            Some(_) if name.ends_with(".content") || name.ends_with(".tar-split") => {}
            _ => r
                .notes
                .push(format!("unreferenced layer layers/{name} (gc removes it)")),
        }
    }
    // Names carrying a live writer's pid are work in progress (a build's
    // tree, a running --writable instance's root), as gc sees them.
    let tmp: Vec<_> = fs::read_dir(store.tmp_dir())
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    !e.file_name()
                        .to_str()
                        .and_then(crate::fsutil::writer_pid)
                        .is_some_and(crate::fsutil::pid_alive)
                })
                .collect()
        })
        .unwrap_or_default();
    if !tmp.is_empty() {
        r.notes.push(format!(
            "{} temporary file(s) left by interrupted work (gc removes them)",
            tmp.len()
        ));
    }
    Ok(r)
}

/// Run `f` over `items` on a few threads; collect what it returns.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Option<R> + Sync) -> Vec<R> {
    let out = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if let Some(r) = f(item)
                        && let Ok(mut o) = out.lock()
                    {
                        o.push(r);
                    }
                }
            });
        }
    });
    out.into_inner().unwrap_or_default()
}

/// What is wrong with a layer: its tree (it must not run as it is), or
/// only its tar record (it runs; its blob cannot be re-created).
enum Damage {
    Tree(String),
    Record(String),
}

/// Why layer `d` is not as it was unpacked, or None if it is.
fn verify_layer(store: &Store, d: &Digest, progress: &dyn Progress) -> Option<Damage> {
    verify_tree(store, d, progress)
        .map(Damage::Tree)
        .or_else(|| {
            // Its blob is re-created from the tree and tar record: they must
            // still give the diff-id.
            if !store.split_path(d).is_file() {
                return None;
            }
            match store.layer_tar(d).and_then(|mut t| {
                let mut h = HashingReader::new(&mut t);
                io::copy(&mut h, &mut io::sink()).ctx(|| "rebuilding its tar".into())?;
                Ok(h.finish().0)
            }) {
                Ok(got) if got == *d => None,
                Ok(got) => Some(Damage::Record(format!(
                    "its tar record rebuilds {got}, not this layer"
                ))),
                Err(e) => Some(Damage::Record(format!(
                    "its tar record cannot rebuild it: {e}"
                ))),
            }
        })
}

fn verify_tree(store: &Store, d: &Digest, progress: &dyn Progress) -> Option<String> {
    let tree = store.layer_path(d);
    if !tree.is_dir() {
        return Some("is missing".into());
    }
    let stored = match fs::read_to_string(store.layer_record_path(d)) {
        Ok(s) => s,
        Err(_) => {
            return Some(
                "is incomplete: it has no content record (an interrupted import or removal)".into(),
            );
        }
    };
    let bytes: u64 = stored
        .lines()
        .skip(1)
        .filter_map(|l| l.split(' ').nth(5)?.parse::<u64>().ok())
        .fold(0u64, u64::saturating_add);
    progress.add_total(bytes);
    let now = rustix::fs::open(
        &tree,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(io::Error::from)
    .map_err(|e| e.to_string())
    .and_then(|fd| crate::content::record(fd.as_fd()).map_err(|e| format!("{e}")));
    progress.advance(bytes);
    match now {
        Err(e) => Some(format!("cannot be read: {e}")),
        Ok(now) => {
            let diff = crate::content::differences(&stored, &now, 5);
            (!diff.is_empty()).then(|| format!("differs from its record: {}", diff.join("; ")))
        }
    }
}

fn check_image(
    store: &Store,
    digest: &Digest,
    label: &str,
    present: &HashSet<Digest>,
    r: &mut FsckReport,
    live_blobs: &mut HashSet<Digest>,
    live_layers: &mut BTreeMap<Digest, Vec<LayerSource>>,
) {
    live_blobs.insert(digest.clone());
    if !present.contains(digest) {
        r.problems
            .push(format!("image {label}: manifest blob {digest} is missing"));
        r.missing_blobs.push(digest.clone());
        return;
    }
    let entry = ImageEntry {
        digest: digest.clone(),
        size: 0,
        names: vec![],
    };
    let img = match store.load_image(&entry) {
        Ok(i) => i,
        Err(err) => {
            r.problems.push(format!("image {label}: {err}"));
            return;
        }
    };
    live_blobs.insert(img.config_digest.clone());
    let (digests, diff_ids) = match (img.layer_digests(), img.diff_ids()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(err), _) | (_, Err(err)) => {
            r.problems.push(format!("image {label}: {err}"));
            return;
        }
    };
    let mut stand_ins = Vec::new();
    for (i, d) in digests.iter().enumerate() {
        live_blobs.insert(d.clone());
        if present.contains(d) || r.missing_blobs.contains(d) {
            continue;
        }
        // Elided: held as its layer's content (another blob of the same
        // layer stands in for it); the layer itself is checked below.
        match store.elided(d) {
            Some(e) if Some(&e.diff_id) == diff_ids.get(i) => match e.same_as {
                Some(same) if present.contains(&same.digest) => {
                    live_blobs.insert(same.digest.clone());
                    stand_ins.push((e.diff_id, same));
                }
                Some(same) => {
                    r.problems.push(format!(
                        "image {label}: layer blob {d} is held as content, and the blob that stands in for it ({}) is missing; re-import or pull the image",
                        same.digest
                    ));
                    r.missing_blobs.push(d.clone());
                }
                None if store.has_split(&e.diff_id) => {}
                None if !store.has_layer(&e.diff_id) => {}
                None => r.notes.push(format!(
                    "image {label}: layer blob {d} is held only as its layer's content (no compressed copy): the image runs, but export and push cannot write it until it is imported or pulled again"
                )),
            },
            Some(e) => {
                r.problems.push(format!(
                    "image {label}: layer blob {d} is recorded as the content of layer {}, but the image says {}",
                    e.diff_id,
                    diff_ids.get(i).map_or("nothing".into(), ToString::to_string)
                ));
                r.missing_blobs.push(d.clone());
            }
            None => {
                r.problems
                    .push(format!("image {label}: layer blob {d} is missing"));
                r.missing_blobs.push(d.clone());
            }
        }
    }
    for (i, d) in diff_ids.into_iter().enumerate() {
        let src = img.manifest.layers().get(i).and_then(|l| {
            Some(LayerSource {
                blob: digests.get(i)?.clone(),
                size: l.size(),
                declared: Compression::declared_by(l.media_type().as_ref()),
            })
        });
        let slot = live_layers.entry(d).or_default();
        if let Some(src) = src.filter(|s| !slot.iter().any(|o| o.blob == s.blob)) {
            slot.push(src);
        }
    }
    // A stand-in blob can re-create the layer too.
    for (diff_id, same) in stand_ins {
        let slot = live_layers.entry(diff_id).or_default();
        if !slot.iter().any(|o| o.blob == same.digest) {
            slot.push(LayerSource {
                blob: same.digest,
                size: same.size,
                declared: Compression::declared_by(&same.media_type),
            });
        }
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct RepairReport {
    /// What was done, in plain sentences.
    pub done: Vec<String>,
    /// What could not be done, and why.
    pub failed: Vec<String>,
    /// Damaged layers removed because nothing here re-creates them: a
    /// re-import or a pull of an image using them brings them back.
    pub removed_layers: Vec<Digest>,
}

/// Re-create damaged layers from their blobs and remove corrupt blobs
/// (they are refetched or re-imported by the caller). Layers in `in_use`
/// (by running instances) are left alone: their trees are mounted.
pub fn repair(
    store: &Store,
    report: &FsckReport,
    in_use: &HashSet<Digest>,
    progress: &dyn Progress,
) -> Result<RepairReport> {
    let mut out = RepairReport::default();
    for d in &report.corrupt_blobs {
        store.trash(&store.blob_path(d))?;
        out.done.push(format!("removed corrupt blob {}", d.short()));
    }
    // A bad tar record goes; the layer stays and runs. Its blob then needs
    // a fresh copy of the image (or a stored blob of the layer).
    for d in &report.damaged_records {
        store.trash(&store.split_path(d))?;
        out.done.push(format!(
            "removed the damaged tar record of layer {} (the layer runs as before; to export or push its image, re-import or pull it)",
            d.short()
        ));
    }
    if report.damaged_layers.is_empty() {
        return Ok(out);
    }
    let limits = Limits::from_env().unwrap_or_default();
    let opts = UnpackOptions::for_current_user();
    for d in &report.damaged_layers {
        if in_use.contains(d) {
            out.failed.push(format!(
                "layer {} is in use by a running app; stop it and run `berth fsck --repair` again",
                d.short()
            ));
            continue;
        }
        let usable: Vec<LayerSource> = report
            .sources
            .get(d)
            .into_iter()
            .flatten()
            .filter(|s| store.has_blob(&s.blob) && !report.corrupt_blobs.contains(&s.blob))
            .cloned()
            .collect();
        if usable.is_empty() {
            // A layer that re-creates its own blob has none to be re-made
            // from. A changed layer must not run: it goes, and an import
            // or pull of an image using it (which a missing layer makes
            // fetch it again) brings it back.
            store.remove_layer(d)?;
            out.removed_layers.push(d.clone());
            out.failed.push(format!(
                "layer {} cannot be re-created here: no intact blob of it is in the store, so the damaged layer was removed; re-import or pull the image to bring it back",
                d.short()
            ));
            continue;
        }
        store.remove_layer(d)?;
        let mut errors = Vec::new();
        for src in &usable {
            let job = LayerJob {
                name: src.blob.short().to_owned(),
                expected: Some((src.blob.clone(), src.size)),
                diff_id: d.clone(),
                declared: Some(src.declared),
                write_blob: false,
                unpack: true,
            };
            progress.add_total(src.size);
            let res = File::open(store.blob_path(&src.blob))
                .ctx(|| format!("opening blob {}", src.blob))
                .and_then(|mut f| ingest(store, &mut f, &job, &opts, &limits, progress));
            match res {
                Ok(_) => {
                    out.done.push(format!(
                        "re-created layer {} from blob {}",
                        d.short(),
                        src.blob.short()
                    ));
                    errors.clear();
                    break;
                }
                Err(e) => errors.push(format!("from blob {}: {e}", src.blob.short())),
            }
        }
        if !errors.is_empty() {
            out.failed.push(format!(
                "layer {}: re-creating it failed ({})",
                d.short(),
                errors.join("; ")
            ));
        }
    }
    Ok(out)
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
