//! Flatpak's registry index (flatpak-oci-specs, `registry-index.md`): how
//! a registry of Flatpaks, as Fedora runs one, says which image is which
//! Flatpak ref. berth reads it to find a Flatpak app's runtime in the
//! registry the app came from. The document is the registry's, so it is
//! hostile input: parsed here, bounded, and its names and digests checked
//! before anything is fetched by them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};

/// An index larger than this is refused (Fedora's whole index is a few MB).
pub const MAX_INDEX_BYTES: usize = 32 << 20;

/// The query: images with a Flatpak ref, for this OS and `arch` (OCI's
/// name), parameters sorted as the protocol asks, so caches can share.
pub fn query(arch: &str) -> String {
    let mut q = [
        format!("architecture={arch}"),
        "label%3Aorg.flatpak.ref%3Aexists=1".to_owned(),
        "os=linux".to_owned(),
    ];
    q.sort();
    q.join("&")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Doc {
    #[serde(default)]
    registry: String,
    #[serde(default)]
    results: Vec<Repo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Repo {
    name: String,
    #[serde(default)]
    images: Vec<Image>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Image {
    digest: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn valid_repository(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && !c.starts_with(['.', '_', '-'])
        })
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The repository and manifest digest of the image whose label
/// `org.flatpak.ref` is `flatpak_ref`, for `arch`. An index that sends
/// its images to another registry (an absolute `Registry`) is not
/// followed: only images of the registry asked are.
pub fn find(doc: &[u8], flatpak_ref: &str, arch: &str) -> Result<Option<(String, String)>> {
    if doc.len() > MAX_INDEX_BYTES {
        return Err(Error::Invalid(format!(
            "the registry's Flatpak index is over {MAX_INDEX_BYTES} bytes"
        )));
    }
    let d: Doc = serde_json::from_slice(doc)
        .map_err(|e| Error::Invalid(format!("the registry's Flatpak index is not valid: {e}")))?;
    if d.registry.contains("://") {
        return Ok(None);
    }
    for r in &d.results {
        if !valid_repository(&r.name) {
            continue;
        }
        for i in &r.images {
            if i.architecture == arch
                && i.labels.get("org.flatpak.ref").map(String::as_str) == Some(flatpak_ref)
                && valid_digest(&i.digest)
            {
                return Ok(Some((r.name.clone(), i.digest.clone())));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn doc(registry: &str, name: &str, digest: &str, arch: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "Registry": registry,
            "Results": [{"Name": name, "Images": [{
                "Tags": ["latest"], "Digest": digest, "MediaType": "x", "OS": "linux",
                "Architecture": arch,
                "Labels": {"org.flatpak.ref": "runtime/org.x.Platform/x86_64/1"}
            }]}]
        }))
        .unwrap()
    }

    #[test]
    fn finds_the_ref_and_nothing_else() {
        let r = "runtime/org.x.Platform/x86_64/1";
        assert_eq!(
            find(&doc("/", "f39/runtime", D, "amd64"), r, "amd64").unwrap(),
            Some(("f39/runtime".into(), D.into()))
        );
        assert_eq!(
            find(&doc("/", "f39/runtime", D, "arm64"), r, "amd64").unwrap(),
            None
        );
        assert_eq!(
            find(
                &doc("/", "f39/runtime", D, "amd64"),
                "runtime/org.y/x86_64/1",
                "amd64"
            )
            .unwrap(),
            None
        );
        for (reg, name, digest) in [
            ("https://elsewhere.example/", "f39/runtime", D),
            ("/", "../../etc", D),
            ("/", "F39/Runtime", D),
            ("/", "a//b", D),
            ("/", "f39/runtime", "sha256:../../x"),
            ("/", "f39/runtime", "md5:00"),
        ] {
            assert_eq!(
                find(&doc(reg, name, digest, "amd64"), r, "amd64").unwrap(),
                None,
                "{reg} {name} {digest}"
            );
        }
        assert!(find(b"not json", r, "amd64").is_err());
        assert!(find(b"{}", r, "amd64").unwrap().is_none());
        assert_eq!(
            query("amd64"),
            "architecture=amd64&label%3Aorg.flatpak.ref%3Aexists=1&os=linux"
        );
    }
}
