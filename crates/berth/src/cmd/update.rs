//! `berth update`, `rollback`, `mask`, `rebase` and `promote`: the
//! terminal front end of the engine's moves between images.

use std::process::ExitCode;

use berth_engine::UpdateCheck;

use super::Ctx;
use crate::ui::{self, Term};

fn short(image: &str) -> &str {
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    &hex[..12.min(hex.len())]
}

pub fn update(
    ctx: &Ctx,
    ids: &[String],
    dry_run: bool,
    yes: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let term = Term::new(yes, json);
    let outcomes = ctx.engine.update(ids, dry_run, &term)?;
    let declined = outcomes.iter().any(|o| o.declined);
    let status = if declined {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if json {
        ui::print_json(&outcomes)?;
        return Ok(status);
    }
    if outcomes.is_empty() {
        println!("Nothing to do: no apps are installed.");
        return Ok(status);
    }
    let mut total = 0u64;
    let mut changed = 0usize;
    for o in &outcomes {
        let id = ui::safe(&o.id);
        match &o.check {
            UpdateCheck::Masked => {
                println!("{id}: masked, not updated (berth mask --remove {id})");
            }
            UpdateCheck::NotFromRegistry { origin } => println!(
                "{id}: installed from {}, not a registry; nothing to check",
                ui::safe(origin)
            ),
            UpdateCheck::UpToDate { image } => println!("{id}: up to date ({})", short(image)),
            UpdateCheck::Available {
                image,
                bytes,
                blobs,
            } => {
                changed += 1;
                total += bytes;
                if dry_run {
                    println!(
                        "{id}: would update to {} from {}: {bytes} bytes to download ({}) in {blobs} blob(s)",
                        short(image),
                        ui::safe(&o.origin),
                        ui::human_size(*bytes),
                    );
                    continue;
                }
                println!(
                    "{id}: downloaded {} ({} bytes)",
                    ui::human_size(o.downloaded),
                    o.downloaded
                );
                match &o.installed {
                    Some(i) => println!(
                        "Installed {} (deployment {}). Run it with: berth run {0}",
                        ui::safe(&i.id),
                        i.deployment
                    ),
                    None => println!("Not installed."),
                }
            }
        }
    }
    if changed == 0 {
        println!("Nothing to do.");
    } else if dry_run {
        println!("Total: {total} bytes to download");
    }
    Ok(status)
}

pub fn rollback(ctx: &Ctx, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let r = ctx.engine.rollback(id, &Term::new(false, json))?;
    if json {
        ui::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Rolled {} back from deployment {} ({}) to {} ({}). `berth update` moves it forward again{}.",
        ui::safe(id),
        r.from_deployment,
        short(&r.from_image),
        r.to_deployment,
        short(&r.to_image),
        if r.masked {
            ""
        } else {
            "; `berth mask` stops that"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn mask(ctx: &Ctx, id: &str, masked: bool) -> anyhow::Result<ExitCode> {
    ctx.engine.mask(id, masked)?;
    println!(
        "{}: {}",
        ui::safe(id),
        if masked {
            "masked; `berth update` leaves it as it is"
        } else {
            "unmasked; `berth update` updates it again"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn rebase(ctx: &Ctx, id: &str, onto: &str, json: bool) -> anyhow::Result<ExitCode> {
    let r = ctx.engine.rebase(id, onto, &Term::new(true, json))?;
    if json {
        ui::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(i) = &r.installed else {
        println!("{} already runs on {}", ui::safe(id), ui::safe(onto));
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "Rebased {} from {} ({}) onto {} ({}): {} runtime layer(s) replaced, {} app layer(s) kept",
        ui::safe(id),
        ui::safe(&r.from),
        short(&r.from_digest),
        ui::safe(&r.onto),
        short(&r.onto_digest),
        r.runtime_layers,
        r.app_layers
    );
    println!(
        "Installed {} (deployment {}). Run it with: berth run {0}",
        ui::safe(&i.id),
        i.deployment
    );
    Ok(ExitCode::SUCCESS)
}

pub fn promote(ctx: &Ctx, key: &str, json: bool) -> anyhow::Result<ExitCode> {
    if !json && let Some((id, ch)) = key.split_once('@') {
        println!(
            "Promoting the {} copy of {} to the stable install",
            ui::safe(ch),
            ui::safe(id)
        );
    }
    let i = ctx.engine.promote(key, &Term::new(true, json))?;
    if json {
        ui::print_json(&i)?;
    } else {
        println!(
            "Installed {} (deployment {}). Run it with: berth run {0}",
            ui::safe(&i.id),
            i.deployment
        );
    }
    Ok(ExitCode::SUCCESS)
}
