use std::process::ExitCode;

use anyhow::bail;
use berth_image::ImageName;
use berth_image::gc::gc;
use berth_image::store::ref_name;

use super::Ctx;
use crate::ui;

pub fn run(ctx: &Ctx, images: &[String], force: bool, json: bool) -> anyhow::Result<ExitCode> {
    let mut untagged: Vec<String> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    {
        let _lock = ctx.lock_shared()?;
        // Working containers keep their images (one that loses its last
        // name is listed again, unnamed: Engine::list_container_images).
        let held = ctx.engine.containers().list();
        for image in images {
            let entry = ctx.store().resolve(image)?;
            let holder = held.iter().find(|c| c.digest == entry.digest.to_string());
            let by_name = ImageName::parse(image)
                .ok()
                .map(|n| n.to_string())
                .filter(|n| entry.names.contains(n));
            if by_name.is_none() && entry.names.len() > 1 && !force {
                bail!(
                    "image {} has {} names ({}); remove them one by one or use --force",
                    entry.digest.short(),
                    entry.names.len(),
                    entry.names.join(", ")
                );
            }
            if let (None, Some(c)) = (&by_name, holder) {
                bail!(
                    "image {} is working container {}'s; `berth rm {}` first",
                    entry.digest.short(),
                    ui::safe(&c.name),
                    ui::safe(&c.name)
                );
            }
            ctx.store().update_index(|list| {
                list.retain(|d| {
                    let same = d.digest().as_ref() == entry.digest.to_string();
                    match &by_name {
                        Some(n) => ref_name(d).as_deref() != Some(n.as_str()),
                        None => !same,
                    }
                });
                Ok(())
            })?;
            match by_name {
                Some(n) if json => untagged.push(n),
                Some(n) => println!("Untagged {n}"),
                None if json => removed.push(entry.digest.to_string()),
                None => println!("Removed {}", entry.digest.short()),
            }
        }
    }
    // Reclaim space now if no other berth process is working on the store.
    let mut freed = None;
    match ctx.store().try_lock_exclusive()? {
        Some(_g) => {
            let r = gc(ctx.store(), &super::live_app_images(ctx)?)?;
            freed = Some(r.bytes_freed);
            if json {
                // Reported below.
            } else if r.bytes_freed > 0 {
                println!("Freed {}", ui::human_size(r.bytes_freed));
            }
            if r.kept_for_running > 0 && !json {
                println!(
                    "Kept {} layer(s) in use by running apps; `berth gc` removes them after those apps end",
                    r.kept_for_running
                );
            }
        }
        None => ui::warn("another berth process is busy; run `berth gc` later to reclaim space"),
    }
    if json {
        ui::print_json(&serde_json::json!({
            "untagged": untagged,
            "removed": removed,
            "bytes_freed": freed,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}
