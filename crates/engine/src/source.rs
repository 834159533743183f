//! Getting images into the store: import from a file or directory, pull
//! from a registry under the trust policy. Both go through the verified
//! import path; what was left out is told to the front end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_image::ImageName;
use berth_image::import::{ImportOptions, ImportResult, import};
use berth_image::layer::Limits;
use berth_image::store::{REF_NAME, new_index};
use berth_image::unpack::UnpackOptions;
use berth_image::{Digest, ImageEntry};
use berth_registry::Remote;
use berth_registry::sign::{Policy, Rule};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};

use crate::error::{Context, Error, Result, io};
use crate::{Engine, Frontend, summarize};

/// What a pull fetched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    #[serde(skip)]
    pub entry: ImageEntry,
    pub downloaded: u64,
    pub blobs: usize,
    /// Layers rebuilt from deltas instead of downloaded whole.
    pub from_deltas: usize,
    /// Bytes of manifests, config and delta listings read (not in
    /// `downloaded`, which counts blobs).
    pub metadata: u64,
    /// The full reference pulled (a short name completed by the
    /// registries registries.conf searches).
    pub named: String,
}

/// What a pull would fetch: blobs the store lacks, with sizes.
pub struct PullPlan {
    pub remote: Remote,
    pub resolved: berth_registry::Resolved,
    /// Layer blobs to download (not those of a runtime the store has).
    pub missing: Vec<(Digest, u64)>,
    pub config: Digest,
    /// The config, fetched already when the store lacked it.
    pub config_bytes: Option<Vec<u8>>,
    /// The layers' diff-ids, from the config.
    pub diff_ids: Vec<Digest>,
}

impl PullPlan {
    pub fn bytes(&self) -> u64 {
        self.missing.iter().map(|(_, s)| s).sum()
    }
}

/// What installing a registry image would download, shown before any
/// layer is: the app's permissions are in its config, fetched first.
#[derive(Debug, serde::Serialize)]
pub struct DownloadPreview {
    pub reference: String,
    /// The app the image declares (`None`: not an app, or its labels are
    /// invalid; the review after the download says why).
    pub id: Option<String>,
    pub name: Option<String>,
    /// Everything it asks for, highest risk first.
    pub permissions: Vec<berth_app::permissions::ReviewLine>,
    /// Layer bytes to download.
    pub download: u64,
    /// Layer bytes the store has already (a runtime's, an earlier
    /// version's).
    pub shared: u64,
}

impl Engine {
    /// Import with progress, and tell what was left out. The caller holds
    /// the store's shared lock.
    pub fn import_path(
        &self,
        source: &Path,
        tag: Option<ImageName>,
        fe: &dyn Frontend,
    ) -> Result<ImportResult> {
        self.import_rebuilt(source, tag, fe, Vec::new())
    }

    /// `import_path`, where layers rebuilt from deltas (blob, diff-id) are
    /// in the store already and the input leaves them out.
    fn import_rebuilt(
        &self,
        source: &Path,
        tag: Option<ImageName>,
        fe: &dyn Frontend,
        rebuilt: Vec<(Digest, Digest)>,
    ) -> Result<ImportResult> {
        let opts = ImportOptions {
            tag,
            limits: Limits::from_env()?,
            unpack: UnpackOptions::for_current_user(),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            rebuilt,
        };
        let res = {
            let bar = fe.progress("importing");
            import(&self.store, source, &opts, bar.as_ref())
                .with_context(|| format!("importing {}", source.display()))?
        };
        let r = &res.report;
        if !r.dropped_devices.is_empty() {
            fe.warn(&format!(
                "warning: left out {} device node(s) ({}); the sandbox provides /dev",
                r.dropped_devices.len(),
                summarize(&r.dropped_devices)
            ));
        }
        if !r.stripped_setid.is_empty() {
            fe.warn(&format!(
                "warning: removed setuid/setgid bits from {} file(s) ({}); berth never runs anything with raised privileges",
                r.stripped_setid.len(),
                summarize(&r.stripped_setid)
            ));
        }
        for i in &res.images {
            let entry = self.store.entry_by_digest(&i.digest)?;
            if let Some(why) = self.store.load_image(&entry)?.platform_mismatch() {
                fe.warn(&format!(
                    "warning: {why}: image {} can be exported or pushed, but not installed or run",
                    i.id
                ));
            }
        }
        if !r.sparse.is_empty() {
            fe.warn(&format!(
                "warning: {} sparse file(s) stored in full, their holes as zeros ({})",
                r.sparse.len(),
                summarize(&r.sparse)
            ));
        }
        if r.dropped_xattrs > 0 {
            fe.warn(&format!(
                "warning: left out {} extended attribute(s) that could grant privileges or forge overlay metadata",
                r.dropped_xattrs
            ));
        }
        Ok(res)
    }

