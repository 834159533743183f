use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use berth_image::export::export;
use berth_image::import::BASE_DIGEST;
use berth_image::{Digest, ImageName};

use super::Ctx;
use crate::ui::{self, Bar};

pub fn run(ctx: &Ctx, image: &str, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let entry = ctx.store().resolve(image)?;
    // Name the archive's image as the user named it, else its first name.
    let name = ImageName::parse(image)
        .ok()
        .map(|n| n.to_string())
        .filter(|n| entry.names.contains(n))
        .or_else(|| entry.names.first().cloned());
    let bar = Bar::new("exporting");
    let size = export(ctx.store(), &entry, name.as_deref(), file, &[], &bar)
        .with_context(|| format!("exporting {image} to {}", file.display()))?;
    bar.finish();
    if json {
        ui::print_json(&serde_json::json!({
            "image": entry.digest.to_string(),
            "name": name,
            "file": file,
            "bytes": size,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Wrote {} ({}) to {}",
        name.as_deref().unwrap_or(entry.digest.short()),
        ui::human_size(size),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `berth bundle`: an app as one OCI archive, whole or `--thin`.
pub fn bundle(
    ctx: &Ctx,
    source: &str,
    file: &Path,
    thin: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let apps = berth_app::deploy::AppStore::new(ctx.store().root());
    let entry = match berth_app::metadata::valid_app_id(source)
        .then(|| apps.current(source))
        .transpose()?
        .flatten()
    {
        Some(d) => ctx
            .store()
            .entry_by_digest(&Digest::parse(&d.image)?)
            .with_context(|| format!("the image of {source} is gone from the store"))?,
        None => ctx.store().resolve(source)?,
    };
    let image = ctx.store().load_image(&entry)?;
    let meta = berth_engine::app_of(&image)
        .with_context(|| format!("{source} is not an app, so it cannot be bundled"))?;
    let mut omit = Vec::new();
    if thin {
        let ann = image.manifest.annotations().clone().unwrap_or_default();
        let base = ann.get(BASE_DIGEST).with_context(|| {
            format!(
                "--thin needs an image built on a runtime (annotation {BASE_DIGEST}); {source} has none, so make a full bundle"
            )
        })?;
        let base = Digest::parse(base)?;
        let base_manifest = ctx.store().load_manifest(&base).with_context(|| {
            format!("--thin needs the runtime {base} in the store, to know which layers are its")
        })?;
        let ours = image.manifest.layers();
        let theirs = base_manifest.layers();
        anyhow::ensure!(
            theirs.len() < ours.len()
                && theirs
                    .iter()
                    .zip(ours)
                    .all(|(a, b)| a.digest() == b.digest()),
            "the image's layers do not start with its runtime's ({base}); make a full bundle"
        );
        for l in theirs {
            omit.push(Digest::from_oci(l.digest())?);
        }
    }
    let name = entry
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{}:latest", meta.id.to_lowercase()));
    let bar = Bar::new("bundling");
    let size = export(ctx.store(), &entry, Some(&name), file, &omit, &bar)
        .with_context(|| format!("writing {}", file.display()))?;
    bar.finish();
    if json {
        ui::print_json(&serde_json::json!({
            "id": meta.id,
            "name": meta.name,
            "image": entry.digest.to_string(),
            "file": file,
            "bytes": size,
            "thin": thin,
            "runtime_layers_left_out": omit.len(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Wrote {} {} ({}){} to {}",
        if thin { "thin bundle of" } else { "bundle of" },
        meta.name,
        meta.id,
        if thin {
            format!(", {} without its runtime", ui::human_size(size))
        } else {
            format!(", {}", ui::human_size(size))
        },
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}
