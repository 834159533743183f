use std::path::Path;
use std::process::ExitCode;

use berth_image::ImageName;
use berth_image::import::ImportResult;

use super::Ctx;
use crate::ui::{self, Term};

/// Import with a progress bar, and warn about anything left out. The
/// caller holds the store's shared lock.
pub fn import_path(
    ctx: &Ctx,
    source: &Path,
    tag: Option<ImageName>,
) -> anyhow::Result<ImportResult> {
    Ok(ctx
        .engine
        .import_path(source, tag, &Term::new(false, false))?)
}

pub fn run(
    ctx: &Ctx,
    source: &Path,
    tag: Option<&str>,
    json: bool,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let tag = tag.map(ImageName::parse).transpose()?;
    let _lock = ctx.lock_shared()?;
    let res = import_path(ctx, source, tag)?;
    if json {
        ui::print_json(&res.images)?;
    } else if quiet {
        for i in &res.images {
            println!("{}", i.id);
        }
    } else {
        for i in &res.images {
            if i.names.is_empty() {
                println!(
                    "Imported {} from {}: {} layer(s), {} new. It has no name: use its ID {} (`berth run {}`), or name it with `berth tag {} NAME`",
                    i.id, res.format, i.layers, i.layers_new, i.id, i.id, i.id
                );
            } else {
                println!(
                    "Imported {} (ID {}) from {}: {} layer(s), {} new",
                    ui::safe(&i.names.join(", ")),
                    i.id,
                    res.format,
                    i.layers,
                    i.layers_new
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
