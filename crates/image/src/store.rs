//! The content-addressed store: a valid OCI image layout plus the layer
//! cache (`layers/<diff-id hex>/`). See docs/on-disk-format.md.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::digest::{Digest, HashingWriter, verify};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{fsync_dir, remove_tree, unique_name, write_atomic};
use crate::lock::{self, LockGuard, LockKind};
use crate::reference::ImageName;

/// The annotation that carries an image's name in index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Largest manifest or index we read (they are small JSON documents).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config we read.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// `BERTH_KEEP_BLOBS=1`: keep every layer blob as it came, even when its
/// layer can re-create it (byte-for-byte exports and pushes of images
/// from other tools, at the cost of the disk the blobs take).
pub fn keep_blobs() -> bool {
    std::env::var_os("BERTH_KEEP_BLOBS").is_some_and(|v| v == "1")
}

/// The store's format: `2` since layers have content records.
const FORMAT_FILE: &str = "berth-store";
const FORMAT: &str = "2";

pub struct Store {
    root: PathBuf,
}

/// A layer blob held only as content (`elided/<hex>`): its layer, and the
/// stored blob of the same layer that stands in for it when the image
/// leaves the store (export, push), if there is one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ElidedBlob {
    pub diff_id: Digest,
    pub same_as: Option<SameLayer>,
    /// berth read this blob and it is `diff_id`'s content. A blob a thin
    /// bundle or a pull left out was never read: its record serves the
    /// image that named it, and no other image may lean on it.
    #[serde(default)]
    pub verified: bool,
    /// The blob is not kept (its content is); false: a record of a
    /// stored blob, which a missing file makes missing.
    #[serde(default)]
    pub elided: bool,
}

/// Another blob of the same layer, as a manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SameLayer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// One image as the store knows it: a manifest and the names pointing at it.
#[derive(Clone, Debug)]
pub struct ImageEntry {
    pub digest: Digest,
    pub size: u64,
    pub names: Vec<String>,
}

/// A loaded image: its parsed manifest and config.
pub struct Image {
    pub entry: ImageEntry,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub config_digest: Digest,
}

/// The labels of an image config, sorted.
pub fn config_labels(
    c: &oci_spec::image::ImageConfiguration,
) -> std::collections::BTreeMap<String, String> {
    c.config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

impl Image {
    /// The config's labels, sorted.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        config_labels(&self.config)
    }

    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect()
    }

    /// Why this image cannot run here (another OS or CPU), if it cannot.
    pub fn platform_mismatch(&self) -> Option<String> {
        let os = self.config.os().to_string();
        let arch = self.config.architecture().to_string();
        let here = crate::import::host_arch();
        (os != "linux" || arch != here)
            .then(|| format!("the image is built for {os}/{arch}; this machine runs linux/{here}"))
    }

    pub fn layer_digests(&self) -> Result<Vec<Digest>> {
        self.manifest
            .layers()
            .iter()
            .map(|l| Digest::from_oci(l.digest()))
            .collect()
    }
}

impl Store {
    /// Where state lives: `$BERTH_HOME`, else `$XDG_DATA_HOME/berth`, else
    /// `~/.local/share/berth`; root uses `/var/lib/berth`.
    pub fn default_root() -> PathBuf {
        if let Some(h) = std::env::var_os("BERTH_HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(h);
        }
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/berth");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("berth");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
        PathBuf::from(home).join(".local/share/berth")
    }

