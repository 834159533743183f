use std::process::ExitCode;

use berth_image::gc::gc;

use super::Ctx;
use crate::ui;

pub fn run(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx
        .store()
        .lock_exclusive(&|| ui::warn("waiting for other berth processes to finish..."))?;
    let mut r = gc(ctx.store(), &super::live_app_images(ctx)?)?;
    // Roots of working containers a killed `create` or `rm` left.
    let (n, bytes) = ctx.engine.sweep_containers();
    r.temp_removed += n;
    r.bytes_freed += bytes;
    if json {
        ui::print_json(&r)?;
    } else {
        println!(
            "Removed {} blob(s), {} unpacked layer(s), {} temporary file(s); freed {}",
            r.blobs_removed,
            r.layers_removed,
            r.temp_removed,
            ui::human_size(r.bytes_freed)
        );
        if r.kept_for_running > 0 {
            println!(
                "Kept {} unpacked layer(s) that running apps use; they go with the next gc after those apps end",
                r.kept_for_running
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
