//! `berth build MANIFEST`: run the manifest's steps in the sandbox on the
//! SDK, then turn the install dir into one reproducible layer on top of the
//! runtime's unchanged layers.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, bail};
use berth_build::layer::{LayerWriter, dir_layer};
use berth_build::manifest::BuildManifest;
use berth_build::oci::{self, BASE_DIGEST, BASE_NAME, LayerRef, NewImage};
use berth_image::{Digest, ImageName};

use super::Ctx;
use super::runtime::{WorkDir, source_date_epoch};
use crate::ui;

#[derive(serde::Serialize)]
struct Built {
    image: String,
    id: String,
    digest: Digest,
    app_layer: Digest,
    app_diff_id: Digest,
    app_layer_size: u64,
    base_name: String,
    base_digest: Digest,
}

/// Copy a source tree (files, dirs, symlinks as links). `skip` is left out
/// so a store kept inside the source is not copied into itself.
fn copy_tree(from: &Path, to: &Path, skip: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let src = e.path();
        if src == skip {
            continue;
        }
        let dst = to.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst, skip)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

/// Newest mtime in a tree: the image's default `created` date.
fn newest_mtime(dir: &Path, skip: &Path) -> u64 {
    let mut best = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p == skip {
                continue;
            }
            if let Ok(md) = std::fs::symlink_metadata(&p) {
                if md.is_dir() {
                    best = best.max(newest_mtime(&p, skip));
                } else {
                    best = best.max(u64::try_from(md.mtime()).unwrap_or(0));
                }
            }
        }
    }
    best
}

