//! Moving installed apps between images: update from their registry,
//! roll back, mask, rebase onto another runtime, promote a channel copy.

use std::collections::{BTreeMap, HashMap};

use berth_app::deploy::Deployment;
use berth_build::oci::{
    self, BASE_DIGEST, BASE_NAME, LABEL_FROM, LABEL_PACKAGES, LayerRef, NewImage,
};
use berth_image::Digest;
use berth_registry::remote::is_registry_ref;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::{Engine, Frontend, Installed, WorkDir, desktop};

/// What `update` would do for one app.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum UpdateCheck {
    /// `berth mask`ed: left as it is.
    Masked,
    /// Installed from a file, not a registry: nothing to check.
    NotFromRegistry {
        origin: String,
    },
    UpToDate {
        image: String,
    },
    Available {
        image: String,
        /// Bytes to download (blobs the store lacks) and how many blobs.
        bytes: u64,
        blobs: usize,
    },
}

/// What `update` did for one app.
#[derive(Debug, Serialize)]
pub struct UpdateOutcome {
    pub id: String,
    pub origin: String,
    #[serde(flatten)]
    pub check: UpdateCheck,
    /// Bytes downloaded (0 on a dry run).
    pub downloaded: u64,
    /// The new deployment, when one was made.
    pub installed: Option<Installed>,
    /// New permissions were asked for and the user said no.
    pub declined: bool,
}

#[derive(Debug, Serialize)]
pub struct RolledBack {
    pub id: String,
    pub from_deployment: u64,
    pub from_image: String,
    pub to_deployment: u64,
    pub to_image: String,
    pub masked: bool,
}

/// A rebase: which runtime was replaced by which.
#[derive(Debug, Serialize)]
pub struct Rebased {
    pub id: String,
    pub from: String,
    pub from_digest: String,
    pub onto: String,
    pub onto_digest: String,
    pub runtime_layers: usize,
    pub app_layers: usize,
    /// None when the app already ran on that runtime.
    pub installed: Option<Installed>,
}

impl Engine {
    /// Check one installed app against its registry (no download).
    pub fn check_update(&self, d: &Deployment) -> Result<UpdateCheck> {
        if self.apps.is_masked(&d.app_id) {
            return Ok(UpdateCheck::Masked);
        }
        if !is_registry_ref(&d.origin) || berth_registry::remote::is_local_name(&d.origin) {
            return Ok(UpdateCheck::NotFromRegistry {
                origin: d.origin.clone(),
            });
        }
        let plan = self
            .pull_plan(&d.origin)
            .with_context(|| format!("checking {} for {}", d.origin, d.app_id))?;
        let image = plan.resolved.digest.to_string();
        if image == d.image {
            return Ok(UpdateCheck::UpToDate { image });
        }
        Ok(UpdateCheck::Available {
            image,
            bytes: self.download_estimate(&plan),
            blobs: plan.missing.len(),
        })
    }