    /// Open (creating if needed) a store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for d in ["blobs/sha256", "layers", "tmp", "locks"] {
            let p = root.join(d);
            fs::create_dir_all(&p).ctx(|| format!("creating store directory {}", p.display()))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(
                &store.tmp_dir(),
                &layout,
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let _g = store.index_lock()?;
            if !index.exists() {
                store.write_index(&new_index(Vec::new()))?;
                write_atomic(&store.tmp_dir(), &root.join(FORMAT_FILE), FORMAT.as_bytes())?;
            }
        }
        if !fs::read_to_string(root.join(FORMAT_FILE)).is_ok_and(|v| v.trim() == FORMAT) {
            store.upgrade()?;
        }
        // What killed imports and removals left behind; only when no
        // other berth process holds the store lock (a writer in another
        // pid namespace would look dead).
        if let Ok(Some(_g)) = store.try_lock_exclusive() {
            store.clean_stale_tmp();
        }
        Ok(store)
    }

    /// A store made before layers had content records: give each layer its
    /// record once, as it is now (there is no earlier truth to compare it
    /// with), under the exclusive lock. Busy or read-only: later.
    fn upgrade(&self) -> Result<()> {
        let Ok(Some(_g)) = self.try_lock_exclusive() else {
            return Ok(());
        };
        let Ok(rd) = fs::read_dir(self.layers_dir()) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(d) = Digest::from_hex(&name) else {
                continue;
            };
            if !e.path().is_dir() || self.layer_record_path(&d).exists() {
                continue;
            }
            // One that cannot be read stays unrecorded: fsck reports it
            // and --repair re-creates it.
            let Ok(fd) = rustix::fs::open(
                e.path(),
                rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) else {
                continue;
            };
            let Ok(record) = crate::content::record(std::os::fd::AsFd::as_fd(&fd)) else {
                continue;
            };
            if write_atomic(
                &self.tmp_dir(),
                &self.layer_record_path(&d),
                record.as_bytes(),
            )
            .is_err()
            {
                return Ok(());
            }
        }
        // Once only: after this, a tree without a record is one an
        // interrupted import or removal left, never to be trusted.
        let _ = write_atomic(
            &self.tmp_dir(),
            &self.root.join(FORMAT_FILE),
            FORMAT.as_bytes(),
        );
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Layer blobs the store does not keep because it holds their
    /// content already: another compression of the same layer (same
    /// diff-id), e.g. a runtime layer that buildah or podman recompressed.
    pub fn elided_dir(&self) -> PathBuf {
        self.root.join("elided")
    }

    fn elided_path(&self, blob: &Digest) -> PathBuf {
        self.elided_dir().join(blob.hex())
    }

    /// The record of a layer blob the store holds only as content, if
    /// `blob` is one.
    pub fn elided(&self, blob: &Digest) -> Option<ElidedBlob> {
        self.blob_record(blob).filter(|e| e.elided)
    }

    /// What the store knows of layer blob `blob`: its record, elided or
    /// stored.
    pub fn blob_record(&self, blob: &Digest) -> Option<ElidedBlob> {
        let bytes = fs::read(self.elided_path(blob)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Is layer blob `blob` known, from having been read, to be `diff_id`'s
    /// content, and is that content here? A stored blob counts once its
    /// record says so (written when it was verified); an elided one when
    /// its record is verified and its layer unpacked. Naming a blob the
    /// store has, with another image's diff-id, is not enough.
    pub fn holds_layer_blob(&self, blob: &Digest, diff_id: &Digest) -> bool {
        self.blob_record(blob).is_some_and(|e| {
            e.verified
                && e.diff_id == *diff_id
                && (self.has_blob(blob)
                    || (e.elided
                        && self.has_layer(diff_id)
                        && e.same_as.is_none_or(|s| self.has_blob(&s.digest))))
        })
    }

    /// Record that stored blob `blob` was read and is `diff_id`'s content.
    pub fn record_blob(&self, blob: &Digest, diff_id: &Digest) -> Result<()> {
        if self
            .blob_record(blob)
            .is_some_and(|e| e.verified && e.diff_id == *diff_id && !e.elided)
        {
            return Ok(());
        }
        self.write_record(
            blob,
            &ElidedBlob {
                diff_id: diff_id.clone(),
                same_as: None,
                verified: true,
                elided: false,
            },
        )
    }

    fn write_record(&self, blob: &Digest, rec: &ElidedBlob) -> Result<()> {
        let dir = self.elided_dir();
        fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let bytes = serde_json::to_vec(rec).map_err(|source| Error::BadJson {
            what: "a layer blob's record".into(),
            source,
        })?;
        write_atomic(&self.tmp_dir(), &self.elided_path(blob), &bytes)
    }

    /// Record that layer blob `blob` is held as its unpacked content
    /// (`rec.diff_id`, which must be complete in the store).
    pub fn elide_blob(&self, blob: &Digest, rec: &ElidedBlob) -> Result<()> {
        if !self.has_layer(&rec.diff_id) {
            return Err(Error::Conflict(format!(
                "layer {} is not in the store, so blob {blob} cannot be left out",
                rec.diff_id
            )));
        }
        self.write_record(blob, rec)
    }

    /// A stored layer blob whose content is `diff_id`: its digest, size
    /// and media type, found through the images in index.json.
    pub fn blob_for_layer(&self, diff_id: &Digest) -> Result<Option<(Digest, u64, String)>> {
        for e in self.images()? {
            let Ok(img) = self.load_image(&e) else {
                continue;
            };
            let Ok(ids) = img.diff_ids() else { continue };
            for (id, l) in ids.iter().zip(img.manifest.layers()) {
                if id != diff_id {
                    continue;
                }
                let d = Digest::from_oci(l.digest())?;
                if self.has_blob(&d) {
                    return Ok(Some((d, l.size(), l.media_type().to_string())));
                }
                // An elided blob's stand-in is a stored blob of it too.
                if let Some(same) = self
                    .elided(&d)
                    .filter(|e| e.diff_id == *diff_id)
                    .and_then(|e| e.same_as)
                    .filter(|s| self.has_blob(&s.digest))
                {
                    return Ok(Some((same.digest, same.size, same.media_type)));
                }
            }
        }
        Ok(None)
    }

    /// The layer's content record, which is also its completion marker:
    /// written after the tree is in place, removed before it is touched.
    pub fn layer_record_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(format!("{}.content", diff_id.hex()))
    }

    /// The layer's tar record (crate::tarsplit), when it has one.
    pub fn split_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir()
            .join(format!("{}.tar-split", diff_id.hex()))
    }

    /// Can the layer's exact tar be re-created from its tree and record?
    /// (Checked when the record was made; `fsck` checks it again.)
    pub fn has_split(&self, diff_id: &Digest) -> bool {
        self.split_path(diff_id).is_file() && self.has_layer(diff_id)
    }

    /// The exact uncompressed tar of layer `diff_id`, from its tree and
    /// record. The reader fails on a file that is not as recorded; the
    /// caller compares the digest.
    pub fn layer_tar(&self, diff_id: &Digest) -> Result<crate::tarsplit::Rebuilt> {
        if !self.has_split(diff_id) {
            return Err(Error::Conflict(format!(
                "layer {diff_id} has no tar record, so its blob cannot be re-created"
            )));
        }
        let tree = self.layer_path(diff_id);
        let fd = rustix::fs::open(
            &tree,
            rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .ctx(|| format!("opening {}", tree.display()))?;
        crate::tarsplit::Rebuilt::open(&self.split_path(diff_id), std::os::fd::AsFd::as_fd(&fd))
    }

    /// Does an elided blob's record leave a way to send the blob: a stored
    /// stand-in, or a layer that re-creates it?
    pub fn can_send(&self, e: &ElidedBlob) -> bool {
        e.same_as.as_ref().is_some_and(|s| self.has_blob(&s.digest)) || self.has_split(&e.diff_id)
    }

    /// An unpacked layer is there only when its tree and its record are.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_record_path(diff_id).is_file() && self.layer_path(diff_id).is_dir()
    }

    /// Put a verified, synced tree (in `tmp/`) in place as layer `diff_id`
    /// with its content record written last. Returns false if a complete
    /// copy was already there (ours is then discarded). An incomplete copy
    /// under the final name (an interrupted import or removal) is replaced.
    /// `split` is the layer's verified tar record, if there is one.
    pub fn install_layer(
        &self,
        diff_id: &Digest,
        tree: &Path,
        record: &str,
        split: Option<&Path>,
    ) -> Result<bool> {
        let _g = lock::lock(
            &self.root.join("locks/layers.lock"),
            LockKind::Exclusive,
            &|| {},
        )?;
        let split_dest = self.split_path(diff_id);
        if self.has_layer(diff_id) {
            // The same diff-id is the same tar: our record fits theirs.
            if let Some(s) = split.filter(|_| !split_dest.is_file()) {
                fs::rename(s, &split_dest)
                    .ctx(|| format!("moving the tar record into {}", split_dest.display()))?;
                fsync_dir(&self.layers_dir())?;
            }
            self.trash(tree)?;
            return Ok(false);
        }
        let dest = self.layer_path(diff_id);
        let rec = self.layer_record_path(diff_id);
        self.trash(&rec)?;
        self.trash(&split_dest)?;
        self.trash(&dest)?;
        fs::rename(tree, &dest).ctx(|| format!("moving layer into {}", dest.display()))?;
        if let Some(s) = split {
            fs::rename(s, &split_dest)
                .ctx(|| format!("moving the tar record into {}", split_dest.display()))?;
        }
        fsync_dir(&self.layers_dir())?;
        write_atomic(&self.tmp_dir(), &rec, record.as_bytes())?;
        Ok(true)
    }

    /// Remove an unpacked layer: unmark it first, so a crash at any point
    /// leaves either a complete layer or one that is known to be incomplete.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        self.trash(&self.layer_record_path(diff_id))?;
        fsync_dir(&self.layers_dir())?;
        self.trash(&self.split_path(diff_id))?;
        self.trash(&self.layer_path(diff_id))
    }

    /// Move `path` (file or tree) into `tmp/` with one rename, then delete
    /// it there. Whatever a crash leaves in `tmp/` is removed later
    /// (`clean_stale_tmp`); nothing half-deleted stays under a real name.
    pub fn trash(&self, path: &Path) -> Result<()> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let t = self.tmp_dir().join(unique_name("trash-"));
        match fs::rename(path, &t) {
            Ok(()) => remove_tree(&t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| format!("moving {} out of the store", path.display())),
        }
    }

    /// Pin an image's content for a running instance: `roots/<id>.json`
    /// names the manifest and layers, and stays locked (flock) while the
    /// returned `Pin` lives. gc, rmi and repair keep what live pins name,
    /// whatever environment they run in; a pin whose holder died is stale
    /// (its lock is free) and removed by the next gc.
    pub fn pin(&self, id: &str, manifest: &Digest, layers: &[Digest]) -> Result<Pin> {
        let dir = self.root.join("roots");
        fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let body = serde_json::json!({
            "manifest": manifest.to_string(),
            "layers": layers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        let name: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let path = dir.join(format!("{name}.json"));
        let body = body.to_string();
        // Locked before it gets the name gc looks for, so it is never
        // seen unlocked (stale) while its instance starts: an unnamed file
        // (O_TMPFILE), linked in once locked, costs one directory
        // operation per launch; a named temporary and a rename, two.
        if let Some(f) = pin_unnamed(&dir, &path, body.as_bytes()) {
            return Ok(Pin { _file: f, path });
        }
        let tmp = dir.join(format!("{name}.pinning"));
        let mut f = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        f.write_all(body.as_bytes())
            .ctx(|| format!("writing {}", tmp.display()))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .ctx(|| format!("locking {}", tmp.display()))?;
        fs::rename(&tmp, &path).ctx(|| format!("creating {}", path.display()))?;
        Ok(Pin { _file: f, path })
    }

    /// What live pins keep: manifests, and layers (named directly, so a
    /// damaged manifest cannot unprotect them). Stale pins are removed.
    pub fn pinned(&self) -> Result<(Vec<Digest>, std::collections::HashSet<Digest>)> {
        let dir = self.root.join("roots");
        let (mut manifests, mut layers) = (Vec::new(), std::collections::HashSet::new());
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok((manifests, layers));
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(f) = File::open(&p) else { continue };
            if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
                // Nobody holds it: its instance is gone.
                let _ = fs::remove_file(&p);
                continue;
            }
            let v: serde_json::Value = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| {
                    Error::Conflict(format!(
                        "the pin {} of a running app cannot be read; stop the app or remove the file",
                        p.display()
                    ))
                })?;
            if let Some(m) = v["manifest"].as_str().and_then(|m| Digest::parse(m).ok()) {
                manifests.push(m);
            }
            for l in v["layers"].as_array().into_iter().flatten() {
                if let Some(d) = l.as_str().and_then(|d| Digest::parse(d).ok()) {
                    layers.insert(d);
                }
            }
        }
        Ok((manifests, layers))
    }

    /// Remove what dead berth processes left in `tmp/`: every name there
    /// carries its writer's pid (`unique_name`). Best effort (a read-only
    /// store, another user's process): returns what was removed.
    pub fn clean_stale_tmp(&self) -> (usize, u64) {
        let (mut n, mut bytes) = (0, 0);
        let Ok(rd) = fs::read_dir(self.tmp_dir()) else {
            return (0, 0);
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(crate::fsutil::writer_pid) else {
                continue;
            };
            if crate::fsutil::pid_alive(pid) {
                continue;
            }
            let size = crate::fsutil::tree_size(&e.path());
            if remove_tree(&e.path()).is_ok() {
                n += 1;
                bytes += size;
            }
        }
        (n, bytes)
    }

    /// Shared store lock: held by every command except gc.
    pub fn lock_shared(&self, on_wait: &dyn Fn()) -> Result<LockGuard> {
        lock::lock(
            &self.root.join("locks/store.lock"),
            LockKind::Shared,
            on_wait,
        )
    }

    /// Exclusive store lock: gc only.
    pub fn lock_exclusive(&self, on_wait: &dyn Fn()) -> Result<LockGuard> {
        lock::lock(
            &self.root.join("locks/store.lock"),
            LockKind::Exclusive,
            on_wait,
        )
    }

    pub fn try_lock_exclusive(&self) -> Result<Option<LockGuard>> {
        lock::try_lock(&self.root.join("locks/store.lock"), LockKind::Exclusive)
    }

    fn index_lock(&self) -> Result<LockGuard> {
        lock::lock(
            &self.root.join("locks/index.lock"),
            LockKind::Exclusive,
            &|| {},
        )
    }

    /// Read a whole blob, checking its digest (and size limit).
    pub fn read_blob(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let f = File::open(&p).ctx(|| format!("opening blob {d}"))?;
        let mut buf = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut buf)
            .ctx(|| format!("reading blob {d}"))?;
        if buf.len() as u64 > limit {
            return Err(Error::invalid(
                format!("blob {d}"),
                format!("larger than {limit} bytes"),
            ));
        }
        let got = Digest::of(&buf);
        verify(
            &format!("blob {d}"),
            d,
            buf.len() as u64,
            &got,
            buf.len() as u64,
        )?;
        Ok(buf)
    }

    /// Store small bytes as a blob; returns its digest.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            write_atomic(&self.tmp_dir(), &self.blob_path(&d), bytes)?;
        }
        Ok(d)
    }

    /// Start writing a blob of unknown content; commit verifies it.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = self.tmp_dir().join(unique_name("blob-"));
        let f = File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
        Ok(BlobWriter {
            inner: Some(HashingWriter::new(io::BufWriter::with_capacity(1 << 20, f))),
            tmp,
            dest_dir: self.blobs_dir(),
        })
    }

    // ---- index.json ----

    pub fn read_index(&self) -> Result<ImageIndex> {
        let p = self.root.join("index.json");
        let bytes = fs::read(&p).ctx(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::BadJson {
            what: format!(
                "the store's image list {} (damaged or truncated; `berth fsck` checks the store)",
                p.display()
            ),
            source,
        })
    }

    fn write_index(&self, idx: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(idx).map_err(|source| Error::BadJson {
            what: "index.json".into(),
            source,
        })?;
        write_atomic(&self.tmp_dir(), &self.root.join("index.json"), &bytes)
    }

    /// Read-modify-write index.json under the index lock.
    pub fn update_index<R>(&self, f: impl FnOnce(&mut Vec<Descriptor>) -> Result<R>) -> Result<R> {
        let _g = self.index_lock()?;
        let mut idx = self.read_index()?;
        let mut manifests = idx.manifests().clone();
        let r = f(&mut manifests)?;
        idx.set_manifests(manifests);
        self.write_index(&idx)?;
        Ok(r)
    }

    /// Every image, one entry per manifest digest, names sorted.
    pub fn images(&self) -> Result<Vec<ImageEntry>> {
        let idx = self.read_index()?;
        let mut by_digest: Vec<ImageEntry> = Vec::new();
        for desc in idx.manifests() {
            let digest = Digest::from_oci(desc.digest())?;
            let name = ref_name(desc);
            match by_digest.iter_mut().find(|e| e.digest == digest) {
                Some(e) => e.names.extend(name),
                None => by_digest.push(ImageEntry {
                    digest,
                    size: desc.size(),
                    names: name.into_iter().collect(),
                }),
            }
        }
        for e in &mut by_digest {
            e.names.sort();
            e.names.dedup();
        }
        Ok(by_digest)
    }

    /// Find an image by name (`repo[:tag]`) or by ID prefix (hex or `sha256:`).
    pub fn resolve(&self, s: &str) -> Result<ImageEntry> {
        let images = self.images()?;
        if let Ok(name) = ImageName::parse(s) {
            let n = name.to_string();
            if let Some(e) = images.iter().find(|e| e.names.contains(&n)) {
                return Ok(e.clone());
            }
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let found: Vec<_> = images
                .iter()
                .filter(|e| e.digest.hex().starts_with(&hex))
                .collect();
            match found.len() {
                1 => return Ok(found[0].clone()),
                0 => {}
                _ => return Err(Error::Ambiguous(s.to_owned())),
            }
        }
        Err(Error::NotFound(s.to_owned()))
    }

    /// An image by manifest digest, named or not (apps keep their images
    /// by digest; gc treats those as roots).
    pub fn entry_by_digest(&self, d: &Digest) -> Result<ImageEntry> {
        let size = fs::metadata(self.blob_path(d))
            .map_err(|_| Error::NotFound(d.to_string()))?
            .len();
        let names = self
            .images()?
            .into_iter()
            .find(|e| &e.digest == d)
            .map(|e| e.names)
            .unwrap_or_default();
        Ok(ImageEntry {
            digest: d.clone(),
            size,
            names,
        })
    }

    pub fn load_manifest(&self, d: &Digest) -> Result<ImageManifest> {
        let bytes = self.read_blob(d, MAX_MANIFEST_BYTES)?;
        parse_json(&bytes, &format!("manifest {d}"))
    }

    pub fn load_image(&self, entry: &ImageEntry) -> Result<Image> {
        let manifest = self.load_manifest(&entry.digest)?;
        let config_digest = Digest::from_oci(manifest.config().digest())?;
        let bytes = self.read_blob(&config_digest, MAX_CONFIG_BYTES)?;
        let config = parse_json(&bytes, &format!("config {config_digest}"))?;
        Ok(Image {
            entry: entry.clone(),
            manifest,
            config,
            config_digest,
        })
    }

    /// Point `name` at a manifest, moving it from any other image.
    pub fn set_name(&self, name: &ImageName, manifest: &Descriptor) -> Result<()> {
        let n = name.to_string();
        self.update_index(|list| {
            list.retain(|d| ref_name(d).as_deref() != Some(n.as_str()));
            // An unnamed entry for the same manifest is now redundant.
            list.retain(|d| !(ref_name(d).is_none() && d.digest() == manifest.digest()));
            let mut desc = manifest.clone();
            let mut ann = HashMap::new();
            ann.insert(REF_NAME.to_owned(), n.clone());
            desc.set_annotations(Some(ann));
            desc.set_platform(None);
            list.push(desc);
            Ok(())
        })
    }

    /// Point many names at manifests and record unnamed images, in one
    /// rewrite of index.json (an index may name one manifest 10,000 times).
    pub fn set_names(
        &self,
        named: &[(ImageName, Descriptor)],
        unnamed: &[Descriptor],
    ) -> Result<()> {
        if named.is_empty() && unnamed.is_empty() {
            return Ok(());
        }
        let names: std::collections::HashSet<String> =
            named.iter().map(|(n, _)| n.to_string()).collect();
        let digests: std::collections::HashSet<String> =
            named.iter().map(|(_, d)| d.digest().to_string()).collect();
        self.update_index(|list| {
            list.retain(|d| match ref_name(d) {
                Some(n) => !names.contains(&n),
                None => !digests.contains(&d.digest().to_string()),
            });
            let mut seen = std::collections::HashSet::new();
            for (n, manifest) in named.iter().rev() {
                // The last mention of a name wins, as with one set_name each.
                if !seen.insert(n.to_string()) {
                    continue;
                }
                let mut desc = manifest.clone();
                let mut ann = HashMap::new();
                ann.insert(REF_NAME.to_owned(), n.to_string());
                desc.set_annotations(Some(ann));
                desc.set_platform(None);
                list.push(desc);
            }
            let listed: std::collections::HashSet<String> =
                list.iter().map(|d| d.digest().to_string()).collect();
            let mut added = std::collections::HashSet::new();
            for manifest in unnamed {
                let d = manifest.digest().to_string();
                if !listed.contains(&d) && added.insert(d) {
                    let mut desc = manifest.clone();
                    desc.set_annotations(None);
                    desc.set_platform(None);
                    list.push(desc);
                }
            }
            Ok(())
        })
    }

    /// Record an image without a name (if it is not already listed).
    pub fn add_unnamed(&self, manifest: &Descriptor) -> Result<()> {
        self.update_index(|list| {
            if !list.iter().any(|d| d.digest() == manifest.digest()) {
                let mut desc = manifest.clone();
                desc.set_annotations(None);
                desc.set_platform(None);
                list.push(desc);
            }
            Ok(())
        })
    }
}

