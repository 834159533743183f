//! One registry repository: resolve, fetch blobs, push.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_image::Digest;
use berth_image::progress::Progress;
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Blobs fetched at once.
const PARALLEL: usize = 4;

pub struct Remote {
    rt: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
    /// Where it is fetched from (a mirror or location may stand in).
    pub reference: Reference,
    /// The repository as the user named it (`host/path`), which policies
    /// and signatures are about.
    logical: String,
    /// The manifest, when finding the place to fetch from asked already.
    resolved: std::sync::Mutex<Option<Resolved>>,
    /// The full reference the user's name stood for (a short name
    /// completed by the search registries).
    named: String,
    /// `scheme://host[:port]` of the registry fetched from, and how to
    /// trust it, for requests outside the distribution protocol (the
    /// Flatpak index).
    base: String,
    roots: Vec<Vec<u8>>,
    unverified: bool,
}

/// How to reach a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// TLS, verified (loopback: plain HTTP, as Docker assumes).
    Default,
    /// An insecure registry: TLS without verification...
    TlsUnverified,
    /// ...or plain HTTP.
    Http,
}

impl Mode {
    fn describe(self) -> &'static str {
        match self {
            Mode::Default => "TLS",
            Mode::TlsUnverified => "insecure: TLS, unverified",
            Mode::Http => "insecure: plain HTTP",
        }
    }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// A resolved manifest (for this platform) and its digest.
pub struct Resolved {
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
}

/// Does `s` name a registry (its first component is a host)? Local image
/// names never have one, so `install NAME` stays unambiguous.
pub fn is_registry_ref(s: &str) -> bool {
    let Some((first, rest)) = s.split_once('/') else {
        return false;
    };
    !rest.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost")
}

/// `localhost/NAME` without a port: podman's name for a local build, not
/// a registry to fetch from (or update from) again.
pub fn is_local_name(s: &str) -> bool {
    s.strip_prefix("localhost/").is_some_and(|r| !r.is_empty())
}

/// Loopback registries speak plain HTTP, as Docker assumes; others need
/// TLS unless listed in BERTH_INSECURE_REGISTRIES (comma-separated).
fn plain_http(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
        || std::env::var("BERTH_INSECURE_REGISTRIES")
            .is_ok_and(|l| l.split(',').any(|r| r.trim() == registry))
}

impl Remote {
    /// A repository to fetch from, as the containers configuration says:
    /// a short name tried in each of `unqualified-search-registries`, a
    /// prefix rewritten to its location, its mirrors tried first, insecure
    /// registries over unverified TLS and then plain HTTP, blocked ones
    /// refused. With more than one place to try, each is asked for the
    /// manifest until one has it (kept for [`Remote::resolve`]).
    pub fn new(reference: &str) -> Result<Remote> {
        Remote::new_checked(reference, &|_| Ok(()))
    }

