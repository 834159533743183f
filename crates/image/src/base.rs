//! Which image in the store an image is built on: its base (a runtime),
//! matched by content. The base's layers are the bottom of the image,
//! compared by diff-id, never by compressed digest: buildah and podman
//! recompress the layers of the image they build on, and podman names a
//! base digest of its own making.

use crate::digest::Digest;
use crate::error::Result;
use crate::import::{BASE_DIGEST, BASE_NAME};
use crate::store::{Image, ImageEntry, Store};

/// How the base was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// The manifest's `org.opencontainers.image.base.digest`.
    Digest,
    /// The manifest's `org.opencontainers.image.base.name`.
    Name,
    /// The image in the store whose layers are the most of the image's
    /// bottom layers.
    Content,
}

/// The label that makes an image an app (docs/app-labels.md).
const APP_ID: &str = "org.berth.app.id";

/// Can `img` be another image's base? A runtime or plain base image: not
/// an app. An app's top layers are its own (and may be private); matching
/// by content must never take them for a runtime, nor take an older
/// version of the app for the base of a newer one.
pub fn can_be_base(img: &Image) -> bool {
    app_id_of_config(&img.config).is_none() && !is_flatpak_app(&img.labels())
}

/// A Flatpak app image (`org.flatpak.ref` `app/...`) is an app too, though
/// it carries no berth app ID; Flatpak runtimes (`runtime/...`) are not.
fn is_flatpak_app(labels: &std::collections::BTreeMap<String, String>) -> bool {
    labels
        .get("org.flatpak.ref")
        .is_some_and(|r| !r.trim_start().starts_with("runtime/"))
}

/// An image's base in the store.
#[derive(Clone, Debug)]
pub struct Base {
    pub entry: ImageEntry,
    /// How many of the image's layers are the base's.
    pub layers: usize,
    pub found: Found,
}

/// `base`'s layers are the bottom of `image`'s, and `image` has more.
pub fn is_base_of(base: &[Digest], image: &[Digest]) -> bool {
    !base.is_empty() && base.len() < image.len() && image.starts_with(base)
}

/// The base of `image` in the store: the one its annotations name when
/// its layers match, else the image whose layers are the longest run of
/// `image`'s bottom layers. None if no image in the store is.
pub fn find_base(store: &Store, image: &Image) -> Result<Option<Base>> {
    let ids = image.diff_ids()?;
    let ann = image.manifest.annotations().clone().unwrap_or_default();
    let layers_of = |e: &ImageEntry| {
        store.load_image(e).and_then(|i| {
            if can_be_base(&i) {
                i.diff_ids()
            } else {
                Ok(Vec::new())
            }
        })
    };
    if let Some(d) = ann.get(BASE_DIGEST).and_then(|d| Digest::parse(d).ok())
        && let Ok(e) = store.entry_by_digest(&d)
        && let Ok(base) = layers_of(&e)
        && is_base_of(&base, &ids)
    {
        return Ok(Some(Base {
            entry: e,
            layers: base.len(),
            found: Found::Digest,
        }));
    }
    if let Some(n) = ann.get(BASE_NAME)
        && let Ok(e) = store.resolve(n)
        && let Ok(base) = layers_of(&e)
        && is_base_of(&base, &ids)
    {
        return Ok(Some(Base {
            entry: e,
            layers: base.len(),
            found: Found::Name,
        }));
    }
    let mut best: Option<Base> = None;
    for e in store.images()? {
        if e.digest == image.entry.digest {
            continue;
        }
        let Ok(base) = layers_of(&e) else { continue };
        if is_base_of(&base, &ids) && best.as_ref().is_none_or(|b| base.len() > b.layers) {
            best = Some(Base {
                entry: e,
                layers: base.len(),
                found: Found::Content,
            });
        }
    }
    Ok(best)
}

