//! install, uninstall, list, info, permissions, override.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use berth_app::deploy::{AppStore, Deployment, Overrides, effective};
use berth_app::{AppMeta, Permission, PermissionSet, Risk};
use berth_image::{Image, ImageEntry};

use super::Ctx;
use crate::ui;

/// The app an image declares, or a clear error.
pub fn app_of(image: &Image) -> anyhow::Result<AppMeta> {
    let labels: BTreeMap<String, String> = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    AppMeta::from_labels(&labels)
        .context("the image's app labels are invalid")?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the image declares no app (no org.berth.app.id label; see docs/app-labels.md); \
                 run it with `berth run IMAGE` instead"
            )
        })
}

fn image_size(img: &Image) -> u64 {
    img.manifest.layers().iter().map(|l| l.size()).sum::<u64>() + img.manifest.config().size()
}

/// Import a file or directory, or find an image in the store.
fn source_image(ctx: &Ctx, source: &str) -> anyhow::Result<(ImageEntry, String)> {
    if !Path::new(source).exists() && berth_registry::remote::is_registry_ref(source) {
        let p = super::registry::pull_into_store(ctx, source)?;
        return Ok((p.entry, source.to_owned()));
    }
    if Path::new(source).exists() {
        let res = match super::import::import_path(ctx, Path::new(source), None) {
            Ok(r) => r,
            Err(e) => match e.downcast_ref::<berth_image::Error>() {
                // A thin bundle: fetch its runtime from the registry it
                // names, then import again.
                Some(berth_image::Error::MissingBase {
                    base_name: Some(name),
                    base_digest: Some(digest),
                    ..
                }) if berth_registry::remote::is_registry_ref(name) => {
                    let repo = name.rsplit_once(':').filter(|(_, t)| !t.contains('/'));
                    let r = format!("{}@{digest}", repo.map_or(name.as_str(), |(r, _)| r));
                    println!("This is a thin bundle; fetching its runtime {name}");
                    super::registry::pull_into_store(ctx, &r).with_context(|| {
                        format!("fetching the runtime {name} this thin bundle needs")
                    })?;
                    super::import::import_path(ctx, Path::new(source), None)?
                }
                Some(berth_image::Error::MissingBase { .. }) => {
                    return Err(e.context(
                        "this is a thin bundle: import or pull its runtime first, or ask the author for a full bundle",
                    ));
                }
                _ => return Err(e),
            },
        };
        let [first] = res.images.as_slice() else {
            bail!(
                "{source} holds {} images; import it and install one by name",
                res.images.len()
            );
        };
        let entry = ctx.store.resolve(&first.digest.to_string())?;
        let origin = std::fs::canonicalize(source)
            .map_or_else(|_| source.to_owned(), |p| p.display().to_string());
        return Ok((entry, origin));
    }
    // Clearly a path, not an image name: say the file is missing.
    if source.starts_with(['/', '.', '~'])
        || [".berth", ".tar", ".tar.gz", ".tar.zst"]
            .iter()
            .any(|e| source.ends_with(e))
    {
        bail!("{source}: no such file or directory");
    }
    Ok((ctx.store.resolve(source)?, source.to_owned()))
}

fn print_review(set: &PermissionSet) {
    let review = set.review(&ui::user_home());
    for l in &review {
        println!(
            "  {:<12} {}   ({})",
            l.risk.to_string(),
            ui::safe(&l.description),
            ui::safe(&l.permission)
        );
    }
    // The last line before the question: what matters most stays in view
    // however long the list above is.
    let count = |r: Risk| review.iter().filter(|l| l.risk == r).count();
    let high: Vec<String> = review
        .iter()
        .filter(|l| l.risk == Risk::High)
        .map(|l| ui::safe(&l.permission).into_owned())
        .collect();
    println!(
        "Summary: {} high, {} medium, {} low{}",
        count(Risk::High),
        count(Risk::Medium),
        count(Risk::Low),
        if high.is_empty() {
            String::new()
        } else {
            format!("; high: {}", high.join(", "))
        }
    );
}

/// Ask on the terminal; without one, consent must come from --yes.
fn consent(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "installing needs your consent to the permissions above: rerun with --yes to accept them"
        );
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

pub fn install(
    ctx: &Ctx,
    source: &str,
    yes: bool,
    channel: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let (entry, origin) = source_image(ctx, source)?;
    let key = match channel {
        Some(ch) => {
            let image = ctx.store.load_image(&entry)?;
            let key = format!("{}@{ch}", app_of(&image)?.id);
            anyhow::ensure!(
                berth_app::metadata::valid_install_key(&key),
                "--as {ch:?}: a channel name is 1-32 of a-z, 0-9 and -"
            );
            Some(key)
        }
        None => None,
    };
    install_image(ctx, &entry, origin, yes, key.as_deref())
}

