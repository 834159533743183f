//! The oci-delta artifact (containers/oci-delta): an OCI manifest with
//! `artifactType` `application/vnd.io.github.containers.oci-delta.v1`
//! whose layers are the target image's manifest and config and, for each
//! layer the old image lacks, a tar-diff (or the layer itself). Its
//! `subject` is the target image, so a registry lists it among the
//! target's referrers (or, without the referrers API, in the index tagged
//! `sha256-<hex>`). The annotations name the image it applies to.
//!
//! `parse` reads untrusted bytes (bounded, every digest checked for form)
//! and is fuzzed; `build` writes the same form.

use berth_image::Digest;
use oci_spec::image::ImageManifest;

use crate::error::{Error, Result};

pub const ARTIFACT_TYPE: &str = "application/vnd.io.github.containers.oci-delta.v1";
pub const TAR_DIFF: &str = "application/vnd.tar-diff";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty config every artifact manifest points at.
pub const EMPTY_CONFIG: &[u8] = b"{}";
const CONTENT: &str = "io.github.containers.delta.content";
const TO: &str = "io.github.containers.delta.to";
const SOURCE: &str = "io.github.containers.delta.source";
const SOURCE_CONFIG: &str = "io.github.containers.delta.source-config";
const TARGET: &str = "io.github.containers.delta.target";

/// The largest artifact manifest berth reads.
pub const MAX_BYTES: u64 = 1 << 20;
const MAX_LAYERS: usize = 4096;

/// One layer of the target image, as the artifact carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaLayer {
    /// The target's layer blob this rebuilds (its digest in the target manifest).
    pub to: Digest,
    /// The blob in the artifact, and its size.
    pub blob: Digest,
    pub size: u64,
    /// A tar-diff; otherwise the layer itself, in `media_type`.
    pub tar_diff: bool,
    pub media_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The old image's manifest and config digests: the receiver needs
    /// an image with that config.
    pub source: Option<Digest>,
    pub source_config: Digest,
    /// The image it rebuilds: the `target` annotation, or the digest of
    /// the embedded manifest.
    pub target: Digest,
    pub target_config: Option<(Digest, u64)>,
    pub layers: Vec<DeltaLayer>,
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("the delta artifact {why}"))
}

/// Read an artifact manifest. Anything that is not a well-formed delta
/// artifact is an error (the caller then fetches whole layers).
pub fn parse(bytes: &[u8]) -> Result<Artifact> {
    if bytes.len() as u64 > MAX_BYTES {
        return Err(bad(format!(
            "is {} bytes, more than berth reads",
            bytes.len()
        )));
    }
    let m: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("is not a manifest: {e}")))?;
    if m.artifact_type()
        .as_ref()
        .map(ToString::to_string)
        .as_deref()
        != Some(ARTIFACT_TYPE)
    {
        return Err(bad("is not an oci-delta artifact"));
    }
    if m.layers().len() > MAX_LAYERS {
        return Err(bad(format!("has {} layers", m.layers().len())));
    }
    let empty = Default::default();
    let notes = m.annotations().as_ref().unwrap_or(&empty);
    let digest = |what: &str, s: Option<&String>| -> Result<Option<Digest>> {
        s.map(|s| Digest::parse(s).map_err(|_| bad(format!("has a bad {what} digest"))))
            .transpose()
    };
    let source = digest("source", notes.get(SOURCE))?;
    let source_config = digest("source config", notes.get(SOURCE_CONFIG))?
        .ok_or_else(|| bad("does not name the config of the image it applies to"))?;
    let mut target = digest("target", notes.get(TARGET))?;
    let mut target_config = None;
    let mut layers = Vec::new();
    for l in m.layers() {
        let blob = Digest::from_oci(l.digest()).map_err(|_| bad("has a bad layer digest"))?;
        let ann = l.annotations().as_ref().unwrap_or(&empty);
        match ann.get(CONTENT).map(String::as_str) {
            Some("image-manifest") => {
                if target.as_ref().is_some_and(|t| *t != blob) {
                    return Err(bad("names two target images"));
                }
                target = Some(blob);
            }
            Some("image-config") => target_config = Some((blob, l.size())),
            Some("image-layer") => {
                let Some(to) = digest("layer", ann.get(TO))? else {
                    continue;
                };
                let media_type = l.media_type().to_string();
                if layers.iter().any(|x: &DeltaLayer| x.to == to) {
                    return Err(bad(format!("has two layers for {to}")));
                }
                layers.push(DeltaLayer {
                    to,
                    blob,
                    size: l.size(),
                    tar_diff: media_type == TAR_DIFF,
                    media_type,
                });
            }
            _ => {}
        }
    }
    Ok(Artifact {
        source,
        source_config,
        target: target.ok_or_else(|| bad("does not name the image it rebuilds"))?,
        target_config,
        layers,
    })
}