    /// Update `ids` (all installed apps when empty). New permissions are
    /// put to `fe.consent`; a "no" leaves that app as it was.
    pub fn update(
        &self,
        ids: &[String],
        dry_run: bool,
        fe: &dyn Frontend,
    ) -> Result<Vec<UpdateOutcome>> {
        let _lock = self.lock_shared(fe)?;
        let targets: Vec<Deployment> = if ids.is_empty() {
            self.apps.list()
        } else {
            ids.iter()
                .map(|id| self.apps.require(id))
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for d in targets {
            let check = self.check_update(&d)?;
            let mut o = UpdateOutcome {
                id: d.app_id.clone(),
                origin: d.origin.clone(),
                check,
                downloaded: 0,
                installed: None,
                declined: false,
            };
            if matches!(o.check, UpdateCheck::Available { .. }) && !dry_run {
                let pulled = self.pull(&d.origin, fe)?;
                o.downloaded = pulled.downloaded;
                let review = self.review_entry(
                    &pulled.entry,
                    d.origin.clone(),
                    Some(&d.app_id),
                    pulled.downloaded,
                    fe,
                )?;
                if !fe.consent(&review)? {
                    o.declined = true;
                } else {
                    o.installed = Some(self.install(review, true, fe)?);
                }
            }
            out.push(o);
        }
        Ok(out)
    }

    /// Back to the previous deployment with a different image.
    pub fn rollback(&self, id: &str, fe: &dyn Frontend) -> Result<RolledBack> {
        let _lock = self.lock_shared(fe)?;
        let cur = self.apps.require(id)?;
        let prev =
            self.apps.history(id)?.into_iter().rev().find(|d| {
                d.serial < cur.serial && (d.image != cur.image || d.runtime != cur.runtime)
            });
        // The older image's menu entry, generated before anything changes.
        let exports = match &prev {
            Some(p) => {
                let entry = self.store.entry_by_digest(&Digest::parse(&p.image)?)?;
                let image = self.store.load_image(&entry)?;
                let mut meta = self.app_meta(&image)?;
                meta.id = id.to_owned();
                Some(desktop::prepare(&meta, &image, &self.store, fe)?)
            }
            None => None,
        };
        let prev = self.apps.rollback(id)?;
        if let Some(x) = &exports {
            desktop::export(self.store.root(), x, &self.store.tmp_dir())?;
            self.after_export(fe);
        }
        Ok(RolledBack {
            id: id.to_owned(),
            from_deployment: cur.serial,
            from_image: cur.image,
            to_deployment: prev.serial,
            to_image: prev.image,
            masked: self.apps.is_masked(id),
        })
    }

    /// Keep `update` away from an app (or let it update again).
    pub fn mask(&self, id: &str, masked: bool) -> Result<()> {
        Ok(self.apps.set_masked(id, masked)?)
    }

    /// Swap the runtime under an installed app for `onto` (an image or a
    /// registry reference), keeping the app's own layers unchanged.
    pub fn rebase(&self, id: &str, onto: &str, fe: &dyn Frontend) -> Result<Rebased> {
        let _lock = self.lock_shared(fe)?;
        let d = self.apps.require(id)?;
        let entry = self.store.entry_by_digest(&Digest::parse(&d.image)?)?;
        let app = self.store.load_image(&entry)?;
        // The current runtime, matched by content (diff-ids): a tool that
        // rebuilt the image may have recompressed its layers or named a
        // base digest of its own.
        let ann = app.manifest.annotations().clone().unwrap_or_default();
        let base = match berth_image::base::find_base(&self.store, &app)? {
            Some(b) => b,
            None => {
                let (Some(old_name), Some(old_digest)) = (ann.get(BASE_NAME), ann.get(BASE_DIGEST))
                else {
                    return Err(Error::Refused(format!(
                        "{id} cannot be rebased: no image in the store is the bottom of its layers, and its image names no base ({BASE_NAME}/{BASE_DIGEST}) to fetch; import or pull its runtime first"
                    )));
                };
                let digest = Digest::parse(old_digest)?;
                let mismatch = || {
                    Error::Refused(format!(
                        "refusing to rebase {id}: its image does not start with the layers of its recorded runtime {old_name} ({old_digest})"
                    ))
                };
                if self.store.entry_by_digest(&digest).is_ok() {
                    return Err(mismatch());
                }
                if !is_registry_ref(old_name) {
                    return Err(Error::Refused(format!(
                        "{id}'s current runtime {old_name} ({old_digest}) is not in the store, so its layers cannot be told from the app's; import or pull it first"
                    )));
                }
                let r = format!(
                    "{}@{digest}",
                    old_name.split(':').next().unwrap_or(old_name),
                );
                self.pull(&r, fe)
                    .with_context(|| format!("fetching {id}'s current runtime {old_name}"))?;
                berth_image::base::find_base(&self.store, &app)?.ok_or_else(mismatch)?
            }
        };
        let old_name = base
            .entry
            .names
            .first()
            .cloned()
            .or_else(|| ann.get(BASE_NAME).cloned())
            .unwrap_or_else(|| base.entry.digest.short().to_owned());
        let old_digest = base.entry.digest.clone();
        let ours = app.manifest.layers();
        let theirs_len = base.layers;
        let new_entry = self.image_or_pull(onto, fe)?;
        let mut out = Rebased {
            id: id.to_owned(),
            from: old_name.clone(),
            from_digest: old_digest.to_string(),
            onto: onto.to_owned(),
            onto_digest: new_entry.digest.to_string(),
            runtime_layers: theirs_len,
            app_layers: ours.len().saturating_sub(theirs_len),
            installed: None,
        };
        if new_entry.digest == old_digest {
            return Ok(out);
        }
        let new = self.store.load_image(&new_entry)?;

        // The new runtime's layers, then the app's own, unchanged.
        let mut layers = LayerRef::of_image(&new)?;
        layers.extend(LayerRef::of_image(&app)?.into_iter().skip(theirs_len));
        let mut config = app.config.config().clone().unwrap_or_default();
        // The runtime's record of itself follows the runtime.
        let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
        let new_labels = new
            .config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default();
        for k in [LABEL_PACKAGES, LABEL_FROM] {
            match new_labels.get(k) {
                Some(v) => labels.insert(k.to_owned(), v.clone()),
                None => labels.remove(k),
            };
        }
        config.set_labels(Some(labels));
        let base_name = new_entry
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| onto.to_owned());
        out.onto = base_name.clone();
        let img = NewImage {
            name: format!("rebased/{}:latest", id.to_lowercase()),
            config,
            layers,
            annotations: BTreeMap::from([
                (BASE_NAME.to_owned(), base_name),
                (BASE_DIGEST.to_owned(), new_entry.digest.to_string()),
            ]),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let work = WorkDir::new(self, "rebase-")?;
        let layout = work.0.join("layout");
        oci::write_layout(&layout, std::slice::from_ref(&img), &[])?;
        let res = self.import_path(&layout, None, fe)?;
        let first = res
            .images
            .first()
            .ok_or_else(|| Error::Refused("rebase produced no image".into()))?;
        let rebased = self.store.entry_by_digest(&first.digest)?;
        // The runtime changed, the app did not: its permissions are the
        // ones consented to already.
        let review = self.review_entry(&rebased, d.origin.clone(), Some(&d.app_id), 0, fe)?;
        out.installed = Some(self.install(review, true, fe)?);
        Ok(out)
    }

    /// `ID@CHANNEL`'s image becomes the stable install (a new deployment,
    /// so `rollback` undoes it); the copy goes away, its data stays.
    pub fn promote(&self, key: &str, fe: &dyn Frontend) -> Result<Installed> {
        let Some((id, _)) = key.split_once('@') else {
            return Err(Error::Invalid(
                "promote takes a channel copy, ID@CHANNEL (installed with `berth install --as CHANNEL`)".into(),
            ));
        };
        let _lock = self.lock_shared(fe)?;
        let d = self.apps.require(key)?;
        let entry = self.store.entry_by_digest(&Digest::parse(&d.image)?)?;
        // The user consented to this image's permissions when installing
        // the copy. The stable install keeps updating from its own origin.
        let origin = self
            .apps
            .current(id)?
            .map_or_else(|| d.origin.clone(), |s| s.origin);
        let review = self.review_entry(&entry, origin, Some(id), 0, fe)?;
        let installed = self.install(review, true, fe)?;
        self.apps.remove(
            key,
            &self
                .store
                .tmp_dir()
                .join(berth_image::fsutil::unique_name("trash-")),
        )?;
        desktop::unexport(self.store.root(), key)?;
        Ok(installed)
    }
}
