//! `berth import`: OCI archives, OCI layout directories and Docker
//! archives, detected from their contents.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use crate::digest::{Digest, verify};
use crate::error::{Error, Result};
use crate::layer::{Compression, LayerDone, LayerJob, Limits, ingest};
use crate::progress::Progress;
use crate::reference::ImageName;
use crate::source::{Source, open_source};
use crate::store::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES,
    REF_NAME, Store, parse_json,
};
use crate::unpack::{UnpackOptions, UnpackReport};

pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    OciArchive,
    OciDir,
    DockerArchive,
    /// The containers/image `dir:` transport (`podman save --format
    /// docker-dir` or `oci-dir`, `skopeo copy ... dir:`): `manifest.json`
    /// (one image manifest), `version`, and blobs named by their hex digest.
    Dir,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::OciArchive => "OCI archive",
            Format::OciDir => "OCI layout directory",
            Format::DockerArchive => "Docker archive",
            Format::Dir => "image directory (dir: transport)",
        })
    }
}

pub struct ImportOptions {
    /// Name to give the image, replacing names found in the input.
    pub tag: Option<ImageName>,
    pub limits: Limits,
    pub unpack: UnpackOptions,
    /// Layers processed at once.
    pub jobs: usize,
    /// Layer blobs (blob, diff-id) the caller rebuilt from deltas and
    /// put in the store as their checked content: the input may leave
    /// them out (`berth_delta::layers::rebuild`).
    pub rebuilt: Vec<(Digest, Digest)>,
}

#[derive(Debug, serde::Serialize)]
pub struct ImportedImage {
    pub id: String,
    pub digest: Digest,
    pub names: Vec<String>,
    pub layers: usize,
    pub layers_new: usize,
}

#[derive(Debug)]
pub struct ImportResult {
    pub format: Format,
    pub images: Vec<ImportedImage>,
    pub report: UnpackReport,
}

/// A layer as the input describes it.
struct SrcLayer {
    path: String,
    expected: Option<(Digest, u64)>,
    diff_id: Digest,
    size_hint: u64,
    /// The compression its media type declares (OCI sources).
    declared: Option<Compression>,
    /// Its media type, as the manifest says (OCI sources).
    media_type: String,
}

/// One image found in the input, before its layers are stored.
struct Planned {
    names: Vec<ImageName>,
    config_bytes: Vec<u8>,
    /// OCI: the verified manifest bytes. Docker: built after the layers.
    manifest: Option<(Vec<u8>, Descriptor)>,
    layers: Vec<SrcLayer>,
    /// `org.opencontainers.image.base.{name,digest}` from the manifest.
    base: (Option<String>, Option<String>),
}

