use std::collections::HashSet;
use std::process::ExitCode;

use berth_app::deploy::AppStore;
use berth_image::Digest;
use berth_image::fsck::{FsckReport, RepairReport, fsck, repair};

use super::Ctx;
use crate::ui::{self, Bar};

pub fn run(ctx: &Ctx, json: bool, fix: bool) -> anyhow::Result<ExitCode> {
    // Repair moves and re-creates content: nothing else may work meanwhile.
    let _lock = if fix {
        ctx.store()
            .lock_exclusive(&|| ui::warn("waiting for other berth processes to finish..."))?
    } else {
        ctx.lock_shared()?
    };
    // Running instances' pins: their images are roots, their layers are
    // mounted (repair leaves those alone).
    let (running, in_use) = ctx.store().pinned()?;
    let mut roots = super::live_app_images(ctx)?;
    roots.extend(running.iter().filter(|d| ctx.store().has_blob(d)).cloned());
    let bar = Bar::new("checking");
    let r = fsck(ctx.store(), &roots, &bar)?;
    bar.finish();
    if !fix {
        print_report(ctx, &r, json, None)?;
        return Ok(exit(&r));
    }
    let mut done = RepairReport::default();
    let bar = Bar::new("repairing");
    let rep = repair(ctx.store(), &r, &in_use, &bar)?;
    bar.finish();
    done.done.extend(rep.done);
    done.failed.extend(rep.failed);
    let removed = rep.removed_layers;
    // Blobs gone for good, and layers nothing here re-creates, come back
    // from the registry an app came from.
    let missing: HashSet<Digest> = r
        .missing_blobs
        .iter()
        .chain(&r.corrupt_blobs)
        .cloned()
        .collect();
    if (!missing.is_empty() || !removed.is_empty())
        && refetch(ctx, &missing, &removed, &mut done) > 0
    {
        // What came back is no longer a failure.
        done.failed.retain(|f| {
            !removed
                .iter()
                .any(|d| f.contains(d.short()) && ctx.store().has_layer(d))
        });
        // The blobs are back: re-create what needed them.
        let bar = Bar::new("checking");
        let again = fsck(ctx.store(), &roots, &bar)?;
        bar.finish();
        let bar = Bar::new("repairing");
        let rep = repair(ctx.store(), &again, &in_use, &bar)?;
        bar.finish();
        // Earlier "cannot be re-created" lines are now answered.
        if !rep.done.is_empty() {
            done.failed
                .retain(|f| !f.contains("cannot be re-created here"));
        }
        done.done.extend(rep.done);
        done.failed.extend(rep.failed);
    }
    let apps = AppStore::new(ctx.store().root());
    for dir in apps.orphans() {
        let shown = dir.display().to_string();
        match ctx.store().trash(&dir) {
            Ok(()) => done.done.push(format!(
                "removed {} (an interrupted install left it without a current deployment)",
                ui::safe(&shown)
            )),
            Err(e) => done
                .failed
                .push(format!("removing {}: {e}", ui::safe(&shown))),
        }
    }
    let (n, bytes) = ctx.store().clean_stale_tmp();
    if n > 0 {
        done.done.push(format!(
            "removed {n} temporary file(s) of interrupted work ({})",
            ui::human_size(bytes)
        ));
    }
    let bar = Bar::new("checking again");
    let after = fsck(ctx.store(), &roots, &bar)?;
    bar.finish();
    print_report(ctx, &after, json, Some(&done))?;
    Ok(exit(&after))
}

/// Pull each installed app whose image lacks a blob, by digest, from its
/// origin registry.
/// Returns how many images were fetched.
fn refetch(
    ctx: &Ctx,
    missing: &HashSet<Digest>,
    removed: &[Digest],
    done: &mut RepairReport,
) -> usize {
    let mut fetched = 0;
    for d in AppStore::new(ctx.store().root()).list() {
        let Ok(manifest) = Digest::parse(&d.image) else {
            continue;
        };
        let needs = missing.contains(&manifest)
            || ctx
                .store()
                .entry_by_digest(&manifest)
                .and_then(|e| ctx.store().load_image(&e))
                .map(|img| {
                    img.layer_digests()
                        .unwrap_or_default()
                        .iter()
                        .chain(std::iter::once(&img.config_digest))
                        .any(|b| missing.contains(b))
                        || img
                            .diff_ids()
                            .unwrap_or_default()
                            .iter()
                            .any(|d| removed.contains(d))
                })
                .unwrap_or(true);
        if !needs {
            continue;
        }
        if !berth_registry::remote::is_registry_ref(&d.origin) {
            done.failed.push(format!(
                "{}: blobs are missing and it was not installed from a registry ({}); install it again",
                ui::safe(&d.app_id),
                ui::safe(&d.origin)
            ));
            continue;
        }
        let repo = d
            .origin
            .split_once('@')
            .map_or(d.origin.as_str(), |(n, _)| n);
        let repo = match repo.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r,
            _ => repo,
        };
        let by_digest = format!("{repo}@{manifest}");
        match ctx
            .engine
            .pull(&by_digest, &crate::ui::Term::new(false, false))
        {
            Ok(p) => {
                fetched += 1;
                done.done.push(format!(
                    "refetched {} blob(s) of {} from {}",
                    p.blobs,
                    ui::safe(&d.app_id),
                    ui::safe(&by_digest)
                ));
            }
            Err(e) => done.failed.push(format!(
                "refetching {} from {}: {e:#}",
                ui::safe(&d.app_id),
                ui::safe(&by_digest)
            )),
        }
    }
    fetched
}

fn exit(r: &FsckReport) -> ExitCode {
    if r.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_report(
    ctx: &Ctx,
    r: &FsckReport,
    json: bool,
    repaired: Option<&RepairReport>,
) -> anyhow::Result<()> {
    if json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a FsckReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            repair: Option<&'a RepairReport>,
        }
        return ui::print_json(&Out {
            report: r,
            repair: repaired,
        });
    }
    if let Some(rep) = repaired {
        for d in &rep.done {
            println!("repaired: {d}");
        }
        for f in &rep.failed {
            println!("NOT REPAIRED: {f}");
        }
    }
    for p in &r.problems {
        println!("DAMAGED: {}", ui::safe(p));
    }
    for n in &r.notes {
        println!("note: {}", ui::safe(n));
    }
    let verdict = if r.is_clean() {
        "clean".to_owned()
    } else {
        format!("{} problem(s)", r.problems.len())
    };
    println!(
        "Store {}: {verdict} ({} image(s), {} blob(s) verified, {} layer(s) checked){}",
        ui::safe(&ctx.store().root().display().to_string()),
        r.images,
        r.blobs_checked,
        r.layers_checked,
        if r.is_clean() || repaired.is_some() {
            ""
        } else {
            "; `berth fsck --repair` fixes what can be fixed"
        }
    );
    Ok(())
}
