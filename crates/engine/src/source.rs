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
}

/// What a pull would fetch: blobs the store lacks, with sizes.
pub struct PullPlan {
    pub remote: Remote,
    pub resolved: berth_registry::Resolved,
    pub missing: Vec<(Digest, u64)>,
    pub config: Digest,
}

impl PullPlan {
    pub fn bytes(&self) -> u64 {
        self.missing.iter().map(|(_, s)| s).sum()
    }
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
        let opts = ImportOptions {
            tag,
            limits: Limits::from_env()?,
            unpack: UnpackOptions::for_current_user(),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
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
        let remote = Remote::new(reference)?;
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
        let mut missing = Vec::new();
        let c = manifest.config();
        for d in std::iter::once(c).chain(manifest.layers().iter()) {
            let dg = Digest::from_oci(d.digest())?;
            if !self.store.has_blob(&dg) && !missing.iter().any(|(m, _)| m == &dg) {
                missing.push((dg, d.size()));
            }
        }
        Ok(PullPlan {
            remote,
            resolved,
            missing,
            config: Digest::from_oci(manifest.config().digest())?,
        })
    }

    /// Fetch what the store lacks, then import it through the verified
    /// path. Downloads live in tmp/pull-<manifest>/ until done, so an
    /// interrupted pull resumes there. The caller holds the shared lock.
    pub fn pull(&self, reference: &str, fe: &dyn Frontend) -> Result<Pulled> {
        let p = self.pull_plan(reference)?;
        let dir = self
            .store
            .tmp_dir()
            .join(format!("pull-{}", p.resolved.digest.hex()));
        let downloaded = {
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
        if !config.exists() {
            io(
                std::fs::copy(self.store.blob_path(&p.config), &config),
                || "copying the image config".into(),
            )?;
        }
        write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut desc = Descriptor::new(
            MediaType::ImageManifest,
            p.resolved.manifest.len() as u64,
            p.resolved.digest.to_oci(),
        );
        let name = reference.split_once('@').map_or(reference, |(n, _)| n);
        if p.remote.reference.digest().is_none()
            && let Ok(n) = ImageName::parse(name)
        {
            desc.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), n.to_string())])));
        }
        write(
            dir.join("index.json"),
            &serde_json::to_vec(&new_index(vec![desc]))?,
        )?;
        let res = self.import_path(&dir, None, fe)?;
        let _ = berth_image::fsutil::remove_tree(&dir);
        let first = res
            .images
            .first()
            .ok_or_else(|| Error::Refused(format!("pulling {reference} produced no image")))?;
        let entry = self.store.entry_by_digest(&first.digest)?;
        Ok(Pulled {
            entry,
            downloaded,
            blobs: p.missing.len(),
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