pub fn ref_name(d: &Descriptor) -> Option<String> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .cloned()
}

pub fn new_index(manifests: Vec<Descriptor>) -> ImageIndex {
    let mut idx = ImageIndex::default();
    idx.set_schema_version(2);
    idx.set_media_type(Some(MediaType::ImageIndex));
    idx.set_manifests(manifests);
    idx
}

pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::BadJson {
        what: what.to_owned(),
        source,
    })
}

/// A running instance's hold on its image (see `Store::pin`).
#[derive(Debug)]
pub struct Pin {
    _file: File,
    path: PathBuf,
}

/// A pin written unnamed, locked, then linked in at `path`; None where
/// the filesystem or /proc cannot (the caller falls back to a rename).
fn pin_unnamed(dir: &Path, path: &Path, body: &[u8]) -> Option<File> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .ok()?;
    let mut f = File::from(fd);
    f.write_all(body).ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    let me = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
    rustix::fs::linkat(CWD, me.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW).ok()?;
    Some(f)
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A blob being written: hashed as it goes, renamed into place on commit.
pub struct BlobWriter {
    inner: Option<HashingWriter<io::BufWriter<File>>>,
    tmp: PathBuf,
    dest_dir: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("blob writer already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter {
    /// fsync and move into place. With `expected`, the digest (and size)
    /// must match or nothing is stored.
    pub fn commit(mut self, what: &str, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let Some(w) = self.inner.take() else {
            return Err(Error::Conflict("blob writer already committed".into()));
        };
        let (buf, digest, size) = w.finish();
        let file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| format!("writing {}", self.tmp.display()))?;
        if let Some((d, s)) = expected {
            verify(what, d, s, &digest, size)?;
        }
        file.sync_all()
            .ctx(|| format!("syncing {}", self.tmp.display()))?;
        let dest = self.dest_dir.join(digest.hex());
        fs::rename(&self.tmp, &dest).ctx(|| format!("storing blob {digest}"))?;
        fsync_dir(&self.dest_dir)?;
        Ok((digest, size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
