//! `berth update`, `rollback`, `mask` and `rebase`.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;

use anyhow::{Context, bail};
use berth_app::deploy::AppStore;
use berth_build::oci::{self, BASE_DIGEST, BASE_NAME, LayerRef, NewImage};
use berth_image::{Digest, ImageEntry};
use berth_registry::remote::is_registry_ref;

use super::Ctx;
use super::runtime::{LABEL_FROM, LABEL_PACKAGES, WorkDir};
use crate::ui;

pub fn update(ctx: &Ctx, ids: &[String], dry_run: bool, yes: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let apps = AppStore::new(ctx.store.root());
    let targets: Vec<_> = if ids.is_empty() {
        apps.list()
    } else {
        ids.iter()
            .map(|id| apps.require(id))
            .collect::<Result<_, _>>()?
    };
    if targets.is_empty() {
        println!("Nothing to do: no apps are installed.");
        return Ok(ExitCode::SUCCESS);
    }
    let mut status = ExitCode::SUCCESS;
    let mut total = 0u64;
    let mut changed = 0usize;
    for d in targets {
        if apps.is_masked(&d.app_id) {
            println!(
                "{}: masked, not updated (berth mask --remove {0})",
                d.app_id
            );
            continue;
        }
        if !is_registry_ref(&d.origin) {
            println!(
                "{}: installed from {}, not a registry; nothing to check",
                d.app_id, d.origin
            );
            continue;
        }
        let plan = super::registry::plan(ctx, &d.origin)
            .with_context(|| format!("checking {} for {}", d.origin, d.app_id))?;
        if plan.resolved.digest.to_string() == d.image {
            println!(
                "{}: up to date ({})",
                d.app_id,
                plan.resolved.digest.short()
            );
            continue;
        }
        let bytes: u64 = plan.missing.iter().map(|(_, s)| s).sum();
        total += bytes;
        changed += 1;
        if dry_run {
            println!(
                "{}: would update to {} from {}: {bytes} bytes to download ({}) in {} blob(s)",
                d.app_id,
                plan.resolved.digest.short(),
                d.origin,
                ui::human_size(bytes),
                plan.missing.len()
            );
            continue;
        }
        drop(plan);
        let pulled = super::registry::pull_into_store(ctx, &d.origin)?;
        println!(
            "{}: downloaded {} ({} bytes)",
            d.app_id,
            ui::human_size(pulled.downloaded),
            pulled.downloaded
        );
        if super::apps::install_image(ctx, &pulled.entry, d.origin.clone(), yes, Some(&d.app_id))?
            != ExitCode::SUCCESS
        {
            status = ExitCode::from(1);
        }
    }
    if changed == 0 {
        println!("Nothing to do.");
    } else if dry_run {
        println!("Total: {total} bytes to download");
    }
    Ok(status)
}