pub fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportResult> {
    let source = open_source(path, &store.tmp_dir())?;
    let (format, mut planned) = if source.exists("oci-layout") && source.exists("index.json") {
        let f = if path.is_dir() {
            Format::OciDir
        } else {
            Format::OciArchive
        };
        (f, plan_oci(source.as_ref(), progress)?)
    } else if source.exists("manifest.json") && source.exists("version") {
        (Format::Dir, plan_dir(source.as_ref())?)
    } else if source.exists("manifest.json") {
        (
            Format::DockerArchive,
            plan_docker(source.as_ref(), progress)?,
        )
    } else {
        return Err(Error::Unsupported(format!(
            "{} is not an OCI archive, OCI layout directory, Docker archive or `dir:` directory (no oci-layout or manifest.json)",
            path.display()
        )));
    };
    if planned.is_empty() {
        return Err(Error::Unsupported(format!(
            "{} holds no image for this platform",
            path.display()
        )));
    }
    if let Some(tag) = &opts.tag {
        if planned.len() > 1 {
            return Err(Error::Conflict(format!(
                "{} holds {} images; --tag can name only one",
                path.display(),
                planned.len()
            )));
        }
        planned[0].names = vec![tag.clone()];
    }

    // One job per distinct layer; work already in the store is skipped.
    // A layer whose content the store holds already keeps no second blob
    // when another blob of it is stored (a runtime layer that another tool
    // recompressed) or the input leaves it out (a thin bundle): its blob
    // is elided, the manifest kept as it is (see `elide_layers`). A blob
    // counts as a layer's only once berth has read it as that layer: a
    // stored blob named with another image's diff-id is read again.
    let mut jobs: Vec<(JobSource, LayerJob)> = Vec::new();
    let mut seen = HashSet::new();
    let mut unpacking = HashSet::new();
    for p in &planned {
        for l in &p.layers {
            let blob = l.expected.as_ref().map(|(d, _)| d.clone());
            if !seen.insert((
                l.diff_id.clone(),
                blob.clone().unwrap_or_else(|| l.diff_id.clone()),
            )) {
                continue;
            }
            let before = store.has_layer(&l.diff_id);
            // One job unpacks a layer; others of the same content only
            // store or check their blob.
            let unpack = !before && unpacking.insert(l.diff_id.clone());
            let here = source.exists(&l.path);
            let (known, in_store) = match &blob {
                Some(d) => (store.holds_layer_blob(d, &l.diff_id), store.has_blob(d)),
                None => (false, false),
            };
            // A layer that can no longer re-create its blob (its tar record
            // was damaged and removed) gets it back from an input that has it.
            let restore = here
                && !in_store
                && blob
                    .as_ref()
                    .and_then(|d| store.elided(d))
                    .is_some_and(|e| e.diff_id == l.diff_id && !store.can_send(&e));
            let write_blob = match &blob {
                Some(_) if restore => true,
                Some(_) if known || in_store => false,
                // Content there, blob absent: a thin bundle (checked
                // below), or another compression of a stored blob.
                // Or the layer re-creates its blob (crate::tarsplit).
                Some(_)
                    if before
                        && (!here
                            || (store.has_split(&l.diff_id) && !crate::store::keep_blobs())
                            || store.blob_for_layer(&l.diff_id)?.is_some()) =>
                {
                    false
                }
                _ => true,
            };
            // Read once to check it is what its diff-id says: an elided
            // blob the input carries, or a stored one not yet known as
            // this layer.
            let check = blob.is_some() && !known && !write_blob && !unpack && (here || in_store);
            if !unpack && !write_blob && !check {
                continue;
            }
            let from = match &blob {
                Some(d) if !here && in_store => JobSource::Store(d.clone()),
                _ => JobSource::Input(l.path.clone()),
            };
            progress.add_total(l.size_hint);
            let name = l
                .expected
                .as_ref()
                .map_or(l.path.clone(), |(d, _)| d.short().to_owned());
            jobs.push((
                from,
                LayerJob {
                    name,
                    expected: l.expected.clone(),
                    diff_id: l.diff_id.clone(),
                    declared: l.declared,
                    write_blob,
                    unpack,
                },
            ));
        }
    }
    // An input may leave blobs out (a thin bundle, a pull over what the
    // store has) only for the bottom layers that are, in order, the bottom
    // layers of a runtime in the store, and for layers an earlier version
    // of the same app has (read and recorded as those layers). Naming a
    // digest or a diff-id is not enough to get another image's layer into
    // a sandbox. Otherwise say which runtime is missing, before any work.
    for p in &planned {
        let absent: Vec<usize> = p
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.expected.is_some() && !source.exists(&l.path))
            .map(|(i, _)| i)
            .collect();
        if absent.is_empty() {
            continue;
        }
        let ids: Vec<Digest> = p.layers.iter().map(|l| l.diff_id.clone()).collect();
        let base = crate::base::stored_base_run(store, &ids)?;
        let shared = crate::base::runtime_layers(store)?;
        let lent = match crate::base::app_id_of_config_bytes(&p.config_bytes) {
            Some(id) => crate::base::same_app_blobs(store, &id)?,
            None => Vec::new(),
        };
        let allowed = |i: usize| {
            let l = &p.layers[i];
            i < base
                || shared.contains(&l.diff_id)
                || l.expected.as_ref().is_some_and(|(d, _)| {
                    lent.iter().any(|(b, id)| b == d && *id == l.diff_id)
                        || (opts.rebuilt.contains(&(d.clone(), l.diff_id.clone()))
                            && store.has_layer(&l.diff_id)
                            && store.elided(d).is_some_and(|e| e.diff_id == l.diff_id))
                })
        };
        if !absent.iter().all(|&i| allowed(i)) {
            return Err(Error::MissingBase {
                missing: absent.len(),
                base_name: p.base.0.clone(),
                base_digest: p.base.1.clone(),
            });
        }
    }
    let needed: u64 = planned
        .iter()
        .flat_map(|p| &p.layers)
        .filter(|l| jobs.iter().any(|(from, _)| from.is(&l.path)))
        .map(|l| l.size_hint)
        .sum();
    let done = run_jobs(store, source.as_ref(), &jobs, opts, progress)
        .map_err(|e| no_space(store, e, needed))?;
    let new_layers: HashSet<&Digest> = jobs
        .iter()
        .filter(|(_, j)| j.unpack)
        .map(|(_, j)| &j.diff_id)
        .collect();
    let mut by_diff: HashMap<Digest, &LayerDone> = HashMap::new();
    let mut report = UnpackReport::default();
    for ((_, job), d) in jobs.iter().zip(&done) {
        by_diff.insert(job.diff_id.clone(), d);
        report.merge(d.report.clone());
    }

    // What the jobs read is now known: each blob is its layer's content.
    let mut verified = HashSet::new();
    for (_, job) in &jobs {
        if let Some((d, _)) = &job.expected {
            if store.has_blob(d) {
                store.record_blob(d, &job.diff_id)?;
            }
            verified.insert(d.clone());
        }
    }
    elide_layers(store, &planned, &verified)?;
    // A Docker archive's layer blob, named by the manifest made below,
    // that its layer re-creates instead of the store keeping it.
    for ((_, job), d) in jobs.iter().zip(&done) {
        if job.expected.is_none()
            && job.write_blob
            && !store.has_blob(&d.digest)
            && store.has_split(&job.diff_id)
        {
            store.elide_blob(
                &d.digest,
                &crate::store::ElidedBlob {
                    diff_id: job.diff_id.clone(),
                    same_as: None,
                    verified: true,
                    elided: true,
                },
            )?;
        }
    }

    let mut images = Vec::new();
    let (mut named, mut unnamed) = (Vec::new(), Vec::new());
    for p in planned {
        let config_digest = store.put_blob_bytes(&p.config_bytes)?;
        let (manifest_bytes, desc) = match p.manifest {
            Some(m) => m,
            None => docker_manifest(store, &p, &config_digest, &by_diff)?,
        };
        let digest = store.put_blob_bytes(&manifest_bytes)?;
        if p.names.is_empty() {
            unnamed.push(desc.clone());
        }
        for n in &p.names {
            named.push((n.clone(), desc.clone()));
        }
        let mut names: Vec<String> = p.names.iter().map(ToString::to_string).collect();
        names.sort();
        names.dedup();
        images.push(ImportedImage {
            id: digest.short().to_owned(),
            digest,
            names,
            layers: p.layers.len(),
            layers_new: p
                .layers
                .iter()
                .filter(|l| new_layers.contains(&l.diff_id))
                .count(),
        });
    }
    // One rewrite of index.json for the whole import.
    store.set_names(&named, &unnamed)?;
    Ok(ImportResult {
        format,
        images,
        report,
    })
}

