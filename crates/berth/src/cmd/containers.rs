//! create, containers, rm, commit: working containers.

use std::process::ExitCode;

use super::{Ctx, state_dir};
use crate::ui::{self, Term};

pub fn create(ctx: &Ctx, name: &str, image: &str, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let c = ctx
        .engine
        .create_container(name, image, &Term::new(false, json))?;
    if json {
        ui::print_json(&c)?;
    } else {
        println!(
            "Created container {} of {} ({}); run it with `berth run --container {}`",
            ui::safe(&c.name),
            ui::safe(&c.image),
            &c.digest[..c.digest.len().min(19)],
            ui::safe(&c.name)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let all = ctx.engine.containers().list();
    // The name it was made of may have moved to another image since.
    let names = ctx.store().images()?;
    let now = |c: &berth_app::containers::Container| -> Vec<String> {
        names
            .iter()
            .find(|e| e.digest.to_string() == c.digest)
            .map(|e| e.names.clone())
            .unwrap_or_default()
    };
    let shown = |c: &berth_app::containers::Container| {
        let n = now(c);
        if n.contains(&c.image) {
            c.image.clone()
        } else if n.is_empty() {
            "<none>".to_owned()
        } else {
            n.join(", ")
        }
    };
    if json {
        // `image`: the name it was made of; `names`: the image's names now.
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("names".into(), now(c).into());
                }
                v
            })
            .collect();
        ui::print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                shown(c),
                c.digest
                    .strip_prefix("sha256:")
                    .unwrap_or(&c.digest)
                    .chars()
                    .take(12)
                    .collect(),
            ]
        })
        .collect();
    ui::table(&["NAME", "IMAGE", "IMAGE ID"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub fn rm(ctx: &Ctx, names: &[String]) -> anyhow::Result<ExitCode> {
    for n in names {
        ctx.engine.remove_container(n)?;
        println!("Removed container {}", ui::safe(n));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn commit(
    ctx: &Ctx,
    what: &str,
    image: Option<&str>,
    with_data: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let c = ctx.engine.commit(
        what,
        image,
        with_data,
        &state_dir()?,
        &Term::new(false, json),
    )?;
    if json {
        ui::print_json(&c)?;
    } else {
        println!(
            "Committed {} as {} (ID {}): {} file(s), {}, {} removed{}; parent {}",
            ui::safe(what),
            ui::safe(&c.image),
            c.id,
            c.files,
            ui::human_size(c.bytes),
            c.removed,
            if c.data_layer.is_some() {
                format!(
                    "; private data: {} file(s), {}",
                    c.data_files,
                    ui::human_size(c.data_bytes)
                )
            } else {
                String::new()
            },
            c.parent.short()
        );
        if !c.skipped.is_empty() {
            ui::warn(&format!(
                "left out (a layer cannot hold them): {}",
                ui::summarize(&c.skipped)
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
