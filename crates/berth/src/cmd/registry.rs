//! `berth pull` and `berth push`, and pulling for install and update.

use std::collections::HashMap;
use std::process::ExitCode;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use berth_image::store::{REF_NAME, new_index};
use berth_image::{Digest, ImageEntry, ImageName};
use berth_registry::Remote;
use berth_registry::sign::{Policy, Rule};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};

use super::Ctx;
use crate::ui::{self, Bar};

pub struct Pulled {
    pub entry: ImageEntry,
    pub downloaded: u64,
    pub blobs: usize,
}

/// What a pull would fetch: blobs the store lacks, with sizes.
pub struct Plan {
    pub remote: Remote,
    pub resolved: berth_registry::Resolved,
    pub missing: Vec<(Digest, u64)>,
    pub config: Digest,
}

/// The trust policy: `$BERTH_POLICY`, else `$BERTH_HOME/policy.toml`,
/// else `~/.config/berth/policy.toml`; none means accept everything.
fn load_policy(ctx: &Ctx) -> anyhow::Result<Policy> {
    let mut files = Vec::new();
    if let Some(p) = std::env::var_os("BERTH_POLICY").filter(|p| !p.is_empty()) {
        files.push(PathBuf::from(p));
    }
    files.push(ctx.store.root().join("policy.toml"));
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
fn check_policy(ctx: &Ctx, remote: &Remote, digest: &Digest) -> anyhow::Result<()> {
    let policy = load_policy(ctx)?;
    let repo = remote.repository();
    match policy.decide(&repo) {
        (Rule::Accept, _) => Ok(()),
        (Rule::Reject, _) => bail!("the trust policy rejects images from {repo}"),
        (Rule::Signed, keys) => {
            anyhow::ensure!(
                !keys.is_empty(),
                "the trust policy requires signatures for {repo} but lists no keys"
            );
            let keys = keys
                .iter()
                .map(|k| {
                    let text = std::fs::read_to_string(k)
                        .with_context(|| format!("reading the trusted key {k}"))?;
                    berth_registry::sign::parse_public(&text)
                        .with_context(|| format!("trusted key {k}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            remote
                .verify_signature(&keys, digest)
                .context("refusing an image the trust policy requires to be signed")?;
            Ok(())
        }
    }
}

pub fn plan(ctx: &Ctx, reference: &str) -> anyhow::Result<Plan> {
    let remote = Remote::new(reference)?;
    // A rejected registry is not even asked.
    if load_policy(ctx)?.decide(&remote.repository()).0 == Rule::Reject {
        bail!(
            "the trust policy rejects images from {}",
            remote.repository()
        );
    }
    let resolved = remote.resolve()?;
    check_policy(ctx, &remote, &resolved.digest)?;
    let manifest: ImageManifest = serde_json::from_slice(&resolved.manifest)
        .with_context(|| format!("the manifest of {reference} is not an image manifest"))?;
    let mut missing = Vec::new();
    let c = manifest.config();
    for d in std::iter::once(c).chain(manifest.layers().iter()) {
        let dg = Digest::from_oci(d.digest())?;
        if !ctx.store.has_blob(&dg) && !missing.iter().any(|(m, _)| m == &dg) {
            missing.push((dg, d.size()));
        }
    }
    Ok(Plan {
        remote,
        resolved,
        missing,
        config: Digest::from_oci(manifest.config().digest())?,
    })
}

/// Fetch what the store lacks, then import it through the verified path.
/// Downloads live in tmp/pull-<manifest>/ until done, so an interrupted
/// pull resumes there. The caller holds the shared store lock.
pub fn pull_into_store(ctx: &Ctx, reference: &str) -> anyhow::Result<Pulled> {
    let p = plan(ctx, reference)?;
    let dir = ctx
        .store
        .tmp_dir()
        .join(format!("pull-{}", p.resolved.digest.hex()));
    let bar = Bar::new("pulling");
    let downloaded = p
        .remote
        .fetch(&p.missing, &dir, &bar)
        .with_context(|| format!("pulling {reference}"))?;
    bar.finish();
    let sha = dir.join("blobs/sha256");
    std::fs::write(sha.join(p.resolved.digest.hex()), &p.resolved.manifest)?;
    // Import reads the config from the layout even when the store has it.
    let config = sha.join(p.config.hex());
    if !config.exists() {
        std::fs::copy(ctx.store.blob_path(&p.config), &config)
            .context("copying the image config")?;
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
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
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&new_index(vec![desc]))?,
    )?;
    let res = super::import::import_path(ctx, &dir, None)?;
    let _ = berth_image::fsutil::remove_tree(&dir);
    let first = res.images.first().context("the pull produced no image")?;
    let entry = ctx.store.entry_by_digest(&first.digest)?;
    Ok(Pulled {
        entry,
        downloaded,
        blobs: p.missing.len(),
    })
}

pub fn pull(ctx: &Ctx, reference: &str, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let p = pull_into_store(ctx, reference)?;
    if json {
        ui::print_json(&serde_json::json!({
            "reference": reference,
            "id": p.entry.digest.short(),
            "digest": p.entry.digest,
            "downloaded_bytes": p.downloaded,
            "blobs_fetched": p.blobs,
        }))?;
    } else {
        println!(
            "Pulled {reference} (ID {}): {} in {} blob(s) downloaded",
            p.entry.digest.short(),
            ui::human_size(p.downloaded),
            p.blobs
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn push(
    ctx: &Ctx,
    image: &str,
    reference: &str,
    sign: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let key = sign
        .map(|k| {
            let text = std::fs::read_to_string(k)
                .with_context(|| format!("reading the signing key {}", k.display()))?;
            anyhow::Ok(berth_registry::sign::parse_secret(&text)?)
        })
        .transpose()?;
    let _lock = ctx.lock_shared()?;
    let entry = ctx.store.resolve(image)?;
    let img = ctx.store.load_image(&entry)?;
    let remote = Remote::new(reference)?;
    remote.authenticate_push()?;
    let mut blobs = vec![img.config_digest.clone()];
    for l in img.manifest.layers() {
        blobs.push(Digest::from_oci(l.digest())?);
    }
    let (mut sent, mut skipped) = (0u64, 0usize);
    for d in &blobs {
        if remote.blob_exists(d)? {
            skipped += 1;
            continue;
        }
        let path = ctx.store.blob_path(d);
        remote
            .push_blob(d, &path)
            .with_context(|| format!("pushing {image} to {reference}"))?;
        sent += std::fs::metadata(&path).map_or(0, |m| m.len());
    }
    let bytes = std::fs::read(ctx.store.blob_path(&entry.digest))?;
    let mt = img
        .manifest
        .media_type()
        .as_ref()
        .map_or_else(|| MediaType::ImageManifest.to_string(), |m| m.to_string());
    remote.push_manifest(&bytes, &mt, None)?;
    if let Some(k) = &key {
        remote.push_signature(k, &entry.digest)?;
        println!(
            "Signed {}@{} with key {}",
            remote.repository(),
            entry.digest,
            berth_registry::sign::key_id(&k.verifying_key())
        );
    }
    println!(
        "Pushed {image} to {reference} ({} uploaded, {skipped} blob(s) already there): {}",
        ui::human_size(sent),
        entry.digest
    );
    Ok(ExitCode::SUCCESS)
}

/// `berth key generate PREFIX`: PREFIX.key (secret, 0600) and PREFIX.pub.
pub fn key_generate(prefix: &Path) -> anyhow::Result<ExitCode> {
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut seed)
        .context("reading /dev/urandom")?;
    let k = ed25519_dalek::SigningKey::from_bytes(&seed);
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    anyhow::ensure!(
        !secret.exists(),
        "{} exists; not overwriting a key",
        secret.display()
    );
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret)
            .with_context(|| format!("creating {}", secret.display()))?;
        std::io::Write::write_all(&mut f, berth_registry::sign::secret_text(&k).as_bytes())?;
    }
    std::fs::write(
        &public,
        berth_registry::sign::public_text(&k.verifying_key()),
    )?;
    println!(
        "Wrote {} (keep it secret) and {} (key {})",
        secret.display(),
        public.display(),
        berth_registry::sign::key_id(&k.verifying_key())
    );
    Ok(ExitCode::SUCCESS)
}