/// Every layer blob of `planned` that the store did not write (its
/// content was there already, or another blob of the same layer in this
/// import was written) is recorded as elided, with a stored blob of the
/// same layer to stand in for it when the image leaves the store.
fn elide_layers(store: &Store, planned: &[Planned], verified: &HashSet<Digest>) -> Result<()> {
    let all: Vec<&SrcLayer> = planned.iter().flat_map(|p| &p.layers).collect();
    for l in &all {
        let Some((d, _)) = &l.expected else { continue };
        if store.has_blob(d) || store.holds_layer_blob(d, &l.diff_id) {
            continue;
        }
        // A record made for another image's claim, never read, is not
        // replaced by an unread one; a read one replaces it.
        if !verified.contains(d) && store.blob_record(d).is_some() {
            continue;
        }
        if !store.has_layer(&l.diff_id) {
            return Err(Error::Conflict(format!(
                "layer {} ({d}) was neither stored nor unpacked",
                l.diff_id
            )));
        }
        let here = all.iter().find_map(|o| match &o.expected {
            Some((od, size)) if o.diff_id == l.diff_id && store.has_blob(od) => {
                Some((od.clone(), *size, o.media_type.clone()))
            }
            _ => None,
        });
        let same = match here {
            Some(s) => Some(s),
            None => store.blob_for_layer(&l.diff_id)?,
        };
        store.elide_blob(
            d,
            &crate::store::ElidedBlob {
                diff_id: l.diff_id.clone(),
                same_as: same.map(|(digest, size, media_type)| crate::store::SameLayer {
                    digest,
                    size,
                    media_type,
                }),
                verified: verified.contains(d),
                elided: true,
            },
        )?;
    }
    Ok(())
}

