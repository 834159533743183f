//! Image signatures and the trust policy. No Rust crate implements
//! cosign's keyed signing without pulling in the whole sigstore stack, so
//! berth uses a small documented format on ed25519 (docs/signatures.md),
//! stored the way cosign stores its own: an OCI manifest tagged
//! `sha256-<digest>.sig` in the image's repository. Everything here is pure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const SECRET_PREFIX: &str = "berth-ed25519-secret:";
pub const PUBLIC_PREFIX: &str = "berth-ed25519-public:";
pub const PAYLOAD_TYPE: &str = "application/vnd.berth.signature.v1+json";
pub const SIG_ANNOTATION: &str = "org.berth.signature";

/// The signed statement: this repository's manifest has this digest.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: String,
    pub repository: String,
    pub manifest_digest: String,
    pub key_id: String,
}

pub fn key_id(k: &VerifyingKey) -> String {
    berth_image::Digest::of(k.as_bytes()).to_string()
}

pub fn tag_for(digest: &berth_image::Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

fn decode32(s: &str, what: &str) -> Result<[u8; 32]> {
    let v = B64
        .decode(s.trim())
        .map_err(|_| Error::Invalid(format!("{what} is not base64")))?;
    v.try_into()
        .map_err(|_| Error::Invalid(format!("{what} is not 32 bytes")))
}

pub fn parse_secret(text: &str) -> Result<SigningKey> {
    let b = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        Error::Invalid(format!(
            "not a berth secret key (expected {SECRET_PREFIX}...)"
        ))
    })?;
    Ok(SigningKey::from_bytes(&decode32(b, "the secret key")?))
}

pub fn parse_public(text: &str) -> Result<VerifyingKey> {
    let b = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
        Error::Invalid(format!(
            "not a berth public key (expected {PUBLIC_PREFIX}...)"
        ))
    })?;
    VerifyingKey::from_bytes(&decode32(b, "the public key")?)
        .map_err(|_| Error::Invalid("the public key is not a valid ed25519 point".into()))
}

pub fn secret_text(k: &SigningKey) -> String {
    format!("{SECRET_PREFIX}{}\n", B64.encode(k.to_bytes()))
}

pub fn public_text(k: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}\n", B64.encode(k.as_bytes()))
}

/// Payload bytes and the base64 signature over them.
pub fn sign(k: &SigningKey, repository: &str, digest: &berth_image::Digest) -> (Vec<u8>, String) {
    let p = Payload {
        kind: PAYLOAD_TYPE.into(),
        repository: repository.into(),
        manifest_digest: digest.to_string(),
        key_id: key_id(&k.verifying_key()),
    };
    let bytes = serde_json::to_vec(&p).unwrap_or_default();
    let sig = k.sign(&bytes);
    (bytes, B64.encode(sig.to_bytes()))
}

/// Check a signature: a trusted key signed this repository and digest.
pub fn verify(
    keys: &[VerifyingKey],
    payload: &[u8],
    sig_b64: &str,
    repository: &str,
    digest: &berth_image::Digest,
) -> Result<()> {
    let raw = B64
        .decode(sig_b64.trim())
        .map_err(|_| Error::Invalid("the signature is not base64".into()))?;
    let sig = Signature::from_slice(&raw)
        .map_err(|_| Error::Invalid("the signature is malformed".into()))?;
    if !keys.iter().any(|k| k.verify(payload, &sig).is_ok()) {
        return Err(Error::Invalid(
            "the signature was not made by any trusted key".into(),
        ));
    }
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| Error::Invalid(format!("the signed payload is not valid: {e}")))?;
    if p.kind != PAYLOAD_TYPE
        || p.repository != repository
        || p.manifest_digest != digest.to_string()
    {
        return Err(Error::Invalid(format!(
            "the signature is for {}@{}, not {repository}@{digest}",
            p.repository, p.manifest_digest
        )));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Accept,
    Reject,
    Signed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// `host[:port]/path` prefix, matched on whole components.
    pub prefix: String,
    pub policy: Rule,
    #[serde(default)]
    pub keys: Vec<String>,
}

/// `policy.toml`: a default and per-registry/namespace scopes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "accept")]
    pub default: Rule,
    #[serde(default, rename = "scope")]
    pub scopes: Vec<Scope>,
}

fn accept() -> Rule {
    Rule::Accept
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default: Rule::Accept,
            scopes: vec![],
        }
    }
}

impl Policy {
    pub fn parse(text: &str, file: &str) -> Result<Policy> {
        toml::from_str(text).map_err(|e| Error::Invalid(format!("{file}: {e}")))
    }

    /// The most specific scope for `repo` (`host/path`), else the default.
    pub fn decide(&self, repo: &str) -> (Rule, &[String]) {
        self.scopes
            .iter()
            .filter(|s| {
                let p = s.prefix.trim_end_matches('/');
                repo == p || repo.starts_with(&format!("{p}/"))
            })
            .max_by_key(|s| s.prefix.len())
            .map_or((self.default, &[][..]), |s| (s.policy, &s.keys[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn keys_round_trip_and_signatures_bind_repo_and_digest() {
        let k = key(1);
        assert_eq!(
            parse_secret(&secret_text(&k)).unwrap().to_bytes(),
            k.to_bytes()
        );
        let pubk = parse_public(&public_text(&k.verifying_key())).unwrap();
        let d = berth_image::Digest::of(b"manifest");
        let (payload, sig) = sign(&k, "localhost:5000/apps/x", &d);
        verify(&[pubk], &payload, &sig, "localhost:5000/apps/x", &d).unwrap();
        let other = berth_image::Digest::of(b"tampered");
        assert!(verify(&[pubk], &payload, &sig, "localhost:5000/apps/x", &other).is_err());
        assert!(verify(&[pubk], &payload, &sig, "localhost:5000/apps/y", &d).is_err());
        let stranger = key(2).verifying_key();
        assert!(verify(&[stranger], &payload, &sig, "localhost:5000/apps/x", &d).is_err());
        let mut forged = payload.clone();
        forged[10] ^= 1;
        assert!(verify(&[pubk], &forged, &sig, "localhost:5000/apps/x", &d).is_err());
        assert!(parse_public("nonsense").is_err());
        assert!(verify(&[pubk], &payload, "%%", "r", &d).is_err());
    }

    #[test]
    fn policy_scopes() {
        let p = Policy::parse(
            r#"
default = "reject"
[[scope]]
prefix = "localhost:5000"
policy = "accept"
[[scope]]
prefix = "localhost:5000/apps"
policy = "signed"
keys = ["/k.pub"]
"#,
            "p",
        )
        .unwrap();
        assert_eq!(p.decide("localhost:5000/apps/x").0, Rule::Signed);
        assert_eq!(p.decide("localhost:5000/appsx/y").0, Rule::Accept);
        assert_eq!(p.decide("other:1/x").0, Rule::Reject);
        assert!(Policy::parse("default = \"maybe\"", "p").is_err());
        assert_eq!(Policy::default().decide("x/y").0, Rule::Accept);
    }
}