pub fn rollback(ctx: &Ctx, id: &str) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let apps = AppStore::new(ctx.store.root());
    let cur = apps.require(id)?;
    let prev = apps
        .history(id)?
        .into_iter()
        .rev()
        .find(|d| d.serial < cur.serial && d.image != cur.image);
    // The older image's menu entry, generated before anything changes.
    let exports = match &prev {
        Some(p) => {
            let entry = ctx.store.entry_by_digest(&Digest::parse(&p.image)?)?;
            let image = ctx.store.load_image(&entry)?;
            let mut meta = super::apps::app_of(&image)?;
            meta.id = id.to_owned();
            Some(crate::desktop::prepare(&meta, &image, &ctx.store)?)
        }
        None => None,
    };
    let prev = apps.rollback(id)?;
    if let Some(x) = &exports {
        crate::desktop::export(ctx.store.root(), x, &ctx.store.tmp_dir())?;
    }
    println!(
        "Rolled {id} back from deployment {} ({}) to {} ({}). `berth update` moves it forward again{}.",
        cur.serial,
        &cur.image[7..19.min(cur.image.len())],
        prev.serial,
        &prev.image[7..19.min(prev.image.len())],
        if apps.is_masked(id) {
            ""
        } else {
            "; `berth mask` stops that"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn mask(ctx: &Ctx, id: &str, masked: bool) -> anyhow::Result<ExitCode> {
    AppStore::new(ctx.store.root()).set_masked(id, masked)?;
    println!(
        "{id}: {}",
        if masked {
            "masked; `berth update` leaves it as it is"
        } else {
            "unmasked; `berth update` updates it again"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// An image in the store, or a registry reference pulled first.
fn image_or_pull(ctx: &Ctx, r: &str) -> anyhow::Result<ImageEntry> {
    match ctx.store.resolve(r) {
        Ok(e) => Ok(e),
        Err(_) if is_registry_ref(r) => Ok(super::registry::pull_into_store(ctx, r)?.entry),
        Err(e) => Err(e.into()),
    }
}

pub fn rebase(ctx: &Ctx, id: &str, onto: &str) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let apps = AppStore::new(ctx.store.root());
    let d = apps.require(id)?;
    let entry = ctx.store.entry_by_digest(&Digest::parse(&d.image)?)?;
    let app = ctx.store.load_image(&entry)?;
    let ann = app.manifest.annotations().clone().unwrap_or_default();
    let (Some(old_name), Some(old_digest)) = (ann.get(BASE_NAME), ann.get(BASE_DIGEST)) else {
        bail!(
            "{id} cannot be rebased: its image has no {BASE_NAME}/{BASE_DIGEST} annotations, so berth cannot tell its runtime's layers from its own (rebuild it with `berth build` or a tool that records its base)"
        );
    };
    let old_digest = Digest::parse(old_digest)?;
    let old = match ctx.store.load_manifest(&old_digest) {
        Ok(m) => m,
        Err(_) if is_registry_ref(old_name) => {
            let r = format!(
                "{}@{old_digest}",
                old_name.split(':').next().unwrap_or(old_name)
            );
            let p = super::registry::pull_into_store(ctx, &r)
                .with_context(|| format!("fetching {id}'s current runtime {old_name}"))?;
            ctx.store.load_image(&p.entry)?.manifest
        }
        Err(_) => bail!(
            "{id}'s current runtime {old_name} ({old_digest}) is not in the store, so its layers cannot be checked; import or pull it first"
        ),
    };
    let ours = app.manifest.layers();
    let theirs = old.layers();
    if theirs.len() >= ours.len()
        || !theirs
            .iter()
            .zip(ours)
            .all(|(a, b)| a.digest() == b.digest())
    {
        bail!(
            "refusing to rebase {id}: its image does not start with the layers of its recorded runtime {old_name} ({old_digest})"
        );
    }
    let new_entry = image_or_pull(ctx, onto)?;
    if new_entry.digest == old_digest {
        println!("{id} already runs on {onto}");
        return Ok(ExitCode::SUCCESS);
    }
    let new = ctx.store.load_image(&new_entry)?;

    // The new runtime's layers, then the app's own, unchanged.
    let mut layers = LayerRef::of_image(&new)?;
    layers.extend(LayerRef::of_image(&app)?.into_iter().skip(theirs.len()));
    let mut config = app.config.config().clone().unwrap_or_default();
    // The runtime's record of itself follows the runtime.
    let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
    let new_labels = new
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    for k in [LABEL_PACKAGES, LABEL_FROM] {
        match new_labels.get(k) {
            Some(v) => labels.insert(k.to_owned(), v.clone()),
            None => labels.remove(k),
        };
    }
    config.set_labels(Some(labels));
    let base_name = new_entry
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| onto.to_owned());
    let img = NewImage {
        name: format!("rebased/{}:latest", id.to_lowercase()),
        config,
        layers,
        annotations: BTreeMap::from([
            (BASE_NAME.to_owned(), base_name.clone()),
            (BASE_DIGEST.to_owned(), new_entry.digest.to_string()),
        ]),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let work = WorkDir::new(ctx, "rebase-")?;
    let layout = work.0.join("layout");
    oci::write_layout(&layout, std::slice::from_ref(&img), &[])?;
    let res = super::import::import_path(ctx, &layout, None)?;
    let first = res.images.first().context("rebase produced no image")?;
    let rebased = ctx.store.entry_by_digest(&first.digest)?;
    println!(
        "Rebased {id} from {old_name} ({}) onto {base_name} ({}): {} runtime layer(s) replaced, {} app layer(s) kept",
        old_digest.short(),
        new_entry.digest.short(),
        theirs.len(),
        ours.len() - theirs.len()
    );
    super::apps::install_image(ctx, &rebased, d.origin.clone(), true, Some(&d.app_id))
}

/// `berth promote ID@CHANNEL`: the channel copy's image becomes the stable
/// install (a new deployment, so `rollback` undoes it); the copy goes away,
/// its data stays.
pub fn promote(ctx: &Ctx, key: &str) -> anyhow::Result<ExitCode> {
    let Some((id, ch)) = key.split_once('@') else {
        bail!(
            "promote takes a channel copy, ID@CHANNEL (installed with `berth install --as CHANNEL`)"
        );
    };
    let _lock = ctx.lock_shared()?;
    let apps = AppStore::new(ctx.store.root());
    let d = apps.require(key)?;
    let entry = ctx.store.entry_by_digest(&Digest::parse(&d.image)?)?;
    println!(
        "Promoting the {ch} copy of {id} ({}) to the stable install",
        entry.digest.short()
    );
    // The user consented to this image's permissions when installing the
    // copy. The stable install keeps updating from its own origin.
    let origin = apps
        .current(id)?
        .map_or_else(|| d.origin.clone(), |s| s.origin);
    let code = super::apps::install_image(ctx, &entry, origin, true, Some(id))?;
    apps.remove(
        key,
        &ctx.store
            .tmp_dir()
            .join(berth_image::fsutil::unique_name("trash-")),
    )?;
    crate::desktop::unexport(ctx.store.root(), key)?;
    Ok(code)
}