/// `WxH` of a PNG from its IHDR chunk, for the icon theme directory.
fn png_size(b: &[u8]) -> Option<String> {
    if b.len() < 24 || &b[..8] != b"\x89PNG\r\n\x1a\n" || &b[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(b[20..24].try_into().ok()?);
    Some(format!("{w}x{h}"))
}

/// Put a manifest-relative icon into the install dir; returns its path in
/// the image.
fn place_icon(m: &BuildManifest, base: &Path, install: &Path) -> anyhow::Result<Option<String>> {
    let Some(icon) = &m.icon else {
        return Ok(None);
    };
    let dir = &m.build.install_dir;
    if let Some(rel) = icon.strip_prefix(&format!("{dir}/")) {
        anyhow::ensure!(
            install.join(rel).is_file(),
            "icon {icon} was not installed by the build steps"
        );
        return Ok(Some(icon.clone()));
    }
    let src = base.join(icon);
    let bytes =
        std::fs::read(&src).with_context(|| format!("reading the icon {}", src.display()))?;
    let (size, ext) = if icon.ends_with(".svg") {
        ("scalable".to_owned(), "svg")
    } else {
        let s = png_size(&bytes).with_context(|| format!("icon {icon} is neither PNG nor SVG"))?;
        (s, "png")
    };
    let rel = format!("share/icons/hicolor/{size}/apps/{}.{ext}", m.id);
    let dst = install.join(&rel);
    std::fs::create_dir_all(dst.parent().unwrap_or(install))?;
    std::fs::write(&dst, bytes)?;
    Ok(Some(format!("{dir}/{rel}")))
}

pub fn build(
    ctx: &Ctx,
    manifest: &Path,
    tag: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let m = BuildManifest::parse(&text, &manifest.display().to_string())?;
    let name = ImageName::parse(tag.unwrap_or(&m.image_name()))?;
    let base_dir = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .canonicalize()
        .with_context(|| format!("finding the directory of {}", manifest.display()))?;
    let source = base_dir.join(&m.build.source);
    anyhow::ensure!(
        source.is_dir(),
        "[build] source {} is not a directory",
        source.display()
    );

    let (rt_entry, rt_image, sdk_entry) = {
        let _lock = ctx.lock_shared()?;
        let hint = |what: &str, n: &str| {
            format!(
                "the {what} {n} is not in the store: create it with `berth runtime create` or import it"
            )
        };
        let rt = ctx
            .store()
            .resolve(&m.runtime)
            .with_context(|| hint("runtime", &m.runtime))?;
        let sdk = ctx
            .store()
            .resolve(m.sdk())
            .with_context(|| hint("SDK", m.sdk()))?;
        let img = ctx.store().load_image(&rt)?;
        (rt, img, sdk)
    };

    let store_root = ctx
        .store()
        .root()
        .canonicalize()
        .unwrap_or_else(|_| ctx.store().root().to_owned());
    // File dates in the layer are SOURCE_DATE_EPOCH or 0, so the layer
    // digest depends on content only (a fresh checkout or a `touch` does not
    // change it); the image's `created` is the newest source file.
    let sde = source_date_epoch()?;
    let epoch = sde.unwrap_or(0);
    let created = sde.unwrap_or_else(|| newest_mtime(&source, &store_root));
    let work = WorkDir::new(&ctx.engine, "build-")?;
    let src_copy = work.0.join("src");
    let install = work.0.join("install");
    copy_tree(&source, &src_copy, &store_root)?;
    std::fs::create_dir_all(&install)?;

    let exe = std::env::current_exe().context("finding the berth binary")?;
    // Debian packages first, on the runtime itself: one layer of what it
    // lacks.
    let packages = if m.packages.is_empty() && m.debs.is_empty() {
        None
    } else {
        Some(install_packages(
            ctx,
            &exe,
            &m,
            &base_dir,
            &rt_entry.digest,
            &work.0,
            epoch,
        )?)
    };
    let total = m.build.steps.len();
    for (i, step) in m.build.steps.iter().enumerate() {
        eprintln!("==> step {}/{total}: {step}", i + 1);
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("--home").arg(ctx.store().root()).arg("run");
        cmd.arg("--bind")
            .arg(format!("{}:/build", src_copy.display()));
        cmd.arg("--bind")
            .arg(format!("{}:{}", install.display(), m.build.install_dir));
        cmd.args(["--workdir", "/build"]);
        cmd.arg("--env").arg(format!("SOURCE_DATE_EPOCH={epoch}"));
        cmd.arg("--env")
            .arg(format!("BERTH_DEST={}", m.build.install_dir));
        for (k, v) in &m.build.env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        if m.build.network {
            cmd.arg("--network");
        }
        cmd.arg(sdk_entry.digest.to_string());
        cmd.args(["--", "/bin/sh", "-ec", step]);
        let st = run_quiet(&mut cmd, "a build step")?;
        if !st.success() {
            let how = st
                .code()
                .map_or_else(|| format!("{st}"), |c| format!("exit status {c}"));
            bail!(
                "build step {}/{total} failed ({how}): {step}\nits output is above; no image was made",
                i + 1
            );
        }
    }

    let mut icon = place_icon(&m, &base_dir, &install)?;
    let mut blobs = Vec::new();
    let mut files = 0;
    if let Some(p) = &packages {
        blobs.push(p.blob.clone());
        files += p.files;
    }
    if !m.build.steps.is_empty() {
        let mut w = LayerWriter::create(&work.0.join("app.layer"))?;
        let stats = dir_layer(&install, &m.build.install_dir, epoch, &mut w)?;
        let blob = w.finish()?;
        if !stats.skipped.is_empty() {
            ui::warn(&format!(
                "warning: left out {} special file(s) the build made: {}",
                stats.skipped.len(),
                ui::summarize(&stats.skipped)
            ));
        }
        anyhow::ensure!(
            stats.files > 0,
            "the build installed nothing into {}; the app layer would be empty",
            m.build.install_dir
        );
        files += stats.files;
        blobs.push(blob);
    }
    let blob = blobs.last().cloned().context("the build made no layer")?;

    // The runtime's config and layers, unchanged, plus the app.
    let mut config = rt_image.config.config().clone().unwrap_or_default();
    let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
    // The app is not a runtime, though it keeps the runtime's package list.
    labels.remove(super::runtime::LABEL_KIND);
    if let Some(p) = &packages {
        // The packages' own desktop entry and icon, unless the manifest
        // gives them.
        if icon.is_none() {
            icon.clone_from(&p.icon);
        }
        if m.desktop.is_none()
            && let Some(d) = &p.desktop
        {
            labels.insert(berth_app::metadata::LABEL_DESKTOP.to_owned(), d.clone());
        }
        labels.insert(
            LABEL_APP_PACKAGES.to_owned(),
            berth_build::dpkg::to_label(&p.list),
        );
    }
    labels.extend(m.labels(icon.as_deref()));
    config.set_labels(Some(labels));
    config.set_cmd(Some(m.command.words()));
    config.set_entrypoint(None);
    let mut layers = LayerRef::of_image(&rt_image)?;
    layers.extend(blobs.iter().map(LayerRef::from_blob));
    let base_name = rt_entry
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| m.runtime.clone());
    let img = NewImage {
        name: name.to_string(),
        config,
        layers,
        annotations: BTreeMap::from([
            (BASE_NAME.to_owned(), base_name.clone()),
            (BASE_DIGEST.to_owned(), rt_entry.digest.to_string()),
        ]),
        created,
    };
    let layout = work.0.join("layout");
    let app_layer = blob.digest.clone();
    let (app_diff_id, app_size) = (blob.diff_id.clone(), blob.size);
    oci::write_layout(&layout, std::slice::from_ref(&img), &blobs)?;

    let _lock = ctx.lock_shared()?;
    let res = super::import::import_path(ctx, &layout, None)?;
    let first = res.images.first().context("the build produced no image")?;
    let built = Built {
        image: name.to_string(),
        id: first.id.clone(),
        digest: first.digest.clone(),
        app_layer,
        app_diff_id,
        app_layer_size: app_size,
        base_name,
        base_digest: rt_entry.digest.clone(),
    };
    if json {
        ui::print_json(&built)?;
    } else {
        println!(
            "Built {} (ID {}) on {}: app layer {} ({}, {} files){}",
            built.image,
            built.id,
            built.base_name,
            built.app_layer,
            ui::human_size(app_size),
            files,
            packages.as_ref().map_or(String::new(), |p| format!(
                "; {} Debian package(s) the runtime lacked: {}",
                p.list.len(),
                ui::summarize(&p.list.iter().map(|x| x.name.clone()).collect::<Vec<_>>())
            ))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Run a `berth run` of the build. It never reads the terminal; its
/// output goes to stderr as it happens, so stdout carries only the result
/// (`--json`).
fn run_quiet(
    cmd: &mut std::process::Command,
    what: &str,
) -> anyhow::Result<std::process::ExitStatus> {
    cmd.stdin(Stdio::null());
    let err = std::os::fd::AsFd::as_fd(&std::io::stderr())
        .try_clone_to_owned()
        .context("duplicating stderr")?;
    cmd.stdout(Stdio::from(err));
    cmd.status()
        .with_context(|| format!("starting `berth run` for {what}"))
}

/// The label listing the Debian packages an app adds to its runtime (one
/// `name version arch` per line, as the runtime's own list).
pub const LABEL_APP_PACKAGES: &str = "org.berth.build.packages";

/// Unpacked packages as a layer, and what they say about the app.
struct Packages {
    blob: berth_build::layer::LayerBlob,
    files: u64,
    list: Vec<berth_build::dpkg::Package>,
    desktop: Option<String>,
    icon: Option<String>,
}

/// Resolve and unpack the manifest's packages in a sandbox on the runtime
/// (its dpkg status and apt sources, the network on), then make the tree
/// one layer.
fn install_packages(
    ctx: &Ctx,
    exe: &Path,
    m: &BuildManifest,
    base_dir: &Path,
    runtime: &Digest,
    work: &Path,
    epoch: u64,
) -> anyhow::Result<Packages> {
    use berth_build::packages;
    for d in &m.debs {
        anyhow::ensure!(
            base_dir.join(d).is_file(),
            "debs: {} does not exist",
            base_dir.join(d).display()
        );
    }
    let scratch = work.join("packages");
    std::fs::create_dir_all(&scratch)?;
    eprintln!(
        "==> packages: {}",
        m.packages
            .iter()
            .chain(m.debs.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home").arg(ctx.store().root()).arg("run");
    cmd.arg("--network");
    cmd.arg("--bind")
        .arg(format!("{}:{}", scratch.display(), packages::WORK));
    cmd.arg("--bind")
        .arg(format!("{}:{}:ro", base_dir.display(), packages::SOURCE));
    cmd.arg(runtime.to_string());
    cmd.args(["--", "/bin/sh", "-c", packages::SCRIPT, "berth-packages"]);
    cmd.args(packages::script_args(&m.packages, &m.debs));
    let st = run_quiet(&mut cmd, "the packages")?;
    if !st.success() {
        bail!(
            "installing the packages failed ({st}); apt's output is above (a package the runtime's sources lack, or no network?); no image was made"
        );
    }
    // What the sandbox left is read beneath the scratch directory, never
    // through a symlink it planted; the tree must be a real directory.
    use berth_image::source::{DirSource, Source};
    let list_text = DirSource::open(&scratch)
        .and_then(|d| d.read_small(packages::LIST, 16 << 20))
        .context("reading the list of unpacked packages")?;
    let list = packages::parse_list(&String::from_utf8_lossy(&list_text))?;
    anyhow::ensure!(
        !list.is_empty(),
        "the runtime has every package asked for already: there is nothing to add"
    );
    let root = scratch.join(packages::ROOT);
    anyhow::ensure!(
        std::fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()),
        "the unpacked packages are not a directory"
    );
    let (desktop, icon) = packages::desktop_and_icon(&root, &m.id);
    let mut w = LayerWriter::create(&work.join("packages.layer"))?;
    let stats = berth_build::layer::root_layer(&root, epoch, &mut w)?;
    let blob = w.finish()?;
    Ok(Packages {
        blob,
        files: stats.files,
        list,
        desktop,
        icon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_sizes() {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        b.extend_from_slice(&64u32.to_be_bytes());
        b.extend_from_slice(&48u32.to_be_bytes());
        assert_eq!(png_size(&b).as_deref(), Some("64x48"));
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
