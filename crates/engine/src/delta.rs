//! Pulls through layer deltas: before fetching whole layers, ask the
//! registry for an oci-delta artifact that rebuilds them from an image the
//! store has (docs/on-disk-format.md, "Layer deltas"). Anything wrong with
//! a delta costs only the whole layer it was meant to replace.

use std::path::Path;

use berth_delta::artifact::{self, Artifact};
use berth_delta::files::ImageFiles;
use berth_image::layer::Limits;
use berth_image::{Digest, Image};

use crate::Engine;
use crate::error::Result;
use crate::frontend::Frontend;
use crate::source::PullPlan;

/// Delta artifacts looked at for one image, at most.
const MAX_CANDIDATES: usize = 16;

#[derive(Default)]
pub(crate) struct Deltas {
    /// Layer blobs rebuilt and in the store: (blob, diff-id).
    pub rebuilt: Vec<(Digest, Digest)>,
    pub downloaded: u64,
    /// Delta blobs fetched.
    pub fetched: usize,
    /// Bytes of the referrers listing and artifact manifests read.
    pub metadata: u64,
}

impl Engine {
    /// Rebuild what `p` lacks from deltas where the registry has them.
    /// Only a store error is an error: a registry without deltas, a
    /// delta that does not apply or rebuilds the wrong bytes, fall back
    /// to whole layers (with a note for the last two).
    pub(crate) fn pull_deltas(
        &self,
        p: &PullPlan,
        dir: &Path,
        fe: &dyn Frontend,
    ) -> Result<Deltas> {
        let mut out = Deltas::default();
        if p.missing.is_empty() || std::env::var_os("BERTH_NO_DELTAS").is_some() {
            return Ok(out);
        }
        let Some((a, source)) = self.find_delta(p, &mut out.metadata) else {
            return Ok(out);
        };
        let manifest: oci_spec::image::ImageManifest =
            serde_json::from_slice(&p.resolved.manifest)?;
        // (delta blob, size, layer blob, diff-id) for each missing layer
        // the artifact has a smaller tar-diff of.
        let mut wanted = Vec::new();
        for (i, l) in manifest.layers().iter().enumerate() {
            let d = Digest::from_oci(l.digest())?;
            let Some(size) = p.missing.iter().find(|(m, _)| *m == d).map(|m| m.1) else {
                continue;
            };
            let (Some(dl), Some(id)) = (
                a.layers.iter().find(|x| x.to == d && x.tar_diff),
                p.diff_ids.get(i),
            ) else {
                continue;
            };
            if dl.size < size
                && !wanted
                    .iter()
                    .any(|w: &(Digest, u64, Digest, Digest)| w.2 == d)
            {
                wanted.push((dl.blob.clone(), dl.size, d, id.clone()));
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        for w in &wanted {
            if !blobs.iter().any(|b| b.0 == w.0) {
                blobs.push((w.0.clone(), w.1));
            }
        }
        let ddir = dir.join("deltas");
        out.downloaded = {
            let bar = fe.progress("pulling deltas");
            match p.remote.fetch(&blobs, &ddir, bar.as_ref()) {
                Ok(n) => n,
                Err(e) => {
                    fe.warn(&format!(
                        "note: the registry's deltas could not be fetched ({}); fetching whole layers",
                        crate::error_chain(&e)
                    ));
                    return Ok(Deltas {
                        metadata: out.metadata,
                        ..Deltas::default()
                    });
                }
            }
        };
        out.fetched = blobs.len();
        let limits = Limits::from_env()?;
        let mut files = match ImageFiles::new(&self.store, &source) {
            Ok(f) => f,
            Err(e) => {
                fe.warn(&format!(
                    "note: deltas not used ({e}); fetching whole layers"
                ));
                return Ok(out);
            }
        };
        for (blob, _, layer, id) in &wanted {
            let path = ddir.join("blobs/sha256").join(blob.hex());
            match berth_delta::layers::rebuild(&self.store, &mut files, &path, layer, id, &limits) {
                Ok(()) => out.rebuilt.push((layer.clone(), id.clone())),
                Err(berth_delta::Error::Image(e)) if e.is_no_space() => return Err(e.into()),
                Err(e) => fe.warn(&format!(
                    "note: the delta for layer {} did not apply ({}); fetching the whole layer",
                    layer.short(),
                    crate::error_chain(&e)
                )),
            }
        }
        Ok(out)
    }

    /// The first delta artifact for `p`'s image whose old image the store
    /// has (by config digest, every layer complete), and that image.
    fn find_delta(&self, p: &PullPlan, read: &mut u64) -> Option<(Artifact, Image)> {
        let (found, size) = p
            .remote
            .referrers(&p.resolved.digest, artifact::ARTIFACT_TYPE, MAX_CANDIDATES)
            .ok()?;
        *read += size;
        // Only an earlier image of the same repository may be the old side:
        // the registry serves its content already. Any other stored image
        // (another app's private layers) would let a hostile registry learn
        // its files, one whole-layer fallback at a time.
        let repo = berth_registry::containers::normalize(&p.remote.repository());
        let same_repo = |e: &berth_image::ImageEntry| {
            e.names.iter().any(|n| {
                berth_registry::containers::normalize(berth_registry::containers::repository_of(n))
                    == repo
            })
        };
        let mut images: Vec<Image> = self
            .store
            .images()
            .ok()?
            .iter()
            .filter(|e| same_repo(e))
            .filter_map(|e| self.store.load_image(e).ok())
            .collect();
        for d in found {
            let Ok(bytes) = p.remote.manifest_by_digest(&d, artifact::MAX_BYTES) else {
                continue;
            };
            *read += bytes.len() as u64;
            let Ok(a) = artifact::parse(&bytes) else {
                continue;
            };
            if a.target != p.resolved.digest {
                continue;
            }
            let source = images.iter().position(|i| {
                i.config_digest == a.source_config
                    && i.diff_ids()
                        .is_ok_and(|ids| ids.iter().all(|id| self.store.has_layer(id)))
            });
            if let Some(s) = source {
                return Some((a, images.swap_remove(s)));
            }
        }
        None
    }
}

/// What `push_delta` published.
#[derive(Debug, serde::Serialize)]
pub struct DeltaPushed {
    /// The artifact's manifest digest (none when no layer was worth a delta).
    pub digest: Option<Digest>,
    /// Layers the artifact rebuilds, and the bytes of their deltas.
    pub layers: usize,
    pub bytes: u64,
    /// Those layers' own blobs' bytes, which a receiver no longer fetches.
    pub instead_of: u64,
    /// New layers without a delta (one would not be smaller).
    pub whole: usize,
}

impl Engine {
    /// Publish, beside image `new` pushed as `pushed` (its manifest bytes
    /// as the registry has them), an oci-delta artifact that rebuilds its
    /// new layers from stored image `old`'s files. The caller holds the
    /// shared lock.
    pub fn push_delta(
        &self,
        remote: &berth_registry::Remote,
        old: &str,
        new: &Image,
        pushed: &[u8],
        fe: &dyn Frontend,
    ) -> Result<DeltaPushed> {
        let old_img = self.store.load_image(&self.store.resolve(old)?)?;
        let old_ids = old_img.diff_ids()?;
        let new_ids = new.diff_ids()?;
        let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(pushed)?;
        let mut files = ImageFiles::new(&self.store, &old_img)?;
        let mut layers = Vec::new();
        let mut out = DeltaPushed {
            digest: None,
            layers: 0,
            bytes: 0,
            instead_of: 0,
            whole: 0,
        };
        let bar = fe.progress("making deltas");
        let todo: Vec<_> = manifest
            .layers()
            .iter()
            .zip(&new_ids)
            .filter(|(_, id)| !old_ids.contains(id))
            .collect();
        bar.add_total(todo.iter().map(|(l, _)| l.size()).sum());
        for (l, id) in todo {
            let d = Digest::from_oci(l.digest())?;
            // The outer level matters for tar headers and new files; the
            // slowest levels only where a layer is small.
            let level = if l.size() < 16 << 20 { 19 } else { 10 };
            let made = berth_delta::layers::make(
                &self.store,
                &mut files,
                &d,
                id,
                l.size() * 9 / 10,
                level,
            )?;
            bar.advance(l.size());
            let Some(m) = made else {
                out.whole += 1;
                continue;
            };
            if !remote.blob_exists(&m.digest)? {
                remote.push_blob(&m.digest, &m.file.path)?;
            }
            out.layers += 1;
            out.bytes += m.size;
            out.instead_of += l.size();
            layers.push(artifact::DeltaLayer {
                to: d,
                blob: m.digest,
                size: m.size,
                tar_diff: true,
                media_type: artifact::TAR_DIFF.to_owned(),
            });
        }
        drop(bar);
        if layers.is_empty() {
            return Ok(out);
        }
        // The artifact's own blobs: its empty config, and the target's
        // manifest and config, which it embeds.
        remote.push_bytes(artifact::EMPTY_CONFIG)?;
        let target = remote.push_bytes(pushed)?;
        let config = Digest::from_oci(manifest.config().digest())?;
        if !remote.blob_exists(&config)? {
            remote.push_blob(&config, &self.store.blob_path(&config))?;
        }
        let bytes = artifact::build(
            &artifact::Sides {
                source: &old_img.entry.digest,
                source_config: &old_img.config_digest,
                target: (&target, pushed.len() as u64, artifact::MANIFEST),
                target_config: (
                    &config,
                    manifest.config().size(),
                    manifest.config().media_type().as_ref(),
                ),
            },
            &layers,
        );
        let digest = remote.push_manifest_by_digest(&bytes, artifact::MANIFEST)?;
        remote.add_referrer(
            &target,
            serde_json::json!({
                "mediaType": artifact::MANIFEST,
                "digest": digest.to_string(),
                "size": bytes.len(),
                "artifactType": artifact::ARTIFACT_TYPE,
            }),
        )?;
        out.digest = Some(digest);
        Ok(out)
    }
}

impl Engine {
    /// Layer bytes a pull of `p` would download: a missing layer the
    /// registry has a smaller delta of, from an image the store holds,
    /// counts as that delta.
    pub(crate) fn download_estimate(&self, p: &PullPlan) -> u64 {
        if p.missing.is_empty() || std::env::var_os("BERTH_NO_DELTAS").is_some() {
            return p.bytes();
        }
        let Some((a, _)) = self.find_delta(p, &mut 0) else {
            return p.bytes();
        };
        p.missing
            .iter()
            .map(|(d, size)| {
                a.layers
                    .iter()
                    .find(|l| l.to == *d && l.tar_diff && l.size < *size)
                    .map_or(*size, |l| l.size)
            })
            .sum()
    }
}