/// An ENOSPC anywhere in `e` becomes an error that says how much is needed
/// and free, and what to do.
fn no_space(store: &Store, e: Error, needed: u64) -> Error {
    if !e.is_no_space() {
        return e;
    }
    let free = rustix::fs::statvfs(store.root())
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    Error::NoSpace {
        store: store.root().display().to_string(),
        needed,
        free,
    }
}

/// Run layer jobs on `opts.jobs` threads; the first error stops the rest.
/// Where a layer job reads its blob: the input, or a blob the store has
/// (checked again as the layer an image now says it is).
enum JobSource {
    Input(String),
    Store(Digest),
}

impl JobSource {
    fn is(&self, path: &str) -> bool {
        matches!(self, JobSource::Input(p) if p == path)
    }
}

fn run_jobs(
    store: &Store,
    source: &dyn Source,
    jobs: &[(JobSource, LayerJob)],
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Vec<LayerDone>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<LayerDone>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let workers = opts.jobs.clamp(1, 8).min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((from, job)) = jobs.get(i) else {
                        return;
                    };
                    let r = match from {
                        JobSource::Input(path) => source.open(path).and_then(|(mut rd, _)| {
                            ingest(store, &mut *rd, job, &opts.unpack, &opts.limits, progress)
                        }),
                        JobSource::Store(d) => std::fs::File::open(store.blob_path(d))
                            .map_err(|e| Error::Io {
                                context: format!("opening blob {d}"),
                                source: e,
                            })
                            .and_then(|mut f| {
                                ingest(store, &mut f, job, &opts.unpack, &opts.limits, progress)
                            }),
                    };
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    if let Ok(mut g) = results.lock() {
                        g[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::Conflict("a layer worker panicked".into()))?;
    let mut out = Vec::with_capacity(jobs.len());
    // Report the first failure in input order; a skipped job means one failed.
    let mut first_err = None;
    for r in results {
        match r {
            Some(Ok(d)) => out.push(d),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None if out.len() == jobs.len() => Ok(out),
        None => Err(Error::Conflict(
            "a layer worker stopped unexpectedly".into(),
        )),
    }
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        a => a,
    }
}

fn platform_matches(d: &Descriptor) -> bool {
    d.platform().as_ref().is_none_or(|p| {
        p.os().to_string() == "linux" && p.architecture().to_string() == host_arch()
    })
}

fn media_type_str(m: &MediaType) -> String {
    m.to_string()
}

fn is_manifest_type(m: &str) -> bool {
    m == MediaType::ImageManifest.to_string() || m == DOCKER_MANIFEST
}

fn is_index_type(m: &str) -> bool {
    m == MediaType::ImageIndex.to_string() || m == DOCKER_MANIFEST_LIST
}

/// Read a blob named by a descriptor from an OCI source and verify it.
fn read_verified(
    source: &dyn Source,
    d: &Descriptor,
    limit: u64,
    what: &str,
) -> Result<(Digest, Vec<u8>)> {
    let digest = Digest::from_oci(d.digest())?;
    if d.size() > limit {
        return Err(Error::invalid(
            what,
            format!("{} bytes is over the {limit}-byte limit", d.size()),
        ));
    }
    let bytes = source.read_small(&format!("blobs/sha256/{}", digest.hex()), limit)?;
    verify(
        what,
        &digest,
        d.size(),
        &Digest::of(&bytes),
        bytes.len() as u64,
    )?;
    Ok((digest, bytes))
}

/// A name from an OCI index annotation. A bare tag (`latest`, as skopeo's
/// `oci-archive:FILE:TAG` writes) is not a name on its own.
fn name_from_annotations(d: &Descriptor, progress: &dyn Progress) -> Vec<ImageName> {
    let Some(a) = d.annotations() else {
        return vec![];
    };
    let cand = a.get("io.containerd.image.name").or_else(|| {
        a.get(REF_NAME)
            .filter(|n| n.contains(':') || n.contains('/'))
    });
    // `flatpak build-bundle --oci` names the image by its Flatpak ref,
    // `KIND/ID/ARCH/BRANCH`: a name to type is `flatpak/KIND/ID:BRANCH`
    // (`BRANCH-ARCH` for another machine's), so an app never takes its
    // runtime's name, nor one architecture another's.
    let flatpak = cand.and_then(|n| {
        let p: Vec<&str> = n.split('/').collect();
        match p.as_slice() {
            [kind @ ("app" | "runtime"), id, arch, branch] => {
                let host = match std::env::consts::ARCH {
                    "x86" => "i386",
                    a => a,
                };
                let tag = if *arch == host {
                    (*branch).to_owned()
                } else {
                    format!("{branch}-{arch}")
                };
                Some(format!("flatpak/{kind}/{}:{tag}", id.to_ascii_lowercase()))
            }
            _ => None,
        }
    });
    let cand = flatpak.as_ref().or(cand);
    match cand.map(|n| ImageName::parse(n.strip_prefix("docker.io/library/").unwrap_or(n))) {
        Some(Ok(n)) => vec![n],
        Some(Err(e)) => {
            progress.note(&format!("warning: ignoring the archive's image name: {e}"));
            vec![]
        }
        None => vec![],
    }
}

fn plan_oci(source: &dyn Source, progress: &dyn Progress) -> Result<Vec<Planned>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let layout: Layout = parse_json(&source.read_small("oci-layout", 4096)?, "oci-layout")?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(Error::Unsupported(format!(
            "OCI layout version {}",
            layout.image_layout_version
        )));
    }
    let index: ImageIndex = parse_json(
        &source.read_small("index.json", MAX_MANIFEST_BYTES)?,
        "index.json",
    )?;
    let mut manifests: Vec<(Descriptor, Vec<ImageName>)> = Vec::new();
    for d in index.manifests() {
        let mt = media_type_str(d.media_type());
        let names = name_from_annotations(d, progress);
        if is_index_type(&mt) {
            let (_, bytes) = read_verified(source, d, MAX_MANIFEST_BYTES, "nested image index")?;
            let nested: ImageIndex = parse_json(&bytes, "nested image index")?;
            match nested
                .manifests()
                .iter()
                .find(|m| is_manifest_type(&media_type_str(m.media_type())) && platform_matches(m))
            {
                Some(m) => add_manifest(&mut manifests, m.clone(), names),
                None => progress.note(&format!(
                    "skipping {}: no linux/{} image in it",
                    d.digest(),
                    host_arch()
                )),
            }
        } else if is_manifest_type(&mt) {
            if platform_matches(d) {
                add_manifest(&mut manifests, d.clone(), names);
            }
        } else {
            progress.note(&format!("skipping {} of unsupported type {mt}", d.digest()));
        }
    }
    let mut out = Vec::new();
    for (d, names) in manifests {
        let (digest, bytes) = read_verified(source, &d, MAX_MANIFEST_BYTES, "image manifest")?;
        let manifest: ImageManifest = parse_json(&bytes, &format!("manifest {digest}"))?;
        let cmt = media_type_str(manifest.config().media_type());
        if cmt != MediaType::ImageConfig.to_string() && cmt != DOCKER_CONFIG {
            return Err(Error::Unsupported(format!(
                "manifest {digest} is not an image (config type {cmt})"
            )));
        }
        let (_, config_bytes) =
            read_verified(source, manifest.config(), MAX_CONFIG_BYTES, "image config")?;
        let layers = manifest_layers(&manifest, &config_bytes, |d| {
            format!("blobs/sha256/{}", d.hex())
        })?;
        let mut desc = Descriptor::new(
            MediaType::ImageManifest,
            bytes.len() as u64,
            digest.to_oci(),
        );
        desc.set_media_type(d.media_type().clone());
        let ann = manifest.annotations().clone().unwrap_or_default();
        out.push(Planned {
            names,
            config_bytes,
            manifest: Some((bytes, desc)),
            layers,
            base: (ann.get(BASE_NAME).cloned(), ann.get(BASE_DIGEST).cloned()),
        });
    }
    Ok(out)
}

