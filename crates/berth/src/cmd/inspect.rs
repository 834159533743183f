use std::collections::BTreeMap;
use std::process::ExitCode;

use serde::Serialize;

use super::Ctx;
use crate::ui;

#[derive(Serialize)]
struct Layer {
    digest: String,
    diff_id: String,
    media_type: String,
    size: u64,
}

#[derive(Serialize)]
struct Inspect {
    id: String,
    digest: String,
    names: Vec<String>,
    manifest_media_type: String,
    config_digest: String,
    created: Option<String>,
    architecture: String,
    os: String,
    user: Option<String>,
    env: Vec<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    working_dir: Option<String>,
    labels: BTreeMap<String, String>,
    /// Manifest annotations (the base name and digest of a built app).
    annotations: BTreeMap<String, String>,
    /// The app the labels declare, if any (see docs/app-labels.md).
    app: Option<berth_app::AppMeta>,
    /// Why the labels do not make a valid app.
    app_error: Option<String>,
    layers: Vec<Layer>,
    size: u64,
}

pub fn run(ctx: &Ctx, image: &str, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let entry = ctx.store().resolve(image)?;
    let img = ctx.store().load_image(&entry)?;
    let c = img.config.config().clone().unwrap_or_default();
    let diff_ids = img.diff_ids()?;
    let layers: Vec<Layer> = img
        .manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(l, d)| Layer {
            digest: l.digest().to_string(),
            diff_id: d.to_string(),
            media_type: l.media_type().to_string(),
            size: l.size(),
        })
        .collect();
    let labels: BTreeMap<String, String> =
        c.labels().clone().unwrap_or_default().into_iter().collect();
    let (app, app_error) = match berth_app::AppMeta::from_labels(&labels) {
        Ok(a) => (a, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let info = Inspect {
        id: entry.digest.short().to_owned(),
        digest: entry.digest.to_string(),
        names: entry.names.clone(),
        manifest_media_type: img.manifest.media_type().as_ref().map_or_else(
            || "application/vnd.oci.image.manifest.v1+json".to_owned(),
            |m| m.to_string(),
        ),
        config_digest: img.config_digest.to_string(),
        created: img.config.created().clone(),
        architecture: img.config.architecture().to_string(),
        os: img.config.os().to_string(),
        user: c.user().clone(),
        env: c.env().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone(),
        labels,
        annotations: img
            .manifest
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        app,
        app_error,
        size: layers.iter().map(|l| l.size).sum::<u64>() + img.manifest.config().size(),
        layers,
    };
    if json {
        ui::print_json(&info)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("ID:           {}", info.id);
    println!("Digest:       {}", info.digest);
    println!(
        "Names:        {}",
        if info.names.is_empty() {
            format!(
                "none; use its ID {} (or `berth tag {} NAME`)",
                info.id, info.id
            )
        } else {
            ui::safe(&info.names.join(", ")).into_owned()
        }
    );
    println!(
        "Created:      {}",
        ui::safe(info.created.as_deref().unwrap_or("-"))
    );
    println!(
        "Platform:     {}/{}",
        ui::safe(&info.os),
        ui::safe(&info.architecture)
    );
    println!("Size:         {}", ui::human_size(info.size));
    if let Some(u) = &info.user {
        println!("User:         {}", ui::safe(u));
    }
    if !info.entrypoint.is_empty() {
        println!("Entrypoint:   {:?}", info.entrypoint);
    }
    if !info.cmd.is_empty() {
        println!("Cmd:          {:?}", info.cmd);
    }
    if let Some(w) = &info.working_dir {
        println!("WorkingDir:   {}", ui::safe(w));
    }
    if !info.env.is_empty() {
        println!("Env:");
        for e in &info.env {
            println!("  {}", ui::safe(e));
        }
    }
    if !info.labels.is_empty() {
        println!("Labels:");
        for (k, v) in &info.labels {
            // A runtime's package list is long: point at its own command.
            if v.lines().count() > 3 {
                println!(
                    "  {}=<{} lines; see `berth runtime packages`>",
                    ui::safe(k),
                    v.lines().count()
                );
            } else {
                println!("  {}={}", ui::safe(k), ui::safe(v));
            }
        }
    }
    if !info.annotations.is_empty() {
        println!("Annotations:");
        for (k, v) in &info.annotations {
            println!("  {}={}", ui::safe(k), ui::safe(v));
        }
    }
    if let Some(a) = &info.app {
        println!("App:          {} ({})", ui::safe(&a.name), ui::safe(&a.id));
        let review = a.permissions.review(&ui::user_home());
        if review.is_empty() {
            println!("Permissions:  none (fully sandboxed)");
        } else {
            println!("Permissions:");
            for l in review {
                println!(
                    "  {:<12} {}  [{}]",
                    l.risk.to_string(),
                    ui::safe(&l.description),
                    ui::safe(&l.permission)
                );
            }
        }
    }
    if let Some(e) = &info.app_error {
        println!("App:          invalid: {}", ui::safe(&e.to_string()));
    }
    println!("Layers:");
    for l in &info.layers {
        println!(
            "  {}  {:>9}  {}",
            l.digest,
            ui::human_size(l.size),
            l.media_type
        );
    }
    Ok(ExitCode::SUCCESS)
}
