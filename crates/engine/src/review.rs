//! The review: what installing a source would do, as data. The CLI prints
//! it, the installer window shows it; both then hand it to `install`.

use std::collections::HashSet;
use std::path::Path;

use berth_app::deploy::Deployment;
use berth_app::permissions::ReviewLine;
use berth_app::{AppMeta, Risk};
use berth_image::{Digest, Image, ImageEntry};
use serde::Serialize;

use crate::desktop::{self, Exports};
use crate::error::{Error, Result};
use crate::{Engine, Frontend, user_home};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Install,
    Reinstall,
    Update,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Install => "Installing",
            Action::Reinstall => "Reinstalling",
            Action::Update => "Updating",
        }
    }
}

/// Everything a user decides on. Strings come from the image: front ends
/// render them escaped (`berth_app::text::escape`).
#[derive(Debug, Serialize)]
pub struct Review {
    pub action: Action,
    /// The install key: the app ID, or `ID@CHANNEL` for a channel copy.
    pub id: String,
    pub name: String,
    /// Manifest digest of the image.
    pub image: String,
    pub origin: String,
    /// The image's size as stored (compressed layers and config).
    pub size: u64,
    /// Of `size`, layers whose content the store has for other images
    /// (installed runtimes and apps), whatever their compression.
    pub shared: u64,
    /// Bytes fetched from a registry to make this review.
    pub downloaded: u64,
    /// Everything the app asks for, highest risk first.
    pub permissions: Vec<ReviewLine>,
    /// What needs consent now: everything on a first install, only what
    /// is new on an update or reinstall.
    pub new_permissions: Vec<ReviewLine>,
    pub highest_risk: Option<Risk>,
    /// A Flatpak app: the runtime it runs on (its ref, and the image in
    /// the store that is it).
    pub runtime: Option<String>,
    /// An update or reinstall that moves the app onto another runtime
    /// image: the new one, and the one it ran on. Needs consent.
    pub runtime_change: Option<String>,
    /// What the app asks for that berth has no permission for, so does
    /// not grant, in the app's own words.
    pub left_out: Vec<String>,
    #[serde(skip)]
    pub(crate) pending: Pending,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub entry: ImageEntry,
    pub meta: AppMeta,
    pub exports: Exports,
    /// The deployment the review was made against.
    pub previous: Option<u64>,
    /// A Flatpak app's runtime image.
    pub runtime: Option<ImageEntry>,
}

impl Review {
    /// Does installing need the user's yes?
    pub fn needs_consent(&self) -> bool {
        !self.new_permissions.is_empty() || self.runtime_change.is_some()
    }

    /// Bytes this install adds to the disk (not shared with other apps).
    pub fn new_on_disk(&self) -> u64 {
        self.size.saturating_sub(self.shared)
    }

    /// The icon the menu will get: its file extension and bytes, checked
    /// by content.
    pub fn icon(&self) -> Option<(&str, &[u8])> {
        self.pending.exports.icon()
    }
}

/// The line that closes a review, in the CLI and in the window alike:
/// "Summary: 1 high, 0 medium, 2 low; high: filesystem=host".
pub fn risk_summary(lines: &[ReviewLine]) -> String {
    let count = |r: Risk| lines.iter().filter(|l| l.risk == r).count();
    let high: Vec<String> = lines
        .iter()
        .filter(|l| l.risk == Risk::High)
        .map(|l| berth_app::text::escape(&l.permission).into_owned())
        .collect();
    format!(
        "Summary: {} high, {} medium, {} low{}",
        count(Risk::High),
        count(Risk::Medium),
        count(Risk::Low),
        if high.is_empty() {
            String::new()
        } else {
            format!("; high: {}", high.join(", "))
        }
    )
}

pub(crate) fn image_size(img: &Image) -> u64 {
    img.manifest.layers().iter().map(|l| l.size()).sum::<u64>() + img.manifest.config().size()
}

/// The app an image declares, or a clear error.
pub fn app_of(image: &Image) -> Result<AppMeta> {
    AppMeta::from_labels(&image.labels())
        .map_err(|e| Error::Context {
            context: "the image's app labels are invalid".into(),
            source: Box::new(e.into()),
        })?
        .ok_or_else(|| {
            Error::Refused(
                "the image declares no app (no org.berth.app.id label; see docs/app-labels.md); \
                 run it with `berth run IMAGE` instead"
                    .into(),
            )
        })
}

