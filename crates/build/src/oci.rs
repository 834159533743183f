//! Assemble new images as an OCI layout directory. The binary imports it
//! through the normal verified import, which skips blobs the store already
//! has (a built app's runtime layers are never copied).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use berth_image::Digest;
use berth_image::store::{REF_NAME, new_index};
use oci_spec::image::{
    Arch, Config, Descriptor, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType,
    Os, RootFs,
};

use crate::error::{Error, IoContext, Result};
use crate::layer::{LayerBlob, MEDIA_TYPE_GZIP};

pub use berth_image::import::{BASE_DIGEST, BASE_NAME};

/// What a runtime image says of itself: "runtime" or "sdk", the base it
/// was made from, and its package list (`berth runtime packages`).
pub const LABEL_KIND: &str = "org.berth.runtime.kind";
pub const LABEL_FROM: &str = "org.berth.runtime.from";
pub const LABEL_PACKAGES: &str = "org.berth.runtime.packages";

/// A layer of a new image: one just written, or one reused from the base.
#[derive(Clone, Debug)]
pub struct LayerRef {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

impl LayerRef {
    /// An image's layers as they are (descriptor and diff-id, in order).
    pub fn of_image(img: &berth_image::Image) -> Result<Vec<LayerRef>> {
        Ok(img
            .manifest
            .layers()
            .iter()
            .zip(img.diff_ids()?)
            .map(|(d, diff_id)| LayerRef {
                descriptor: d.clone(),
                diff_id,
            })
            .collect())
    }

    pub fn from_blob(b: &LayerBlob) -> LayerRef {
        LayerRef {
            descriptor: Descriptor::new(
                MediaType::Other(MEDIA_TYPE_GZIP.into()),
                b.size,
                b.digest.to_oci(),
            ),
            diff_id: b.diff_id.clone(),
        }
    }
}

pub struct NewImage {
    pub name: String,
    pub config: Config,
    pub layers: Vec<LayerRef>,
    /// Manifest annotations (base name and digest).
    pub annotations: BTreeMap<String, String>,
    /// Seconds since the epoch for `created`.
    pub created: u64,
}

/// JSON with sorted keys: oci-spec keeps labels in a HashMap, and a
/// reproducible build needs the same config bytes every time.
fn canonical_json<T: serde::Serialize>(v: &T, what: &str) -> Result<Vec<u8>> {
    let value = serde_json::to_value(v).map_err(|e| Error::invalid(what, e.to_string()))?;
    serde_json::to_vec(&value).map_err(|e| Error::invalid(what, e.to_string()))
}

/// RFC 3339 in UTC from seconds (days-from-civil, Howard Hinnant's method).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The config and manifest bytes of a new image.
pub fn image_json(img: &NewImage) -> Result<(Vec<u8>, Vec<u8>)> {
    let rootfs = RootFs::default();
    let mut rootfs = rootfs;
    rootfs.set_typ("layers".into());
    rootfs.set_diff_ids(img.layers.iter().map(|l| l.diff_id.to_string()).collect());
    let mut cfg = ImageConfiguration::default();
    cfg.set_architecture(Arch::Amd64);
    if std::env::consts::ARCH == "aarch64" {
        cfg.set_architecture(Arch::ARM64);
    }
    cfg.set_os(Os::Linux);
    cfg.set_created(Some(rfc3339(img.created)));
    cfg.set_config(Some(img.config.clone()));
    cfg.set_rootfs(rootfs);
    let config = canonical_json(&cfg, "image config")?;
    let mut m: ImageManifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config.len() as u64,
            Digest::of(&config).to_oci(),
        ))
        .layers(
            img.layers
                .iter()
                .map(|l| l.descriptor.clone())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(|e| Error::invalid("image manifest", e.to_string()))?;
    if !img.annotations.is_empty() {
        m.set_annotations(Some(img.annotations.clone().into_iter().collect()));
    }
    let manifest = canonical_json(&m, "image manifest")?;
    Ok((config, manifest))
}

/// Write `images` and the new layer `blobs` (moved in) as an OCI layout at
/// `dir`. Returns each image's manifest digest.
pub fn write_layout(dir: &Path, images: &[NewImage], blobs: &[LayerBlob]) -> Result<Vec<Digest>> {
    let sha = dir.join("blobs/sha256");
    fs::create_dir_all(&sha).ctx(|| format!("creating {}", sha.display()))?;
    let put = |bytes: &[u8]| -> Result<Digest> {
        let d = Digest::of(bytes);
        let p = sha.join(d.hex());
        fs::write(&p, bytes).ctx(|| format!("writing {}", p.display()))?;
        Ok(d)
    };
    for b in blobs {
        let p = sha.join(b.digest.hex());
        fs::rename(&b.path, &p).ctx(|| format!("moving {} into the layout", b.path.display()))?;
    }
    let mut descs = Vec::new();
    let mut digests = Vec::new();
    for img in images {
        let (config, manifest) = image_json(img)?;
        put(&config)?;
        let d = put(&manifest)?;
        let mut desc = Descriptor::new(MediaType::ImageManifest, manifest.len() as u64, d.to_oci());
        desc.set_annotations(Some(HashMap::from([(
            REF_NAME.to_owned(),
            img.name.clone(),
        )])));
        descs.push(desc);
        digests.push(d);
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .ctx(|| format!("writing {}/oci-layout", dir.display()))?;
    let index = canonical_json(&new_index(descs), "index.json")?;
    fs::write(dir.join("index.json"), index)
        .ctx(|| format!("writing {}/index.json", dir.display()))?;
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn same_input_same_bytes() {
        let mut c = Config::default();
        let labels: HashMap<String, String> = (0..50)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        c.set_labels(Some(labels));
        let img = NewImage {
            name: "x:1".into(),
            config: c,
            layers: vec![],
            annotations: BTreeMap::from([(BASE_NAME.into(), "rt:1".into())]),
            created: 5,
        };
        let a = image_json(&img).unwrap();
        let mut c2 = img.config.clone();
        let mut l2: Vec<_> = c2.labels().clone().unwrap().into_iter().collect();
        l2.reverse();
        c2.set_labels(Some(l2.into_iter().collect()));
        let b = image_json(&NewImage { config: c2, ..img }).unwrap();
        assert_eq!(a, b);
    }
}