    /// As [`Remote::new`], asking `allow` about each full reference before
    /// any request is made for it (trust policies): a refused candidate of
    /// a short name is skipped, a refused full reference is the error.
    pub fn new_checked(reference: &str, allow: &dyn Fn(&str) -> Result<()>) -> Result<Remote> {
        let conf = crate::containers::Registries::load()?;
        let candidates = if is_registry_ref(reference) {
            vec![reference.to_owned()]
        } else {
            let c = conf.expand_short(reference);
            if Reference::from_str(reference).is_err() {
                return Err(Error::BadReference(reference.to_owned()));
            }
            if c.is_empty() {
                return Err(Error::Invalid(format!(
                    "{reference} names no registry, and registries.conf lists no unqualified-search-registries to look in: use HOST[:PORT]/NAME[:TAG|@DIGEST], e.g. localhost:5000/apps/editor:1.0 (docs/registries.md)"
                )));
            }
            c
        };
        let short = candidates.len() > 1 || !is_registry_ref(reference);
        let mut tries: Vec<(String, String, Mode)> = Vec::new();
        let mut refused = Vec::new();
        for c in &candidates {
            // Policies and blocks first: a refused registry is not asked.
            let endpoints = allow(c).and_then(|()| conf.endpoints(c));
            let endpoints = match endpoints {
                Ok(e) => e,
                Err(e) if short => {
                    refused.push(format!("{c}: {e}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for e in endpoints {
                if e.insecure {
                    tries.push((c.clone(), e.reference.clone(), Mode::TlsUnverified));
                    tries.push((c.clone(), e.reference, Mode::Http));
                } else {
                    tries.push((c.clone(), e.reference, Mode::Default));
                }
            }
        }
        if let [(logical, physical, mode)] = tries.as_slice() {
            return Remote::at(logical, physical, *mode);
        }
        let mut failed = refused;
        for (logical, physical, mode) in &tries {
            let r = match Remote::at(logical, physical, *mode) {
                Ok(r) => r,
                Err(e) => {
                    failed.push(format!("{physical}: {e}"));
                    continue;
                }
            };
            match r.resolve_uncached() {
                Ok(res) => {
                    *r.resolved
                        .lock()
                        .map_err(|_| Error::Invalid("lock poisoned".into()))? = Some(res);
                    return Ok(r);
                }
                Err(e) => failed.push(format!("{physical} ({}): {}", mode.describe(), chain(&e))),
            }
        }
        Err(Error::Invalid(format!(
            "no registry had {reference}; tried {}",
            failed.join("; ")
        )))
    }

    /// The repository to push to: its location (no mirrors, no search).
    pub fn for_push(reference: &str) -> Result<Remote> {
        if !is_registry_ref(reference) {
            return Err(Error::BadReference(reference.to_owned()));
        }
        let conf = crate::containers::Registries::load()?;
        let e = conf
            .endpoints(reference)?
            .pop()
            .ok_or_else(|| Error::BadReference(reference.to_owned()))?;
        let mode = if e.insecure {
            Mode::Http
        } else {
            Mode::Default
        };
        Remote::at(reference, &e.reference, mode)
    }

    /// A client for `physical`, known to policies and signatures as
    /// `logical`.
    fn at(logical: &str, physical: &str, mode: Mode) -> Result<Remote> {
        let r =
            Reference::from_str(physical).map_err(|_| Error::BadReference(physical.to_owned()))?;
        let l =
            Reference::from_str(logical).map_err(|_| Error::BadReference(logical.to_owned()))?;
        let registry = r.resolve_registry().to_owned();
        let protocol = if mode == Mode::Http || plain_http(&registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let auth = match crate::auth::for_registry(&registry)? {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        let mut extra_root_certificates = Vec::new();
        let mut roots = Vec::new();
        for f in crate::containers::ca_files(&registry) {
            let data = std::fs::read(&f).map_err(|source| Error::Io {
                context: format!("reading {}", f.display()),
                source,
            })?;
            roots.push(data.clone());
            extra_root_certificates.push(oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data,
            });
        }
        let base = format!(
            "{}://{registry}",
            if protocol == ClientProtocol::Http {
                "http"
            } else {
                "https"
            }
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                context: "starting the network runtime".into(),
                source,
            })?;
        let client = Client::new(ClientConfig {
            protocol,
            accept_invalid_certificates: mode == Mode::TlsUnverified,
            extra_root_certificates,
            ..Default::default()
        });
        Ok(Remote {
            rt,
            client,
            auth,
            logical: format!("{}/{}", l.resolve_registry(), l.repository()),
            resolved: std::sync::Mutex::new(None),
            named: logical.to_owned(),
            reference: r,
            base,
            roots,
            unverified: mode == Mode::TlsUnverified,
        })
    }

    fn err(
        &self,
        what: impl Into<String>,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> Error {
        let registry = self.reference.resolve_registry().to_owned();
        let what = what.into();
        move |source| Error::Registry {
            registry,
            what,
            source,
        }
    }

    /// The manifest for this platform, verified against its digest.
    pub fn resolve(&self) -> Result<Resolved> {
        if let Some(r) = self.resolved.lock().ok().and_then(|mut g| g.take()) {
            return Ok(r);
        }
        self.resolve_uncached()
    }

    fn resolve_uncached(&self) -> Result<Resolved> {
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
        let (bytes, _) = self
            .rt
            .block_on(
                self.client
                    .pull_manifest_raw(&self.reference, &self.auth, &accept),
            )
            .map_err(self.err(format!("fetching the manifest of {}", self.reference)))?;
        let digest = Digest::of(&bytes);
        if let Some(want) = self.reference.digest()
            && want != digest.to_string()
        {
            return Err(Error::Invalid(format!(
                "the registry sent a manifest with digest {digest}, not the {want} asked for; refusing it"
            )));
        }
        let mt = media_type_of(&bytes);
        if mt == OCI_INDEX || mt == DOCKER_LIST {
            let index: oci_spec::image::ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Invalid(format!("image index: {e}")))?;
            let arch = match std::env::consts::ARCH {
                "aarch64" => "arm64",
                _ => "amd64",
            };
            let m = index
                .manifests()
                .iter()
                .find(|m| {
                    m.platform().as_ref().is_some_and(|p| {
                        p.os().to_string() == "linux" && p.architecture().to_string() == arch
                    })
                })
                .ok_or_else(|| {
                    Error::Invalid(format!("{} has no linux/{arch} image", self.reference))
                })?;
            let by_digest = self.reference.clone_with_digest(m.digest().to_string());
            let (bytes, _) = self
                .rt
                .block_on(
                    self.client
                        .pull_manifest_raw(&by_digest, &self.auth, &accept),
                )
                .map_err(self.err("fetching the platform manifest"))?;
            let digest = Digest::of(&bytes);
            if digest.to_string() != m.digest().to_string() {
                return Err(Error::Invalid(format!(
                    "platform manifest digest mismatch: expected {}, got {digest}",
                    m.digest()
                )));
            }
            let media_type = media_type_of(&bytes);
            return Ok(Resolved {
                manifest: bytes.to_vec(),
                digest,
                media_type,
            });
        }
        Ok(Resolved {
            manifest: bytes.to_vec(),
            digest,
            media_type: mt,
        })
    }

    /// Fetch blobs (digest, size) into `dir/blobs/sha256/`, several at a
    /// time. A `<hex>.partial` left by an interrupted pull is continued with
    /// a range request. Every blob is verified before it gets its final
    /// name. Returns the bytes downloaded.
    pub fn fetch(
        &self,
        blobs: &[(Digest, u64)],
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let sha = dir.join("blobs/sha256");
        std::fs::create_dir_all(&sha).map_err(|source| Error::Io {
            context: format!("creating {}", sha.display()),
            source,
        })?;
        let downloaded = AtomicU64::new(0);
        let total: u64 = blobs.iter().map(|b| b.1).sum();
        progress.add_total(total);
        let jobs = blobs.iter().map(|(d, size)| {
            let sha = &sha;
            let downloaded = &downloaded;
            async move {
                let done = sha.join(d.hex());
                if done.exists() {
                    progress.advance(*size);
                    return Ok(());
                }
                self.fetch_one(d, *size, sha, downloaded, progress).await
            }
        });
        let results: Vec<Result<()>> = self.rt.block_on(
            futures_util::stream::iter(jobs)
                .buffer_unordered(PARALLEL)
                .collect(),
        );
        for r in results {
            r?;
        }
        Ok(downloaded.load(Ordering::Relaxed))
    }

    async fn fetch_one(
        &self,
        d: &Digest,
        size: u64,
        sha: &Path,
        downloaded: &AtomicU64,
        progress: &dyn Progress,
    ) -> Result<()> {
        let partial = sha.join(format!("{}.partial", d.hex()));
        let io = |context: String| move |source| Error::Io { context, source };
        for attempt in 0..2 {
            let mut offset = std::fs::metadata(&partial).map_or(0, |m| m.len());
            if offset >= size || attempt > 0 {
                offset = 0;
            }
            let resp = self
                .client
                .pull_blob_stream_partial(&self.reference, d.to_string().as_str(), offset, None)
                .await
                .map_err(self.err(format!("fetching blob {d}")))?;
            let (mut stream, append) = match resp {
                BlobResponse::Partial(s) if offset > 0 => (s.stream, true),
                BlobResponse::Partial(s) | BlobResponse::Full(s) => (s.stream, false),
            };
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&partial)
                .await
                .map_err(io(format!("opening {}", partial.display())))?;
            if append {
                progress.advance(offset);
            }
            let mut written = if append { offset } else { 0 };
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(io(format!("downloading blob {d}")))?;
                written += chunk.len() as u64;
                if written > size {
                    break; // more than the manifest promised: checked below
                }
                f.write_all(&chunk)
                    .await
                    .map_err(io(format!("writing {}", partial.display())))?;
                downloaded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                progress.advance(chunk.len() as u64);
            }
            f.sync_all()
                .await
                .map_err(io(format!("writing {}", partial.display())))?;
            drop(f);
            // Verify the whole file: a resumed blob was never seen in one piece.
            let bytes_ok = written == size;
            let got = if bytes_ok { hash_file(&partial)? } else { None };
            if bytes_ok && got.as_ref() == Some(d) {
                std::fs::rename(&partial, sha.join(d.hex()))
                    .map_err(io(format!("renaming {}", partial.display())))?;
                return Ok(());
            }
            let _ = std::fs::remove_file(&partial);
            if append {
                continue; // a bad partial from before: start over once
            }
            return Err(Error::Image(berth_image::Error::DigestMismatch {
                what: format!("blob {d} from {}", self.reference.resolve_registry()),
                expected: format!("{d} ({size} bytes)"),
                actual: match got {
                    Some(g) => g.to_string(),
                    None => format!("{written} bytes"),
                },
            }));
        }
        Err(Error::Invalid(format!("blob {d} could not be fetched")))
    }

    pub fn blob_exists(&self, d: &Digest) -> Result<bool> {
        self.rt
            .block_on(self.client.blob_exists(&self.reference, &d.to_string()))
            .map_err(self.err(format!("checking blob {d}")))
    }

    /// Log in for pushing (blob checks and uploads need it first).
    pub fn authenticate_push(&self) -> Result<()> {
        self.rt
            .block_on(
                self.client
                    .auth(&self.reference, &self.auth, RegistryOperation::Push),
            )
            .map_err(self.err("authenticating for push"))?;
        Ok(())
    }

    pub fn push_blob(&self, d: &Digest, path: &Path) -> Result<()> {
        let data = std::fs::read(path).map_err(|source| Error::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        self.rt
            .block_on(self.client.push_blob(&self.reference, data, &d.to_string()))
            .map_err(self.err(format!("pushing blob {d}")))?;
        Ok(())
    }

    pub fn push_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if !self.blob_exists(&d)? {
            self.rt
                .block_on(
                    self.client
                        .push_blob(&self.reference, bytes.to_vec(), &d.to_string()),
                )
                .map_err(self.err(format!("pushing blob {d}")))?;
        }
        Ok(d)
    }

    /// `host[:port]/path`, what signatures and the policy talk about.
    /// The full reference the name given stood for.
    pub fn named(&self) -> &str {
        &self.named
    }

    /// The registry fetched from, `host[:port]`.
    pub fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }

    /// The registry's Flatpak index (see [`crate::flatpak_index`]) for
    /// `arch`, as served: at most [`crate::flatpak_index::MAX_INDEX_BYTES`].
    /// Anonymous: registries serve it to anyone.
    pub fn flatpak_index(&self, arch: &str) -> Result<Vec<u8>> {
        let url = format!(
            "{}/index/static?{}",
            self.base,
            crate::flatpak_index::query(arch)
        );
        let fail = |e: &dyn std::fmt::Display| {
            Error::Invalid(format!("fetching the Flatpak index {url}: {e}"))
        };
        let mut b = reqwest::Client::builder()
            .danger_accept_invalid_certs(self.unverified)
            .connect_timeout(std::time::Duration::from_secs(30))
            .timeout(std::time::Duration::from_secs(120));
        for pem in &self.roots {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).map_err(|e| fail(&e))?);
        }
        let client = b.build().map_err(|e| fail(&e))?;
        self.rt.block_on(async {
            let mut resp = client.get(&url).send().await.map_err(|e| fail(&e))?;
            if !resp.status().is_success() {
                return Err(fail(&format!("the registry answered {}", resp.status())));
            }
            let mut out = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| fail(&e))? {
                out.extend_from_slice(&chunk);
                if out.len() > crate::flatpak_index::MAX_INDEX_BYTES {
                    return Err(fail(&"it is too large"));
                }
            }
            Ok(out)
        })
    }

    /// The repository as the user named it (`host/path`), whatever mirror
    /// serves it: what trust policies and signatures are about.
    pub fn repository(&self) -> String {
        self.logical.clone()
    }

    /// Sign `digest` in this repository with `key`: upload the payload and
    /// a manifest tagged `sha256-<hex>.sig`.
    pub fn push_signature(&self, key: &ed25519_dalek::SigningKey, digest: &Digest) -> Result<()> {
        let (payload, sig) = crate::sign::sign(key, &self.repository(), digest);
        let pd = self.push_bytes(&payload)?;
        let empty = b"{}";
        let ed = self.push_bytes(empty)?;
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed.to_string(), "size": 2},
            "layers": [{
                "mediaType": crate::sign::PAYLOAD_TYPE,
                "digest": pd.to_string(),
                "size": payload.len(),
                "annotations": {crate::sign::SIG_ANNOTATION: sig},
            }],
        });
        let bytes = serde_json::to_vec(&m).map_err(|e| Error::Invalid(e.to_string()))?;
        self.push_manifest(&bytes, OCI_MANIFEST, Some(&crate::sign::tag_for(digest)))
    }

    /// Check `digest` against the signature stored next to it.
    pub fn verify_signature(
        &self,
        keys: &[ed25519_dalek::VerifyingKey],
        digest: &Digest,
    ) -> Result<()> {
        let repo = self.repository();
        let Some(m) = self.try_manifest(&crate::sign::tag_for(digest))? else {
            return Err(Error::Invalid(format!(
                "{repo}@{digest} is not signed, and the policy requires a signature"
            )));
        };
        let v: serde_json::Value = serde_json::from_slice(&m)
            .map_err(|e| Error::Invalid(format!("the signature manifest is not JSON: {e}")))?;
        let layer = &v["layers"][0];
        let (Some(pd), Some(sig)) = (
            layer["digest"].as_str(),
            layer["annotations"][crate::sign::SIG_ANNOTATION].as_str(),
        ) else {
            return Err(Error::Invalid(
                "the signature manifest has no signature".into(),
            ));
        };
        let pd = Digest::parse(pd)?;
        let payload = self.fetch_small(&pd, 64 << 10)?;
        crate::sign::verify(keys, &payload, sig, &repo, digest)
            .map_err(|e| Error::Invalid(format!("{repo}@{digest}: {e}")))
    }

    /// Push manifest bytes under this reference's tag (or `tag`).
    pub fn push_manifest(&self, bytes: &[u8], media_type: &str, tag: Option<&str>) -> Result<()> {
        let r = match tag {
            Some(t) => Reference::with_tag(
                self.reference.registry().to_owned(),
                self.reference.repository().to_owned(),
                t.to_owned(),
            ),
            None => self.reference.clone(),
        };
        self.push_manifest_to(&r, bytes, media_type)
    }

    /// Push manifest bytes by their digest, under no tag; returns the digest.
    pub fn push_manifest_by_digest(&self, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let d = Digest::of(bytes);
        let r = self.reference.clone_with_digest(d.to_string());
        self.push_manifest_to(&r, bytes, media_type)?;
        Ok(d)
    }

    fn push_manifest_to(&self, r: &Reference, bytes: &[u8], media_type: &str) -> Result<()> {
        self.rt
            .block_on(self.client.auth(r, &self.auth, RegistryOperation::Push))
            .map_err(self.err("authenticating for push"))?;
        let ct = http::HeaderValue::from_str(media_type)
            .map_err(|_| Error::Invalid(format!("media type {media_type:?}")))?;
        self.rt
            .block_on(self.client.push_manifest_raw(r, bytes.to_vec(), ct))
            .map_err(self.err(format!("pushing the manifest of {r}")))?;
        Ok(())
    }

    /// Fetch manifest bytes for another tag of this repository (None if absent).
    pub fn try_manifest(&self, tag: &str) -> Result<Option<Vec<u8>>> {
        let r = Reference::with_tag(
            self.reference.registry().to_owned(),
            self.reference.repository().to_owned(),
            tag.to_owned(),
        );
        match self.rt.block_on(
            self.client
                .pull_manifest_raw(&r, &self.auth, &[OCI_MANIFEST]),
        ) {
            Ok((b, _)) => Ok(Some(b.to_vec())),
            Err(oci_client::errors::OciDistributionError::ImageManifestNotFoundError(_)) => {
                Ok(None)
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(format!("fetching {r}"))(e)),
        }
    }

    /// The manifests of `artifact_type` that name `subject` (the referrers
    /// API, or the `sha256-<hex>` tag where a registry lacks it), at most
    /// `limit` of them, by digest, and the listing's size (as re-encoded:
    /// oci-client does not say what it read).
    pub fn referrers(
        &self,
        subject: &Digest,
        artifact_type: &str,
        limit: usize,
    ) -> Result<(Vec<Digest>, u64)> {
        let r = self.reference.clone_with_digest(subject.to_string());
        let index = self
            .rt
            .block_on(self.client.pull_referrers(&r, Some(artifact_type)))
            .map_err(self.err(format!("listing what refers to {subject}")))?;
        let size = serde_json::to_vec(&index).map_or(0, |v| v.len() as u64);
        let found = index
            .manifests
            .iter()
            .filter(|m| {
                m.artifact_type
                    .as_deref()
                    .is_none_or(|t| t == artifact_type)
            })
            .filter_map(|m| Digest::parse(&m.digest).ok())
            .take(limit)
            .collect();
        Ok((found, size))
    }

    /// A manifest of this repository by digest, checked against it; at most
    /// `limit` bytes.
    pub fn manifest_by_digest(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let r = self.reference.clone_with_digest(d.to_string());
        let (bytes, _) = self
            .rt
            .block_on(
                self.client
                    .pull_manifest_raw(&r, &self.auth, &[OCI_MANIFEST, OCI_INDEX]),
            )
            .map_err(self.err(format!("fetching manifest {d}")))?;
        if bytes.len() as u64 > limit || Digest::of(&bytes) != *d {
            return Err(Error::Invalid(format!(
                "manifest {d} from the registry does not match its digest or is too large; refusing it"
            )));
        }
        Ok(bytes.to_vec())
    }

    /// List `descriptor` (a manifest pushed by digest) among the referrers
    /// of `subject` in the `sha256-<hex>` tagged index, which clients read
    /// where the registry has no referrers API. A registry with the API
    /// lists the manifest from its `subject` already; the tag does no harm.
    pub fn add_referrer(&self, subject: &Digest, descriptor: serde_json::Value) -> Result<()> {
        let tag = format!("sha256-{}", subject.hex());
        let r = Reference::with_tag(
            self.reference.registry().to_owned(),
            self.reference.repository().to_owned(),
            tag.clone(),
        );
        let existing =
            match self
                .rt
                .block_on(self.client.pull_manifest_raw(&r, &self.auth, &[OCI_INDEX]))
            {
                Ok((b, _)) => serde_json::from_slice::<serde_json::Value>(&b).ok(),
                Err(e) if is_not_found(&e) => None,
                Err(oci_client::errors::OciDistributionError::ImageManifestNotFoundError(_)) => {
                    None
                }
                Err(e) => return Err(self.err(format!("fetching {r}"))(e)),
            };
        let mut manifests: Vec<serde_json::Value> = existing
            .and_then(|v| v.get("manifests").and_then(|m| m.as_array().cloned()))
            .unwrap_or_default();
        manifests.retain(|m| m.get("digest") != descriptor.get("digest"));
        manifests.push(descriptor);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| Error::Invalid(format!("the referrers index: {e}")))?;
        self.push_manifest(&bytes, OCI_INDEX, Some(&tag))
    }

    pub fn fetch_small(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        // A registry that sends more than `limit` is cut off, not buffered.
        let mut out = Bounded {
            buf: Vec::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        };
        self.rt
            .block_on(
                self.client
                    .pull_blob(&self.reference, d.to_string().as_str(), &mut out),
            )
            .map_err(self.err(format!("fetching blob {d}")))?;
        let out = out.buf;
        if out.len() as u64 > limit || Digest::of(&out) != *d {
            return Err(Error::Invalid(format!(
                "blob {d} from the registry does not match its digest; refusing it"
            )));
        }
        Ok(out)
    }
}

