//! Flatpak OCI apps at review: the runtime they name, found in the store
//! by its ref, and their menu entry and icon, read from the image's
//! `export/` as Flatpak exports them. The permissions come from the
//! image's metadata (berth_app::flatpak_image); the layout at run time
//! from berth_launch::flatpak.

use berth_app::AppMeta;
use berth_app::flatpak_image::{FlatpakApp, FlatpakRef};
use berth_image::{Image, ImageEntry};

use crate::desktop::read_from_image;
use crate::error::{Context, Error, Result};
use crate::{Engine, Frontend, app_of};

/// Icon sizes looked for, best first.
const ICONS: [&str; 6] = [
    "scalable/apps/{}.svg",
    "512x512/apps/{}.png",
    "256x256/apps/{}.png",
    "128x128/apps/{}.png",
    "64x64/apps/{}.png",
    "48x48/apps/{}.png",
];

impl Engine {
    /// The app an image declares (see [`app_of`]), with a Flatpak app's
    /// name, menu entry and icon read from its `export/`.
    pub(crate) fn app_meta(&self, image: &Image) -> Result<AppMeta> {
        let mut meta = app_of(image)?;
        let Some(fp) = meta.flatpak.clone() else {
            return Ok(meta);
        };
        let host = FlatpakRef::host_arch();
        if fp.app.arch != host {
            return Err(Error::Refused(format!(
                "{} is built for {}; this computer is {host}",
                fp.app, fp.app.arch
            )));
        }
        let id = &fp.app.id;
        let path = format!("/export/share/applications/{id}.desktop");
        if let Some(bytes) = read_from_image(&self.store, image, &path)? {
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::Refused(format!("{path} in the image is not UTF-8")))?;
            if let Some(name) = berth_app::desktop::entry_name(&text) {
                meta.name = name;
            }
            meta.desktop = Some(text);
        }
        for pattern in ICONS {
            let p = format!("/export/share/icons/hicolor/{}", pattern.replace("{}", id));
            if read_from_image(&self.store, image, &p)?.is_some() {
                meta.icon = Some(p);
                break;
            }
        }
        Ok(meta)
    }

    /// The runtime a Flatpak app would run on: the one its installed
    /// deployment is pinned to while that still is this runtime, else the
    /// store's. Refused when the store has none, by its exact ref.
    pub(crate) fn flatpak_runtime(
        &self,
        fp: &FlatpakApp,
        pinned: Option<&str>,
    ) -> Result<ImageEntry> {
        let pinned = pinned.and_then(|d| berth_image::Digest::parse(d).ok());
        berth_launch::flatpak::find_runtime(&self.store, &fp.runtime, pinned.as_ref())
            .map_err(|e| Error::Refused(e.to_string()))
    }

    /// Fetch a Flatpak runtime from the registry an app came from, found
    /// in that registry's Flatpak index by its exact ref and pulled by
    /// digest under the trust policy, as any pull.
    pub(crate) fn pull_flatpak_runtime(
        &self,
        origin: &str,
        r: &FlatpakRef,
        fe: &dyn Frontend,
    ) -> Result<()> {
        let remote = berth_registry::Remote::new(origin)?;
        let arch = match r.arch.as_str() {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "i386" => "386",
            a => a,
        };
        fe.info(&format!(
            "The Flatpak runtime {r} is not on this computer; looking for it in {}",
            remote.registry()
        ));
        let doc = remote.flatpak_index(arch)?;
        let (repo, digest) = berth_registry::flatpak_index::find(&doc, &r.to_string(), arch)?
            .ok_or_else(|| {
                Error::Refused(format!(
                    "the Flatpak runtime {r} is neither in berth's store nor in the Flatpak index of {}",
                    remote.registry()
                ))
            })?;
        let reference = format!("{}/{repo}@{digest}", remote.registry());
        self.pull(&reference, fe)
            .with_context(|| format!("fetching the Flatpak runtime {r} from {reference}"))?;
        Ok(())
    }
}