/// A descriptor as JSON.
fn desc(
    media_type: &str,
    digest: &Digest,
    size: u64,
    notes: serde_json::Value,
) -> serde_json::Value {
    let mut d = serde_json::json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    if !notes.is_null() {
        d["annotations"] = notes;
    }
    d
}

/// What `build` needs to know of the two images.
pub struct Sides<'a> {
    pub source: &'a Digest,
    pub source_config: &'a Digest,
    /// The target manifest's digest, size and media type.
    pub target: (&'a Digest, u64, &'a str),
    /// The target config's digest, size and media type.
    pub target_config: (&'a Digest, u64, &'a str),
}

/// The artifact manifest for `layers` between the two images.
pub fn build(s: &Sides<'_>, layers: &[DeltaLayer]) -> Vec<u8> {
    let mut all = vec![
        desc(
            s.target.2,
            s.target.0,
            s.target.1,
            serde_json::json!({ CONTENT: "image-manifest" }),
        ),
        desc(
            s.target_config.2,
            s.target_config.0,
            s.target_config.1,
            serde_json::json!({ CONTENT: "image-config" }),
        ),
    ];
    for l in layers {
        all.push(desc(
            &l.media_type,
            &l.blob,
            l.size,
            serde_json::json!({ CONTENT: "image-layer", TO: l.to.to_string() }),
        ));
    }
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": desc(EMPTY, &Digest::of(EMPTY_CONFIG), EMPTY_CONFIG.len() as u64, serde_json::Value::Null),
        "layers": all,
        "subject": desc(s.target.2, s.target.0, s.target.1, serde_json::Value::Null),
        "annotations": {
            SOURCE: s.source.to_string(),
            SOURCE_CONFIG: s.source_config.to_string(),
            TARGET: s.target.0.to_string(),
        },
    });
    serde_json::to_vec(&m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn what_is_built_reads_back() {
        let (src, srcc, t, tc) = (d(1), d(2), d(3), d(4));
        let layers = vec![
            DeltaLayer {
                to: d(5),
                blob: d(6),
                size: 60,
                tar_diff: true,
                media_type: TAR_DIFF.into(),
            },
            DeltaLayer {
                to: d(7),
                blob: d(7),
                size: 70,
                tar_diff: false,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            },
        ];
        let bytes = build(
            &Sides {
                source: &src,
                source_config: &srcc,
                target: (&t, 300, MANIFEST),
                target_config: (&tc, 400, "application/vnd.oci.image.config.v1+json"),
            },
            &layers,
        );
        let a = parse(&bytes).unwrap();
        assert_eq!(a.source, Some(src));
        assert_eq!(a.source_config, srcc);
        assert_eq!(a.target, t);
        assert_eq!(a.target_config, Some((tc, 400)));
        assert_eq!(a.layers, layers);
    }

    #[test]
    fn what_is_not_a_delta_is_refused() {
        for (bytes, want) in [
            (&b"{"[..], "not a manifest"),
            (
                br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#,
                "not an oci-delta",
            ),
            (
                br#"{"schemaVersion":2,"artifactType":"application/vnd.io.github.containers.oci-delta.v1","config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#,
                "does not name the config",
            ),
            (
                br#"{"schemaVersion":2,"artifactType":"application/vnd.io.github.containers.oci-delta.v1","config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"annotations":{"io.github.containers.delta.source-config":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}}"#,
                "does not name the image it rebuilds",
            ),
        ] {
            let e = parse(bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
