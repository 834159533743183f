use std::process::ExitCode;

use berth_image::ImageEntry;
use serde::Serialize;

use super::Ctx;
use crate::ui;

#[derive(Serialize)]
struct Row {
    id: String,
    digest: String,
    names: Vec<String>,
    created: Option<String>,
    size: u64,
}

pub fn run(ctx: &Ctx, json: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let mut rows = Vec::new();
    for e in ctx.store().images()? {
        rows.push(row(ctx, e)?);
    }
    rows.sort_by(|a, b| a.names.cmp(&b.names).then(a.id.cmp(&b.id)));
    if json {
        ui::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if quiet {
        for r in &rows {
            println!("{}", r.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Vec::new();
    for r in &rows {
        let created = r
            .created
            .as_deref()
            .map(|c| c.get(..19).unwrap_or(c).replace('T', " "))
            .unwrap_or_default();
        let names: Vec<(String, String)> = if r.names.is_empty() {
            // Unnamed: its ID is the name to type (`berth run ID`, `berth tag ID NAME`).
            vec![(r.id.clone(), "<none>".into())]
        } else {
            r.names
                .iter()
                .map(|n| match n.rsplit_once(':') {
                    Some((a, b)) => (a.to_owned(), b.to_owned()),
                    None => (n.clone(), String::new()),
                })
                .collect()
        };
        for (repo, tag) in names {
            table.push(vec![
                repo,
                tag,
                r.id.clone(),
                created.clone(),
                ui::human_size(r.size),
            ]);
        }
    }
    ui::table(
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}

fn row(ctx: &Ctx, e: ImageEntry) -> anyhow::Result<Row> {
    let img = ctx.store().load_image(&e)?;
    let size =
        img.manifest.layers().iter().map(|l| l.size()).sum::<u64>() + img.manifest.config().size();
    Ok(Row {
        id: e.digest.short().to_owned(),
        digest: e.digest.to_string(),
        names: e.names,
        created: img.config.created().clone(),
        size,
    })
}
