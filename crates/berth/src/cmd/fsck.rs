use std::process::ExitCode;

use berth_image::fsck::fsck;

use super::Ctx;
use crate::ui::{self, Bar};

pub fn run(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let bar = Bar::new("checking");
    let r = fsck(&ctx.store, &bar)?;
    bar.finish();
    if json {
        ui::print_json(&r)?;
    } else {
        for p in &r.problems {
            println!("DAMAGED: {p}");
        }
        for n in &r.notes {
            println!("note: {n}");
        }
        let verdict = if r.is_clean() {
            "clean".to_owned()
        } else {
            format!("{} problem(s)", r.problems.len())
        };
        println!(
            "Store {}: {verdict} ({} image(s), {} blob(s) verified, {} layer(s) checked)",
            ctx.store.root().display(),
            r.images,
            r.blobs_checked,
            r.layers_checked
        );
    }
    Ok(if r.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