/// The `dir:` transport: one manifest (Docker v2 schema 2 or OCI) in
/// `manifest.json`, each blob a file named by its hex digest.
fn plan_dir(source: &dyn Source) -> Result<Vec<Planned>> {
    let version = source.read_small("version", 4096)?;
    let version = String::from_utf8_lossy(&version);
    if !version.starts_with("Directory Transport Version: 1.") {
        return Err(Error::Unsupported(format!(
            "image directory version {:?}",
            version.trim()
        )));
    }
    let bytes = source.read_small("manifest.json", MAX_MANIFEST_BYTES)?;
    let manifest: ImageManifest = parse_json(&bytes, "manifest.json")?;
    let digest = Digest::of(&bytes);
    let cmt = media_type_str(manifest.config().media_type());
    if cmt != MediaType::ImageConfig.to_string() && cmt != DOCKER_CONFIG {
        return Err(Error::Unsupported(format!(
            "manifest.json is not an image (config type {cmt})"
        )));
    }
    let config = manifest.config();
    if config.size() > MAX_CONFIG_BYTES {
        return Err(Error::invalid(
            "image config",
            format!("{} bytes is over the limit", config.size()),
        ));
    }
    let config_digest = Digest::from_oci(config.digest())?;
    let config_bytes = source.read_small(config_digest.hex(), MAX_CONFIG_BYTES)?;
    verify(
        "image config",
        &config_digest,
        config.size(),
        &Digest::of(&config_bytes),
        config_bytes.len() as u64,
    )?;
    let layers = manifest_layers(&manifest, &config_bytes, |d| d.hex().to_owned())?;
    let mt = manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest);
    let desc = Descriptor::new(mt, bytes.len() as u64, digest.to_oci());
    let ann = manifest.annotations().clone().unwrap_or_default();
    Ok(vec![Planned {
        names: Vec::new(),
        config_bytes,
        manifest: Some((bytes, desc)),
        layers,
        base: (ann.get(BASE_NAME).cloned(), ann.get(BASE_DIGEST).cloned()),
    }])
}

