use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use berth_image::base::find_base;
use berth_image::export::Exported;
use berth_image::export::export;
use berth_image::import::{BASE_DIGEST, BASE_NAME};
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
    let out = export(ctx.store(), &entry, name.as_deref(), file, &[], &bar)
        .with_context(|| format!("exporting {image} to {}", file.display()))?;
    bar.finish();
    if json {
        ui::print_json(&serde_json::json!({
            "image": out.digest.to_string(),
            "store_image": entry.digest.to_string(),
            "name": name,
            "file": file,
            "bytes": out.bytes,
            "layers_replaced": out.replaced,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Wrote {} ({}) to {}",
        name.as_deref().unwrap_or(entry.digest.short()),
        ui::human_size(out.bytes),
        file.display()
    );
    say_replaced(&entry.digest, &out);
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
        // The runtime's layers, matched by content: a tool that rebuilt
        // the image may have recompressed them, or named a base of its own.
        let base = find_base(ctx.store(), &image)?.with_context(|| {
            let ann = image.manifest.annotations().clone().unwrap_or_default();
            match ann.get(BASE_NAME).or_else(|| ann.get(BASE_DIGEST)) {
                Some(b) => format!(
                    "--thin needs {source}'s runtime in the store, to know which layers are its: its image names {b}, and no image in the store is the bottom of its layers; import or pull the runtime, or make a full bundle"
                ),
                None => format!(
                    "--thin needs {source}'s runtime in the store, and no image there is the bottom of its layers; import or pull the runtime, or make a full bundle"
                ),
            }
        })?;
        for l in image.manifest.layers().iter().take(base.layers) {
            omit.push(Digest::from_oci(l.digest())?);
        }
    }
    let name = entry
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{}:latest", meta.id.to_lowercase()));
    let bar = Bar::new("bundling");
    let out = export(ctx.store(), &entry, Some(&name), file, &omit, &bar)
        .with_context(|| format!("writing {}", file.display()))?;
    bar.finish();
    let size = out.bytes;
    if json {
        ui::print_json(&serde_json::json!({
            "id": meta.id,
            "name": meta.name,
            "image": entry.digest.to_string(),
            "file": file,
            "bytes": size,
            "bundle_image": out.digest.to_string(),
            "layers_replaced": out.replaced,
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
    say_replaced(&entry.digest, &out);
    Ok(ExitCode::SUCCESS)
}

/// An export that wrote stored blobs for elided ones has another digest.
fn say_replaced(store_digest: &Digest, out: &Exported) {
    if out.replaced > 0 {
        println!(
            "Note: {} layer(s) are written as another compression of the same content (the store keeps layers, not their original blobs: docs/on-disk-format.md), so the archive's image is {} (the store's is {})",
            out.replaced, out.digest, store_digest
        );
    }
}