/// Review, consent and deploy an image already in the store. Also the
/// second half of `update`. The caller holds the shared store lock.
pub fn install_image(
    ctx: &Ctx,
    entry: &ImageEntry,
    origin: String,
    yes: bool,
    key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let image = ctx.store.load_image(entry)?;
    if let Some(why) = image.platform_mismatch() {
        bail!("cannot install {}: {why}", entry.digest.short());
    }
    let mut meta = app_of(&image)?;
    // A channel copy (`ID@CHANNEL`) is its own install: own deployments,
    // data and menu entry, named after the key.
    if let Some(k) = key.filter(|k| k.contains('@')) {
        anyhow::ensure!(
            berth_app::metadata::app_id_of(k) == meta.id,
            "the image is the app {}, not {}",
            meta.id,
            berth_app::metadata::app_id_of(k)
        );
        meta.name = format!("{} ({})", meta.name, &k[meta.id.len() + 1..]);
        meta.id = k.to_owned();
    }
    let apps = AppStore::new(ctx.store.root());
    let previous = apps.current(&meta.id)?;
    let granted_before = previous
        .as_ref()
        .map(Deployment::granted)
        .transpose()?
        .unwrap_or_default();
    // Another program's name on this computer would let the app stand in
    // for it in the menu, in file associations and on the bus.
    if let Some(what) = crate::desktop::host_conflict(ctx.store.root(), &meta.id) {
        bail!(
            "the app ID {} is already used on this computer by {what}; berth will not install an app under another program's name",
            ui::safe(&meta.id)
        );
    }
    // Everything the menu gets is generated and checked before anything
    // is installed.
    let exports = crate::desktop::prepare(&meta, &image, &ctx.store)?;
    let new = meta.permissions.added_since(&granted_before);
    let verb = match &previous {
        None => "Installing",
        Some(p) if p.image == entry.digest.to_string() => "Reinstalling",
        Some(_) => "Updating",
    };
    println!(
        "{verb} {} ({}), {}",
        ui::safe(&meta.name),
        ui::safe(&meta.id),
        ui::human_size(image_size(&image))
    );
    let ask = if previous.is_none() {
        if meta.permissions.0.is_empty() {
            println!("It asks for no permissions: fully sandboxed.");
            false
        } else {
            println!("It asks to:");
            print_review(&meta.permissions);
            true
        }
    } else if new.0.is_empty() {
        println!("No new permissions.");
        false
    } else {
        println!("It asks for new permissions:");
        print_review(&new);
        true
    };
    if ask && !yes && !consent("Allow this and install?")? {
        println!("Not installed.");
        return Ok(ExitCode::from(1));
    }
    let d = apps.deploy(Deployment {
        serial: 0,
        app_id: meta.id.clone(),
        name: meta.name.clone(),
        image: entry.digest.to_string(),
        origin,
        command: meta.command.clone(),
        granted: meta.permissions.to_string(),
        installed_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    })?;
    let exported = crate::desktop::export(ctx.store.root(), &exports, &ctx.store.tmp_dir())?;
    // So that the next .berth file opens in the installer; not fatal.
    if let Err(e) = crate::desktop::register_bundle_type(ctx.store.root(), &ctx.store.tmp_dir()) {
        ui::warn(&format!(
            "warning: could not register the .berth file type: {e:#}"
        ));
    }
    println!(
        "Installed {} (deployment {}). Run it with: berth run {}",
        meta.id, d.serial, meta.id
    );
    if exported {
        crate::desktop::hint_once(ctx.store.root());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall(ctx: &Ctx, id: &str, delete_data: bool) -> anyhow::Result<ExitCode> {
    let apps = AppStore::new(ctx.store.root());
    apps.require(id)?;
    let data = data_dir(ctx.store.root(), id);
    // The app's image stays while it runs (running instances are gc
    // roots); its data would not, so that waits until it ends.
    let running = super::state_dir()
        .map(|d| {
            berth_sandbox::instance::list(&d)
                .into_iter()
                .filter(|s| s.name == id || s.image == id)
                .count()
        })
        .unwrap_or(0);
    if delete_data && running > 0 && data.exists() {
        bail!(
            "{id} is running ({running} instance(s)); stop it first (`berth ps`, `berth kill`) to delete its data"
        );
    }
    crate::desktop::unexport(ctx.store.root(), id)?;
    apps.remove(
        id,
        &ctx.store
            .tmp_dir()
            .join(berth_image::fsutil::unique_name("trash-")),
    )?;
    if delete_data && data.exists() {
        berth_image::fsutil::remove_tree(&data)?;
        println!("Uninstalled {id} and deleted its data");
    } else {
        println!(
            "Uninstalled {id}{}",
            if data.exists() {
                format!(" (its data stays in {})", data.display())
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn data_dir(home: &Path, id: &str) -> PathBuf {
    home.join("data").join(id)
}

#[derive(serde::Serialize)]
struct Row {
    id: String,
    name: String,
    deployment: u64,
    image: String,
    origin: String,
    permissions: Vec<String>,
}

fn row(apps: &AppStore, d: &Deployment) -> anyhow::Result<Row> {
    let eff = effective(&d.granted()?, &apps.overrides(&d.app_id)?)?;
    Ok(Row {
        id: d.app_id.clone(),
        name: d.name.clone(),
        deployment: d.serial,
        image: d.image.clone(),
        origin: d.origin.clone(),
        permissions: eff.iter().map(|(p, _)| p.to_string()).collect(),
    })
}

pub fn list(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let apps = AppStore::new(ctx.store.root());
    let rows: Vec<Row> = apps
        .list()
        .iter()
        .map(|d| row(&apps, d))
        .collect::<anyhow::Result<_>>()?;
    if json {
        ui::print_json(&rows)?;
    } else {
        let t: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.name.clone(),
                    r.image
                        .trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect(),
                    r.permissions.len().to_string(),
                ]
            })
            .collect();
        ui::table(&["APP ID", "NAME", "IMAGE", "PERMISSIONS"], &t);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn info(ctx: &Ctx, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let apps = AppStore::new(ctx.store.root());
    let d = apps.require(id)?;
    let r = row(&apps, &d)?;
    if json {
        ui::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("ID:           {}", ui::safe(&r.id));
    println!("Name:         {}", ui::safe(&r.name));
    println!("Deployment:   {}", r.deployment);
    println!("Image:        {}", r.image);
    println!("Origin:       {}", ui::safe(&r.origin));
    println!("Data:         {}", data_dir(ctx.store.root(), id).display());
    println!(
        "Permissions:  {}",
        if r.permissions.is_empty() {
            "none".to_owned()
        } else {
            r.permissions.join(";")
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn permissions(ctx: &Ctx, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let apps = AppStore::new(ctx.store.root());
    let d = apps.require(id)?;
    let eff = effective(&d.granted()?, &apps.overrides(id)?)?;
    if json {
        let v: Vec<serde_json::Value> = eff
            .iter()
            .map(|(p, s)| {
                let (desc, risk) = p.describe(&ui::user_home());
                serde_json::json!({"permission": p.to_string(), "source": s, "description": desc, "risk": risk})
            })
            .collect();
        ui::print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    if eff.is_empty() {
        println!("{id} has no permissions: fully sandboxed.");
    }
    let rows: Vec<Vec<String>> = eff
        .iter()
        .map(|(p, s)| {
            let (desc, risk) = p.describe(&ui::user_home());
            vec![
                p.to_string(),
                format!("{s:?}").to_lowercase(),
                risk.to_string(),
                desc,
            ]
        })
        .collect();
    if !rows.is_empty() {
        ui::table(&["PERMISSION", "FROM", "RISK", "MEANING"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn override_(
    ctx: &Ctx,
    id: &str,
    grant: Vec<String>,
    revoke: Vec<String>,
    reset: bool,
) -> anyhow::Result<ExitCode> {
    let apps = AppStore::new(ctx.store.root());
    apps.require(id)?;
    if reset {
        apps.set_overrides(id, &Overrides::default())?;
        println!("Overrides of {id} removed");
        return Ok(ExitCode::SUCCESS);
    }
    if grant.is_empty() && revoke.is_empty() {
        bail!("nothing to change: give --grant PERMISSION, --revoke PERMISSION or --reset");
    }
    let mut o = apps.overrides(id)?;
    for g in grant {
        let p = Permission::parse(&g)?.to_string();
        o.revoke.retain(|r| r != &p);
        if !o.grant.contains(&p) {
            o.grant.push(p);
        }
    }
    for r in revoke {
        let p = Permission::parse(&r)?.to_string();
        o.grant.retain(|g| g != &p);
        if !o.revoke.contains(&p) {
            o.revoke.push(p);
        }
    }
    apps.set_overrides(id, &o)?;
    permissions(ctx, id, false)
}