/// A manifest's layers with their diff-ids from the config; `path` says
/// where the source keeps a blob.
fn manifest_layers(
    manifest: &ImageManifest,
    config_bytes: &[u8],
    path: impl Fn(&Digest) -> String,
) -> Result<Vec<SrcLayer>> {
    let diff_ids = parse_config(config_bytes, manifest.layers().len())?;
    let mut layers = Vec::new();
    for (l, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let mt = media_type_str(l.media_type());
        check_layer_type(&mt)?;
        let ld = Digest::from_oci(l.digest())?;
        layers.push(SrcLayer {
            path: path(&ld),
            expected: Some((ld, l.size())),
            diff_id,
            size_hint: l.size(),
            declared: Some(Compression::declared_by(&mt)),
            media_type: mt,
        });
    }
    Ok(layers)
}

/// One entry per manifest: an index may name the same one many times.
fn add_manifest(
    manifests: &mut Vec<(Descriptor, Vec<ImageName>)>,
    d: Descriptor,
    names: Vec<ImageName>,
) {
    match manifests.iter_mut().find(|(m, _)| m.digest() == d.digest()) {
        Some((_, n)) => n.extend(names),
        None => manifests.push((d, names)),
    }
}

fn check_layer_type(mt: &str) -> Result<()> {
    let ok = mt.starts_with("application/vnd.oci.image.layer.")
        || mt.starts_with("application/vnd.docker.image.rootfs.");
    if ok {
        Ok(())
    } else {
        Err(Error::Unsupported(format!("layer media type {mt}")))
    }
}

