//! Garbage collection: remove blobs and unpacked layers that nothing
//! references, and temp files left by interrupted work.
//! The caller holds the exclusive store lock.

use std::collections::HashSet;
use std::fs;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{remove_tree, tree_size};
use crate::store::Store;

#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub temp_removed: usize,
    pub bytes_freed: u64,
    /// Layers nothing else references, kept because a running app uses
    /// them; the next gc after it ends removes them.
    pub kept_for_running: usize,
    /// Files of `objects/` no layer links any more (their bytes are in
    /// `bytes_freed` through the layers that held them).
    pub objects_removed: u64,
}

/// What the store's roots keep alive.
#[derive(Default)]
pub struct Live {
    pub blobs: HashSet<Digest>,
    pub layers: HashSet<Digest>,
    /// Records of elided layer blobs (`elided/<hex>`).
    pub elided: HashSet<Digest>,
}

/// Walk from index.json (plus `extra` manifest digests, e.g. deployments).
/// A root that cannot be read stops gc: deleting on a guess loses data.
pub fn live_set(store: &Store, extra: &[Digest]) -> Result<Live> {
    let mut live = Live::default();
    let mut roots: Vec<Digest> = extra.to_vec();
    for e in store.images()? {
        roots.push(e.digest);
    }
    for m in roots {
        if !live.blobs.insert(m.clone()) {
            continue;
        }
        let entry = crate::store::ImageEntry {
            digest: m.clone(),
            size: 0,
            names: vec![],
        };
        let img = store.load_image(&entry).map_err(|e| {
            Error::Conflict(format!(
                "cannot read image {m} ({e}); run `berth fsck` before gc"
            ))
        })?;
        live.blobs.insert(img.config_digest.clone());
        for d in img.layer_digests()? {
            // A live layer blob keeps its record; an elided one, also the
            // blob standing in for it.
            if let Some(e) = store.blob_record(&d) {
                if e.elided && !store.has_blob(&d) {
                    live.blobs.extend(e.same_as.map(|s| s.digest));
                }
                live.elided.insert(d.clone());
            }
            live.blobs.insert(d);
        }
        live.layers.extend(img.diff_ids()?);
    }
    Ok(live)
}

/// Remove every blob not named by a digest in `keep`; returns the count
/// and bytes freed. A blob is one file, so its unlink is atomic.
fn sweep_blobs(store: &Store, keep: &HashSet<Digest>) -> Result<(usize, u64)> {
    sweep_named(store, &store.blobs_dir(), keep)
}

/// Remove every entry of `dir` not named by a digest in `keep`.
fn sweep_named(
    store: &Store,
    dir: &std::path::Path,
    keep: &HashSet<Digest>,
) -> Result<(usize, u64)> {
    let (mut n, mut freed) = (0, 0);
    for e in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let e = e.ctx(|| format!("listing {}", dir.display()))?;
        let live = e
            .file_name()
            .to_str()
            .and_then(Digest::from_hex)
            .is_some_and(|d| keep.contains(&d));
        if !live {
            freed += tree_size(&e.path());
            store.trash(&e.path())?;
            n += 1;
        }
    }
    Ok((n, freed))
}

/// Remove the records of elided blobs no live image names.
fn sweep_elided(store: &Store, keep: &HashSet<Digest>) -> Result<()> {
    if store.elided_dir().is_dir() {
        sweep_named(store, &store.elided_dir(), keep)?;
    }
    Ok(())
}

/// Remove unpacked layers (tree and record) not in `keep`, each unmarked
/// before its tree is touched (`Store::remove_layer`).
fn sweep_layers(store: &Store, keep: &HashSet<Digest>) -> Result<(usize, u64)> {
    let dir = store.layers_dir();
    let (mut n, mut freed) = (0, 0);
    let mut seen = HashSet::new();
    for e in fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
        let e = e.ctx(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let hex = name
            .strip_suffix(".content")
            .or_else(|| name.strip_suffix(".tar-split"))
            .unwrap_or(&name);
        match Digest::from_hex(hex) {
            // A tar record whose layer is gone (a crash between the two).
            Some(d) if name.ends_with(".tar-split") && !store.layer_path(&d).exists() => {
                store.trash(&e.path())?;
            }
            Some(d) if keep.contains(&d) => {}
            Some(d) => {
                if seen.insert(d.clone()) {
                    freed += tree_size(&store.layer_path(&d));
                    store.remove_layer(&d)?;
                    n += 1;
                }
            }
            None => {
                freed += tree_size(&e.path());
                store.trash(&e.path())?;
                n += 1;
            }
        }
    }
    Ok((n, freed))
}

/// `extra_roots`: manifests of installed apps. Running instances' pins
/// (`Store::pin`) keep their content too, until the instance ends.
pub fn gc(store: &Store, extra_roots: &[Digest]) -> Result<GcReport> {
    let (running, pinned_layers) = store.pinned()?;
    let mut roots = extra_roots.to_vec();
    roots.extend(running.iter().filter(|d| store.has_blob(d)).cloned());
    let mut live = live_set(store, &roots)?;
    let without_running = live_set(store, extra_roots)?;
    live.layers.extend(pinned_layers);
    let mut r = GcReport {
        kept_for_running: live.layers.difference(&without_running.layers).count(),
        ..GcReport::default()
    };
    let (n, freed) = sweep_blobs(store, &live.blobs)?;
    r.blobs_removed = n;
    r.bytes_freed += freed;
    let (n, freed) = sweep_layers(store, &live.layers)?;
    r.layers_removed = n;
    r.bytes_freed += freed;
    sweep_elided(store, &live.elided)?;
    // Under the exclusive lock no import or pull is writing; what else
    // works in tmp/ without the lock (a build's scratch tree, a menu
    // export) carries a live writer's pid in its name and stays.
    let tmp = store.tmp_dir();
    for e in fs::read_dir(&tmp).ctx(|| format!("listing {}", tmp.display()))? {
        let e = e.ctx(|| format!("listing {}", tmp.display()))?;
        let name = e.file_name();
        if let Some(pid) = name.to_str().and_then(crate::fsutil::writer_pid)
            && crate::fsutil::pid_alive(pid)
        {
            continue;
        }
        let size = tree_size(&e.path());
        match remove_tree(&e.path()) {
            Ok(()) => {
                r.bytes_freed += size;
                r.temp_removed += 1;
            }
            // Its writer finished with it meanwhile.
            Err(_) if fs::symlink_metadata(e.path()).is_err() => {}
            Err(err) => return Err(err),
        }
    }
    // Last: a dead import's tree in tmp/ may have held an object's links.
    r.objects_removed = crate::objects::prune(store)?.0;
    Ok(r)
}