/// A writer that refuses to grow past `limit` bytes.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "the registry sent more than the blob's size limit",
            )));
        }
        self.buf.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// distribution answers an unknown tag with 404 and MANIFEST_UNKNOWN,
/// which oci-client reports in several shapes.
fn is_not_found(e: &oci_client::errors::OciDistributionError) -> bool {
    let m = format!("{e} {e:?}").to_lowercase();
    [
        "manifest unknown",
        "manifestunknown",
        "manifest_unknown",
        "404",
    ]
    .iter()
    .any(|k| m.contains(k))
}

fn media_type_of(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct M {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<M>(bytes) {
        Ok(M {
            media_type: Some(m),
            ..
        }) => m,
        Ok(M {
            manifests: Some(_), ..
        }) => OCI_INDEX.into(),
        _ => OCI_MANIFEST.into(),
    }
}

fn hash_file(p: &Path) -> Result<Option<Digest>> {
    let mut f = std::fs::File::open(p).map_err(|source| Error::Io {
        context: format!("reading {}", p.display()),
        source,
    })?;
    let mut h = berth_image::digest::HashingWriter::new(std::io::sink());
    std::io::copy(&mut f, &mut h).map_err(|source| Error::Io {
        context: format!("reading {}", p.display()),
        source,
    })?;
    Ok(Some(h.finish().1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_refs() {
        assert!(is_registry_ref("localhost:5000/apps/x:1"));
        assert!(is_registry_ref("reg.example.org/x"));
        assert!(!is_registry_ref("berth-demo:latest"));
        assert!(!is_registry_ref("example/runtime:bookworm"));
        assert!(plain_http("localhost:5000") && plain_http("127.0.0.1:5000"));
        assert!(!plain_http("reg.example.org"));
    }
}
