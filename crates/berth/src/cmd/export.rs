use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use berth_image::ImageName;
use berth_image::export::export;

use super::Ctx;
use crate::ui::{self, Bar};

pub fn run(ctx: &Ctx, image: &str, file: &Path) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let entry = ctx.store.resolve(image)?;
    // Name the archive's image as the user named it, else its first name.
    let name = ImageName::parse(image)
        .ok()
        .map(|n| n.to_string())
        .filter(|n| entry.names.contains(n))
        .or_else(|| entry.names.first().cloned());
    let bar = Bar::new("exporting");
    let size = export(&ctx.store, &entry, name.as_deref(), file, &bar)
        .with_context(|| format!("exporting {image} to {}", file.display()))?;
    bar.finish();
    println!(
        "Wrote {} ({}) to {}",
        name.as_deref().unwrap_or(entry.digest.short()),
        ui::human_size(size),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}