/// How many of `diff_ids`' bottom layers are, in order, the bottom layers
/// of a runtime (an image that is not an app, [`can_be_base`]) in the
/// store, each unpacked there: the most that a thin bundle or a pull may
/// leave out. Never all of them: an image brings at least its top layer.
/// 0 if none.
pub fn stored_base_run(store: &Store, diff_ids: &[Digest]) -> Result<usize> {
    let mut best = 0;
    for e in store.images()? {
        let Ok(img) = store.load_image(&e) else {
            continue;
        };
        if !can_be_base(&img) {
            continue;
        }
        let Ok(other) = img.diff_ids() else {
            continue;
        };
        let common = other
            .iter()
            .zip(diff_ids)
            .take_while(|(a, b)| a == b)
            .count()
            .min(diff_ids.len().saturating_sub(1));
        if common > best && diff_ids[..common].iter().all(|d| store.has_layer(d)) {
            best = common;
        }
    }
    Ok(best)
}

/// Every layer of the runtimes in the store (images that are not apps,
/// [`can_be_base`]) that is unpacked there. A pull or an input may leave
/// these out wherever they are in an image: runtime content is shared by
/// design, and a runtime update that changes one chunk keeps the others
/// (`runtime create --chunks`). An app's own layers are never lent this way.
pub fn runtime_layers(store: &Store) -> Result<std::collections::HashSet<Digest>> {
    let mut out = std::collections::HashSet::new();
    for e in store.images()? {
        let Ok(img) = store.load_image(&e) else {
            continue;
        };
        if !can_be_base(&img) {
            continue;
        }
        let Ok(ids) = img.diff_ids() else { continue };
        out.extend(ids.into_iter().filter(|d| store.has_layer(d)));
    }
    Ok(out)
}

/// The app ID in an image config's bytes (its labels), if any. Read as
/// plain JSON: a config oci-spec would not take is still an app's.
pub fn app_id_of_config_bytes(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("config")?
        .get("Labels")?
        .get(APP_ID)?
        .as_str()
        .map(str::to_owned)
}

/// The app ID an image's config labels declare, if any.
pub fn app_id_of_config(config: &oci_spec::image::ImageConfiguration) -> Option<String> {
    config
        .config()
        .as_ref()
        .and_then(|c| c.labels().as_ref())
        .and_then(|l| l.get(APP_ID).cloned())
}

/// Layer blobs an input may leave out because an earlier version of the
/// same app (an image in the store declaring `app_id`) has them, read and
/// recorded as these layers: what an update of an app shares with the
/// version installed. Another app's layers are never lent.
pub fn same_app_blobs(store: &Store, app_id: &str) -> Result<Vec<(Digest, Digest)>> {
    let mut out = Vec::new();
    for e in store.images()? {
        let Ok(img) = store.load_image(&e) else {
            continue;
        };
        if app_id_of_config(&img.config).as_deref() != Some(app_id) {
            continue;
        }
        let (Ok(blobs), Ok(ids)) = (img.layer_digests(), img.diff_ids()) else {
            continue;
        };
        out.extend(blobs.into_iter().zip(ids).filter(|(b, d)| {
            // Read as that layer, or held as that content by this
            // app's earlier version (a layer rebuilt from a delta,
            // checked against its diff-id): the same content the
            // app runs with already.
            store.holds_layer_blob(b, d)
                || (store.has_layer(d)
                    && store
                        .elided(b)
                        .is_some_and(|e| e.diff_id == *d && store.can_send(&e)))
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn a_base_is_a_strict_bottom_run() {
        assert!(is_base_of(&[d(1)], &[d(1), d(2)]));
        assert!(is_base_of(&[d(1), d(2)], &[d(1), d(2), d(3)]));
        assert!(!is_base_of(&[d(1), d(2)], &[d(1), d(2)]), "not itself");
        assert!(!is_base_of(&[d(2)], &[d(1), d(2)]), "from the bottom");
        assert!(!is_base_of(&[], &[d(1)]), "nothing is no base");
        assert!(!is_base_of(&[d(1), d(3)], &[d(1), d(2), d(3)]));
    }
}
