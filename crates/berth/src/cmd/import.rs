use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use berth_image::ImageName;
use berth_image::import::{ImportOptions, ImportResult, import};
use berth_image::layer::Limits;
use berth_image::unpack::UnpackOptions;

use super::Ctx;
use crate::ui::{self, Bar};

/// Import with a progress bar, and warn about anything left out. The
/// caller holds the store's shared lock.
pub fn import_path(
    ctx: &Ctx,
    source: &Path,
    tag: Option<ImageName>,
) -> anyhow::Result<ImportResult> {
    let opts = ImportOptions {
        tag,
        limits: Limits::from_env()?,
        unpack: UnpackOptions::for_current_user(),
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let bar = Bar::new("importing");
    let res = import(&ctx.store, source, &opts, &bar)
        .with_context(|| format!("importing {}", source.display()))?;
    bar.finish();
    let r = &res.report;
    if !r.dropped_devices.is_empty() {
        ui::warn(&format!(
            "warning: left out {} device node(s) ({}); the sandbox provides /dev",
            r.dropped_devices.len(),
            ui::summarize(&r.dropped_devices)
        ));
    }
    if !r.stripped_setid.is_empty() {
        ui::warn(&format!(
            "warning: removed setuid/setgid bits from {} file(s) ({}); berth never runs anything with raised privileges",
            r.stripped_setid.len(),
            ui::summarize(&r.stripped_setid)
        ));
    }
    for i in &res.images {
        let entry = ctx.store.entry_by_digest(&i.digest)?;
        if let Some(why) = ctx.store.load_image(&entry)?.platform_mismatch() {
            ui::warn(&format!(
                "warning: {why}: image {} can be exported or pushed, but not installed or run",
                i.id
            ));
        }
    }
    if !r.sparse.is_empty() {
        ui::warn(&format!(
            "warning: {} sparse file(s) stored in full, their holes as zeros ({})",
            r.sparse.len(),
            ui::summarize(&r.sparse)
        ));
    }
    if r.dropped_xattrs > 0 {
        ui::warn(&format!(
            "warning: left out {} extended attribute(s) that could grant privileges or forge overlay metadata",
            r.dropped_xattrs
        ));
    }
    Ok(res)
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
            let name = if i.names.is_empty() {
                "<unnamed>".to_owned()
            } else {
                i.names.join(", ")
            };
            println!(
                "Imported {name} (ID {}) from {}: {} layer(s), {} new",
                i.id, res.format, i.layers, i.layers_new
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