impl Engine {
    /// Bring `source` into the store (importing a file, pulling a
    /// reference, or finding an image by name) and review it. `channel`
    /// makes it a channel copy, `ID@CHANNEL`.
    pub fn review(&self, source: &str, channel: Option<&str>, fe: &dyn Frontend) -> Result<Review> {
        let _lock = self.lock_shared(fe)?;
        let (entry, origin, downloaded) = self.source_image(source, fe)?;
        let key = match channel {
            Some(ch) => {
                let image = self.store.load_image(&entry)?;
                let key = format!("{}@{ch}", app_of(&image)?.id);
                if !berth_app::metadata::valid_install_key(&key) {
                    return Err(Error::Invalid(format!(
                        "--as {ch:?}: a channel name is 1-32 of a-z, 0-9 and -"
                    )));
                }
                Some(key)
            }
            None => None,
        };
        self.review_entry(&entry, origin, key.as_deref(), downloaded, fe)
    }

    /// Import a file or directory, pull a reference, or find an image.
    fn source_image(&self, source: &str, fe: &dyn Frontend) -> Result<(ImageEntry, String, u64)> {
        let path = Path::new(source);
        // A name the store has is the store's image, registry-like or not
        // (podman names every local build `localhost/NAME:TAG`).
        if !path.exists()
            && let Ok(entry) = self.store.resolve(source)
        {
            return Ok((entry, source.to_owned(), 0));
        }
        if !path.exists() && berth_registry::remote::is_registry_ref(source) {
            let p = self.pull_reviewed(source, fe)?;
            return Ok((p.entry, source.to_owned(), p.downloaded));
        }
        if path.exists() {
            let mut downloaded = 0;
            let res = match self.import_path(path, None, fe) {
                Ok(r) => r,
                Err(e) => match e.image() {
                    // A thin bundle: fetch its runtime from the registry it
                    // names, then import again.
                    Some(berth_image::Error::MissingBase {
                        base_name: Some(name),
                        base_digest: Some(digest),
                        ..
                    }) if berth_registry::remote::is_registry_ref(name)
                        && !berth_registry::remote::is_local_name(name) =>
                    {
                        let repo = name.rsplit_once(':').filter(|(_, t)| !t.contains('/'));
                        let r = format!("{}@{digest}", repo.map_or(name.as_str(), |(r, _)| r));
                        fe.info(&format!(
                            "This is a thin bundle; fetching its runtime {name}"
                        ));
                        let p = self.pull(&r, fe).map_err(|e| Error::Context {
                            context: format!("fetching the runtime {name} this thin bundle needs"),
                            source: Box::new(e),
                        })?;
                        downloaded = p.downloaded;
                        self.import_path(path, None, fe)?
                    }
                    Some(berth_image::Error::MissingBase { .. }) => {
                        return Err(Error::Context {
                            context: "this is a thin bundle: import or pull its runtime first, or ask the author for a full bundle".into(),
                            source: Box::new(e),
                        });
                    }
                    _ => return Err(e),
                },
            };
            let [first] = res.images.as_slice() else {
                return Err(Error::Invalid(format!(
                    "{source} holds {} images; import it and install one by name",
                    res.images.len()
                )));
            };
            let entry = self.store.resolve(&first.digest.to_string())?;
            let origin = std::fs::canonicalize(source)
                .map_or_else(|_| source.to_owned(), |p| p.display().to_string());
            return Ok((entry, origin, downloaded));
        }
        // Clearly a path, not an image name: say the file is missing.
        if source.starts_with(['/', '.', '~'])
            || [".berth", ".tar", ".tar.gz", ".tar.zst"]
                .iter()
                .any(|e| source.ends_with(e))
        {
            return Err(Error::Invalid(format!(
                "{source}: no such file or directory"
            )));
        }
        match self.store.resolve(source) {
            Ok(e) => Ok((e, source.to_owned(), 0)),
            // A short name: the registries registries.conf searches.
            Err(berth_image::Error::NotFound(_))
                if !berth_registry::containers::Registries::load()?
                    .unqualified_search
                    .is_empty() =>
            {
                let p = self.pull_reviewed(source, fe)?;
                let origin = p.named.clone();
                Ok((p.entry, origin, p.downloaded))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Review an image already in the store as the install `key` (default:
    /// its app ID). The caller holds the shared store lock.
    pub fn review_entry(
        &self,
        entry: &ImageEntry,
        origin: String,
        key: Option<&str>,
        downloaded: u64,
        fe: &dyn Frontend,
    ) -> Result<Review> {
        let image = self.store.load_image(entry)?;
        if let Some(why) = image.platform_mismatch() {
            return Err(Error::Refused(format!(
                "cannot install {}: {why}",
                entry.digest.short()
            )));
        }
        let mut meta = self.app_meta(&image)?;
        // A channel copy (`ID@CHANNEL`) is its own install: own deployments,
        // data and menu entry, named after the key.
        if let Some(k) = key.filter(|k| k.contains('@')) {
            if berth_app::metadata::app_id_of(k) != meta.id {
                return Err(Error::Invalid(format!(
                    "the image is the app {}, not {}",
                    meta.id,
                    berth_app::metadata::app_id_of(k)
                )));
            }
            meta.name = format!("{} ({})", meta.name, &k[meta.id.len() + 1..]);
            meta.id = k.to_owned();
        }
        let previous = self.apps.current(&meta.id)?;
        let runtime = match &meta.flatpak {
            Some(fp) => {
                let pinned = previous.as_ref().and_then(|p| p.runtime.as_deref());
                Some(match self.flatpak_runtime(fp, pinned) {
                    Ok(r) => r,
                    // From a registry: its Flatpak index may have it.
                    Err(_)
                        if berth_registry::remote::is_registry_ref(&origin)
                            && !berth_registry::remote::is_local_name(&origin)
                            && !Path::new(&origin).exists() =>
                    {
                        self.pull_flatpak_runtime(&origin, &fp.runtime, fe)?;
                        self.flatpak_runtime(fp, pinned)?
                    }
                    Err(e) => return Err(e),
                })
            }
            None => None,
        };
        // Moving an installed app onto another runtime image changes the
        // code it runs with its grants: that needs the user's yes.
        let runtime_change = match (&previous, &runtime) {
            (Some(p), Some(r)) if p.runtime.as_deref() != Some(r.digest.to_string().as_str()) => {
                Some(format!(
                    "{} (was {})",
                    r.digest.short(),
                    p.runtime
                        .as_deref()
                        .and_then(|d| Digest::parse(d).ok())
                        .map_or_else(|| "none".to_owned(), |d| d.short().to_owned())
                ))
            }
            _ => None,
        };
        let granted_before = previous
            .as_ref()
            .map(Deployment::granted)
            .transpose()?
            .unwrap_or_default();
        // Another program's name on this computer would let the app stand
        // in for it in the menu, in file associations and on the bus.
        if let Some(what) = desktop::host_conflict(self.store.root(), &meta.id) {
            return Err(Error::Refused(format!(
                "the app ID {} is already used on this computer by {what}; berth will not install an app under another program's name",
                berth_app::text::escape(&meta.id)
            )));
        }
        // Everything the menu gets is generated and checked before
        // anything is installed.
        let exports = desktop::prepare(&meta, &image, &self.store, fe)?;
        let home = user_home();
        let action = match &previous {
            None => Action::Install,
            Some(p) if p.image == entry.digest.to_string() => Action::Reinstall,
            Some(_) => Action::Update,
        };
        let new = match &previous {
            None => meta.permissions.review(&home),
            Some(_) => meta.permissions.added_since(&granted_before).review(&home),
        };
        Ok(Review {
            action,
            id: meta.id.clone(),
            name: meta.name.clone(),
            image: entry.digest.to_string(),
            origin,
            size: image_size(&image),
            shared: self.shared_bytes(&image, &meta.id),
            downloaded,
            permissions: meta.permissions.review(&home),
            new_permissions: new,
            highest_risk: meta.permissions.highest_risk(&home),
            runtime: meta
                .flatpak
                .as_ref()
                .zip(runtime.as_ref())
                .map(|(fp, r)| format!("{} (image {})", fp.runtime, r.digest.short())),
            runtime_change,
            left_out: meta
                .flatpak
                .as_ref()
                .map(|fp| fp.left_out.clone())
                .unwrap_or_default(),
            pending: Pending {
                entry: entry.clone(),
                meta,
                exports,
                previous: previous.map(|p| p.serial),
                runtime,
            },
        })
    }

    /// Bytes of `image`'s layers whose content (diff-id) the store's other
    /// images (installed runtimes and apps) have: they cost nothing more.
    fn shared_bytes(&self, image: &Image, key: &str) -> u64 {
        let mut theirs: HashSet<Digest> = HashSet::new();
        let mut roots: Vec<Digest> = self
            .apps
            .list()
            .iter()
            .filter(|d| d.app_id != key)
            .filter_map(|d| Digest::parse(&d.image).ok())
            .collect();
        roots.extend(
            self.store
                .images()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.digest),
        );
        for dg in roots.into_iter().filter(|d| *d != image.entry.digest) {
            if let Ok(e) = self.store.entry_by_digest(&dg)
                && let Ok(ids) = self.store.load_image(&e).and_then(|i| i.diff_ids())
            {
                theirs.extend(ids);
            }
        }
        let ids = image.diff_ids().unwrap_or_default();
        image
            .manifest
            .layers()
            .iter()
            .zip(ids)
            .filter(|(_, id)| theirs.contains(id))
            .map(|(l, _)| l.size())
            .sum()
    }
}