/// Parse a config and return its diff-ids, checking they match the layers.
fn parse_config(bytes: &[u8], layer_count: usize) -> Result<Vec<Digest>> {
    let config: ImageConfiguration = parse_json(bytes, "image config")?;
    if config.rootfs().typ() != "layers" {
        return Err(Error::invalid(
            "image config",
            format!("rootfs type {:?}", config.rootfs().typ()),
        ));
    }
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<_>>()?;
    if diff_ids.len() != layer_count {
        return Err(Error::invalid(
            "image",
            format!(
                "{} layers but the config lists {} diff_ids",
                layer_count,
                diff_ids.len()
            ),
        ));
    }
    Ok(diff_ids)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn plan_docker(source: &dyn Source, progress: &dyn Progress) -> Result<Vec<Planned>> {
    let entries: Vec<DockerManifestEntry> = parse_json(
        &source.read_small("manifest.json", MAX_MANIFEST_BYTES)?,
        "manifest.json",
    )?;
    let mut out = Vec::new();
    for e in entries {
        let config_bytes = source.read_small(&e.config, MAX_CONFIG_BYTES)?;
        // The file is named after its digest; check it when it says so.
        let stem = Path::new(&e.config)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        let stem = stem.strip_suffix(".json").unwrap_or(stem);
        if let Some(named) = Digest::from_hex(stem) {
            let got = Digest::of(&config_bytes);
            if got != named {
                return Err(Error::DigestMismatch {
                    what: format!("config {}", e.config),
                    expected: named.to_string(),
                    actual: got.to_string(),
                });
            }
        }
        let diff_ids = parse_config(&config_bytes, e.layers.len())?;
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(diff_ids) {
            let (_, size) = source.open(path)?;
            layers.push(SrcLayer {
                path: path.clone(),
                expected: None,
                diff_id,
                size_hint: size,
                declared: None,
                media_type: String::new(),
            });
        }
        let mut names = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            match ImageName::parse(t.strip_prefix("docker.io/library/").unwrap_or(&t)) {
                Ok(n) => names.push(n),
                Err(err) => progress.note(&format!("warning: ignoring tag {t:?}: {err}")),
            }
        }
        out.push(Planned {
            names,
            config_bytes,
            manifest: None,
            layers,
            base: (None, None),
        });
    }
    Ok(out)
}

/// Build an OCI manifest for a Docker-archive image from its stored layers.
fn docker_manifest(
    store: &Store,
    p: &Planned,
    config_digest: &Digest,
    by_diff: &HashMap<Digest, &LayerDone>,
) -> Result<(Vec<u8>, Descriptor)> {
    let mut layers = Vec::new();
    for l in &p.layers {
        let (digest, size, comp) = match by_diff.get(&l.diff_id) {
            Some(d) => (d.digest.clone(), d.size, d.compression),
            // Already in the store from an earlier import: the stored blob
            // is the uncompressed tar, whose digest is the diff-id.
            None if store.has_blob(&l.diff_id) => {
                let size = std::fs::metadata(store.blob_path(&l.diff_id))
                    .map(|m| m.len())
                    .unwrap_or(0);
                (l.diff_id.clone(), size, Compression::None)
            }
            None => return Err(Error::Conflict(format!("layer {} was not stored", l.path))),
        };
        layers.push(serde_json::json!({
            "mediaType": comp.oci_media_type(),
            "digest": digest.to_string(),
            "size": size,
        }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaType::ImageManifest.to_string(),
        "config": {
            "mediaType": MediaType::ImageConfig.to_string(),
            "digest": config_digest.to_string(),
            "size": p.config_bytes.len(),
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::BadJson {
        what: "generated manifest".into(),
        source,
    })?;
    let d = Descriptor::new(
        MediaType::ImageManifest,
        bytes.len() as u64,
        Digest::of(&bytes).to_oci(),
    );
    Ok((bytes, d))
}
