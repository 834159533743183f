//! `berth pull` and `berth push` (pulling itself is the engine's).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use berth_image::Digest;
use berth_registry::Remote;
use oci_spec::image::MediaType;

use super::Ctx;
use crate::ui::{self, Term};

pub fn pull(ctx: &Ctx, reference: &str, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let p = ctx.engine.pull(reference, &Term::new(false, json))?;
    if json {
        ui::print_json(&serde_json::json!({
            "reference": reference,
            "id": p.entry.digest.short(),
            "digest": p.entry.digest,
            "downloaded_bytes": p.downloaded,
            "blobs_fetched": p.blobs,
            "layers_from_deltas": p.from_deltas,
            "metadata_bytes": p.metadata,
        }))?;
    } else {
        println!(
            "Pulled {reference} (ID {}): {} in {} blob(s) downloaded{}",
            p.entry.digest.short(),
            ui::human_size(p.downloaded),
            p.blobs,
            if p.from_deltas > 0 {
                format!("; {} layer(s) rebuilt from deltas", p.from_deltas)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn push(
    ctx: &Ctx,
    image: &str,
    reference: &str,
    sign: Option<&Path>,
    delta_from: &[String],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let key = sign
        .map(|k| {
            let text = std::fs::read_to_string(k)
                .with_context(|| format!("reading the signing key {}", k.display()))?;
            anyhow::Ok(berth_registry::sign::parse_secret(&text)?)
        })
        .transpose()?;
    let _lock = ctx.lock_shared()?;
    let entry = ctx.store().resolve(image)?;
    let img = ctx.store().load_image(&entry)?;
    for old in delta_from {
        ctx.store()
            .resolve(old)
            .with_context(|| format!("--delta-from {old}"))?;
    }
    let remote = Remote::for_push(reference)?;
    remote.authenticate_push()?;
    // Layer blobs the store holds only as content go as the stored blob
    // of the same layer, unless the registry has them already.
    let mut elided_there = Vec::new();
    for l in img.manifest.layers() {
        let d = Digest::from_oci(l.digest())?;
        if !ctx.store().has_blob(&d) && remote.blob_exists(&d)? {
            elided_there.push(d);
        }
    }
    let out = berth_image::export::portable(ctx.store(), &img, &elided_there)?;
    let mut blobs: Vec<Digest> = out.blobs.iter().map(|(d, _)| d.clone()).collect();
    blobs.dedup();
    let (mut sent, mut skipped, mut uploaded) = (0u64, elided_there.len(), 0usize);
    for d in &blobs {
        if remote.blob_exists(d)? {
            skipped += 1;
            continue;
        }
        let path = out.path_of(ctx.store(), d);
        remote
            .push_blob(d, &path)
            .with_context(|| format!("pushing {image} to {reference}"))?;
        sent += std::fs::metadata(&path).map_or(0, |m| m.len());
        uploaded += 1;
    }
    let mt = img
        .manifest
        .media_type()
        .as_ref()
        .map_or_else(|| MediaType::ImageManifest.to_string(), |m| m.to_string());
    remote.push_manifest(&out.manifest, &mt, None)?;
    if out.replaced > 0 {
        eprintln!(
            "Note: {} layer(s) went as another compression of the same content (the store keeps layers, not their original blobs: docs/on-disk-format.md), so the pushed image is {} (the store's is {})",
            out.replaced, out.digest, entry.digest
        );
    }
    let entry = berth_image::ImageEntry {
        digest: out.digest.clone(),
        ..entry
    };
    if let Some(k) = &key {
        remote.push_signature(k, &entry.digest)?;
    }
    let term = Term::new(false, json);
    let mut deltas = Vec::new();
    for old in delta_from {
        let d = ctx
            .engine
            .push_delta(&remote, old, &img, &out.manifest, &term)
            .with_context(|| format!("publishing deltas from {old}"))?;
        if !json {
            match &d.digest {
                Some(digest) => println!(
                    "Published deltas from {old}: {} layer(s) in {} instead of {} ({digest}){}",
                    d.layers,
                    ui::human_size(d.bytes),
                    ui::human_size(d.instead_of),
                    if d.whole > 0 {
                        format!("; {} new layer(s) go whole", d.whole)
                    } else {
                        String::new()
                    }
                ),
                None => println!(
                    "No deltas from {old}: {}",
                    if d.whole > 0 {
                        "no new layer would be smaller as a delta"
                    } else {
                        "it has every layer of this image"
                    }
                ),
            }
        }
        deltas.push(serde_json::json!({ "from": old, "delta": d }));
    }
    if json {
        ui::print_json(&serde_json::json!({
            "image": image,
            "reference": reference,
            "digest": entry.digest.to_string(),
            "bytes_uploaded": sent,
            "blobs_uploaded": uploaded,
            "blobs_already_there": skipped,
            "signed_by": key.as_ref().map(|k| berth_registry::sign::key_id(&k.verifying_key())),
            "deltas": deltas,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(k) = &key {
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