    /// The trust policy: `$BERTH_POLICY`, else `$BERTH_HOME/policy.toml`,
    /// else `~/.config/berth/policy.toml`; none means accept everything.
    fn policy(&self) -> Result<Policy> {
        let mut files = Vec::new();
        if let Some(p) = std::env::var_os("BERTH_POLICY").filter(|p| !p.is_empty()) {
            files.push(PathBuf::from(p));
        }
        files.push(self.store.root().join("policy.toml"));
        if let Some(h) = std::env::var_os("HOME") {
            files.push(PathBuf::from(h).join(".config/berth/policy.toml"));
        }
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                return Ok(Policy::parse(&text, &f.display().to_string())?);
            }
        }
        Ok(Policy::default())
    }

    /// Refuse what the policy refuses, before any blob is fetched.
    fn check_policy(&self, remote: &Remote, digest: &Digest) -> Result<()> {
        let policy = self.policy()?;
        let repo = remote.repository();
        match policy.decide(&repo) {
            (Rule::Accept, _) => Ok(()),
            (Rule::Reject, _) => Err(Error::Refused(format!(
                "the trust policy rejects images from {repo}"
            ))),
            (Rule::Signed, keys) => {
                if keys.is_empty() {
                    return Err(Error::Refused(format!(
                        "the trust policy requires signatures for {repo} but lists no keys"
                    )));
                }
                let keys = keys
                    .iter()
                    .map(|k| {
                        let text = io(std::fs::read_to_string(k), || {
                            format!("reading the trusted key {k}")
                        })?;
                        berth_registry::sign::parse_public(&text)
                            .with_context(|| format!("trusted key {k}"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                remote
                    .verify_signature(&keys, digest)
                    .context("refusing an image the trust policy requires to be signed")?;
                Ok(())
            }
        }
    }

    /// Resolve a reference and list what the store lacks, under the trust
    /// policy (a rejected registry is not even asked).
    pub fn pull_plan(&self, reference: &str) -> Result<PullPlan> {
        // policy.json first: a rejected registry is not even asked (a short
        // name is checked once completed).
        if berth_registry::remote::is_registry_ref(reference) {
            containers_policy(reference)?;
            let repo = berth_registry::containers::repository_of(reference);
            if self.policy()?.decide(repo).0 == Rule::Reject {
                return Err(Error::Refused(format!(
                    "the trust policy rejects images from {repo}"
                )));
            }
        }
        // Each place a short name could be is judged before it is asked.
        let berth_policy = self.policy()?;
        let allow = |c: &str| -> berth_registry::Result<()> {
            containers_policy(c).map_err(|e| berth_registry::Error::Invalid(e.to_string()))?;
            let repo = berth_registry::containers::repository_of(c);
            if berth_policy.decide(repo).0 == Rule::Reject {
                return Err(berth_registry::Error::Invalid(format!(
                    "the trust policy rejects images from {repo}"
                )));
            }
            Ok(())
        };
        let remote = Remote::new_checked(reference, &allow)?;
        containers_policy(remote.named())?;
        if self.policy()?.decide(&remote.repository()).0 == Rule::Reject {
            return Err(Error::Refused(format!(
                "the trust policy rejects images from {}",
                remote.repository()
            )));
        }
        let resolved = remote.resolve()?;
        self.check_policy(&remote, &resolved.digest)?;
        let manifest: ImageManifest = serde_json::from_slice(&resolved.manifest).map_err(|_| {
            Error::Refused(format!(
                "the manifest of {reference} is not an image manifest"
            ))
        })?;
        let config = Digest::from_oci(manifest.config().digest())?;
        // The config first (small): its diff-ids say which layers the store
        // holds already as a runtime's, whatever their compression.
        let config_bytes = if self.store.has_blob(&config) {
            None
        } else {
            Some(
                remote
                    .fetch_small(&config, berth_image::store::MAX_CONFIG_BYTES)
                    .with_context(|| format!("fetching the config of {reference}"))?,
            )
        };
        let (ids, app_id) = {
            let bytes = match &config_bytes {
                Some(b) => b.clone(),
                None => self
                    .store
                    .read_blob(&config, berth_image::store::MAX_CONFIG_BYTES)?,
            };
            let c: oci_spec::image::ImageConfiguration =
                berth_image::store::parse_json(&bytes, &format!("the config of {reference}"))?;
            let ids = c
                .rootfs()
                .diff_ids()
                .iter()
                .map(|d| Digest::parse(d))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            (ids, berth_image::base::app_id_of_config(&c))
        };
        // Not downloaded: a runtime's layers the store has, and what an
        // earlier version of the same app has (the rules import applies to
        // what an input leaves out).
        let base = berth_image::base::stored_base_run(&self.store, &ids)?;
        let missing_ids = ids.clone();
        let shared = berth_image::base::runtime_layers(&self.store)?;
        let lent = match &app_id {
            Some(id) => berth_image::base::same_app_blobs(&self.store, id)?,
            None => Vec::new(),
        };
        let mut missing = Vec::new();
        for (i, d) in manifest.layers().iter().enumerate() {
            let dg = Digest::from_oci(d.digest())?;
            let id = ids.get(i);
            // A stored layer that can no longer re-create its blob (its
            // tar record was damaged and removed) gets it back from here.
            let unsendable = match id {
                Some(id) => {
                    self.store.has_layer(id)
                        && !self.store.has_split(id)
                        && self.store.blob_for_layer(id)?.is_none()
                }
                None => false,
            };
            if !unsendable
                && (i < base
                    || id.is_some_and(|id| shared.contains(id))
                    || lent.iter().any(|(b, l)| *b == dg && Some(l) == id))
            {
                continue;
            }
            if !missing.iter().any(|(m, _)| m == &dg) {
                missing.push((dg, d.size()));
            }
        }
        Ok(PullPlan {
            remote,
            resolved,
            missing,
            config,
            config_bytes,
            diff_ids: missing_ids,
        })
    }

    /// Pull for an install: the front end sees what would be downloaded
    /// and what the app asks for before any layer is fetched.
    pub(crate) fn pull_reviewed(&self, reference: &str, fe: &dyn Frontend) -> Result<Pulled> {
        let p = self.pull_plan(reference)?;
        let preview = self.preview(reference, &p)?;
        if !fe.before_download(&preview)? {
            return Err(Error::NoConsent);
        }
        self.pull_planned(reference, p, fe)
    }

    fn preview(&self, reference: &str, p: &PullPlan) -> Result<DownloadPreview> {
        let bytes = match &p.config_bytes {
            Some(b) => b.clone(),
            None => self
                .store
                .read_blob(&p.config, berth_image::store::MAX_CONFIG_BYTES)?,
        };
        let c: oci_spec::image::ImageConfiguration =
            berth_image::store::parse_json(&bytes, &format!("the config of {reference}"))?;
        let meta = berth_app::AppMeta::from_labels(&berth_image::store::config_labels(&c))
            .ok()
            .flatten();
        let manifest: ImageManifest = serde_json::from_slice(&p.resolved.manifest)?;
        let total: u64 = manifest.layers().iter().map(|l| l.size()).sum();
        let download = self.download_estimate(p);
        Ok(DownloadPreview {
            reference: p.remote.named().to_owned(),
            id: meta.as_ref().map(|m| m.id.clone()),
            name: meta.as_ref().map(|m| m.name.clone()),
            permissions: meta
                .map(|m| m.permissions.review(&crate::user_home()))
                .unwrap_or_default(),
            download,
            shared: total.saturating_sub(p.bytes()),
        })
    }

    /// Fetch what the store lacks, then import it through the verified
    /// path. Downloads live in tmp/pull-<manifest>/ until done, so an
    /// interrupted pull resumes there. The caller holds the shared lock.
    pub fn pull(&self, reference: &str, fe: &dyn Frontend) -> Result<Pulled> {
        let p = self.pull_plan(reference)?;
        self.pull_planned(reference, p, fe)
    }

    fn pull_planned(&self, reference: &str, mut p: PullPlan, fe: &dyn Frontend) -> Result<Pulled> {
        let dir = self
            .store
            .tmp_dir()
            .join(format!("pull-{}", p.resolved.digest.hex()));
        let deltas = self.pull_deltas(&p, &dir, fe)?;
        p.missing
            .retain(|(d, _)| !deltas.rebuilt.iter().any(|(r, _)| r == d));
        let downloaded = deltas.downloaded + {
            let bar = fe.progress("pulling");
            p.remote
                .fetch(&p.missing, &dir, bar.as_ref())
                .with_context(|| format!("pulling {reference}"))?
        };
        let sha = dir.join("blobs/sha256");
        let write = |path: PathBuf, bytes: &[u8]| {
            io(std::fs::write(&path, bytes), || {
                format!("writing {}", path.display())
            })
        };
        write(sha.join(p.resolved.digest.hex()), &p.resolved.manifest)?;
        // Import reads the config from the layout even when the store has it.
        let config = sha.join(p.config.hex());
        match &p.config_bytes {
            Some(b) => write(config, b)?,
            None if !config.exists() => {
                io(
                    std::fs::copy(self.store.blob_path(&p.config), &config),
                    || "copying the image config".into(),
                )?;
            }
            None => {}
        }
        write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut desc = Descriptor::new(
            MediaType::ImageManifest,
            p.resolved.manifest.len() as u64,
            p.resolved.digest.to_oci(),
        );
        let named = p.remote.named().to_owned();
        let name = named.split_once('@').map_or(named.as_str(), |(n, _)| n);
        if p.remote.reference.digest().is_none()
            && let Ok(n) = ImageName::parse(name)
        {
            desc.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), n.to_string())])));
        }
        write(
            dir.join("index.json"),
            &serde_json::to_vec(&new_index(vec![desc]))?,
        )?;
        let from_deltas = deltas.rebuilt.len();
        let res = self.import_rebuilt(&dir, None, fe, deltas.rebuilt)?;
        let _ = berth_image::fsutil::remove_tree(&dir);
        let first = res
            .images
            .first()
            .ok_or_else(|| Error::Refused(format!("pulling {reference} produced no image")))?;
        let entry = self.store.entry_by_digest(&first.digest)?;
        Ok(Pulled {
            entry,
            downloaded,
            blobs: p.missing.len() + deltas.fetched,
            from_deltas,
            metadata: p.resolved.manifest.len() as u64
                + p.config_bytes.as_ref().map_or(0, |b| b.len() as u64)
                + deltas.metadata,
            named,
        })
    }

    /// An image in the store, or a registry reference pulled first.
    pub fn image_or_pull(&self, r: &str, fe: &dyn Frontend) -> Result<ImageEntry> {
        match self.store.resolve(r) {
            Ok(e) => Ok(e),
            Err(_) if berth_registry::remote::is_registry_ref(r) => Ok(self.pull(r, fe)?.entry),
            Err(e) => Err(e.into()),
        }
    }
}

/// What the containers `policy.json` podman and skopeo obey says of
/// `reference`; berth's own policy.toml is checked as well, and both must
/// accept.
fn containers_policy(reference: &str) -> Result<()> {
    use berth_registry::containers::{Policy, Verdict};
    let Some((policy, file)) = Policy::load()? else {
        return Ok(());
    };
    match policy.decide(reference) {
        Verdict::Accept => Ok(()),
        Verdict::Reject => Err(Error::Refused(format!(
            "{} rejects images from {reference}",
            file.display()
        ))),
        Verdict::Unverifiable(kind) => Err(Error::Refused(format!(
            "{} requires {kind} signatures for {reference}, which berth cannot verify (berth checks its own signatures, required in policy.toml: docs/signatures.md)",
            file.display()
        ))),
    }
}
