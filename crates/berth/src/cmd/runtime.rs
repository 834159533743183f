//! `berth runtime create` and `berth runtime packages`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use berth_build::debian::{self, Bootstrap};
use berth_build::dpkg::{self, Package};
use berth_build::layer::{LayerBlob, LayerWriter};
use berth_build::oci::{self, BASE_DIGEST, BASE_NAME, LayerRef, NewImage};
use berth_build::{chunk, tardiff};
use berth_image::{Digest, ImageName};
use oci_spec::image::Config;

use super::Ctx;
use crate::ui;

pub use berth_build::oci::{LABEL_FROM, LABEL_KIND, LABEL_PACKAGES};
const DEFAULT_SDK: &[&str] = &["gcc", "g++", "make", "pkg-config", "libc6-dev"];

pub struct CreateArgs {
    pub name: String,
    pub from: String,
    pub packages: Vec<String>,
    pub sdk: bool,
    pub sdk_packages: Vec<String>,
    pub sdk_name: Option<String>,
    pub mirrors: Vec<String>,
    /// Layers to split the runtime into by package (1: one layer).
    pub chunks: usize,
}

pub use berth_engine::WorkDir;

/// SOURCE_DATE_EPOCH if set (reproducible builds), else now.
pub fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => {
            Ok(Some(s.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds")
            })?))
        }
        _ => Ok(None),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn runtime_config(kind: &str, from: &str, pkgs: &[Package]) -> Config {
    let mut c = Config::default();
    c.set_env(Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        "LANG=C.UTF-8".into(),
    ]));
    c.set_cmd(Some(vec!["/bin/bash".into()]));
    c.set_labels(Some(HashMap::from([
        (LABEL_KIND.to_owned(), kind.to_owned()),
        (LABEL_FROM.to_owned(), from.to_owned()),
        (LABEL_PACKAGES.to_owned(), dpkg::to_label(pkgs)),
    ])));
    c
}

fn packages_of(tarball: &Path) -> anyhow::Result<Vec<Package>> {
    let status = tardiff::read_file(tarball, "var/lib/dpkg/status", 64 << 20)?
        .context("the root filesystem has no /var/lib/dpkg/status")?;
    Ok(dpkg::parse_status(&String::from_utf8_lossy(&status)))
}

/// Wait for mmdebstrap runs, showing elapsed time; the first failure wins.
fn wait_all(runs: Vec<(&str, std::process::Child, PathBuf)>) -> anyhow::Result<()> {
    let spinner = ui::Spinner::new(&format!(
        "running mmdebstrap for the {}",
        runs.iter().map(|r| r.0).collect::<Vec<_>>().join(" and ")
    ));
    let mut pending = runs;
    let mut failure = None;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (what, mut child, log) in pending {
            match child.try_wait()? {
                Some(st) if st.success() => {}
                Some(st) => {
                    failure.get_or_insert_with(|| debian::failure(what, st, &log));
                }
                None if failure.is_some() => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                None => still.push((what, child, log)),
            }
        }
        pending = still;
        std::thread::sleep(Duration::from_millis(100));
    }
    spinner.finish();
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The runtime's layer blobs: one, or with `chunks` > 1 one per group of
/// packages (berth_build::chunk), empty groups left out, most often
/// changed (what no package owns) on top.
fn runtime_layers(rt_tar: &Path, work: &Path, chunks: usize) -> anyhow::Result<Vec<LayerBlob>> {
    if chunks <= 1 {
        let mut w = LayerWriter::create(&work.join("runtime.layer"))?;
        tardiff::diff(None, rt_tar, &mut w).context("writing the runtime layer")?;
        return Ok(vec![w.finish()?]);
    }
    let (lists, sizes) = tardiff::dpkg_lists(rt_tar)?;
    let owners = chunk::owners(&lists);
    let mut pkg_sizes: BTreeMap<String, u64> = lists.keys().map(|p| (p.clone(), 0)).collect();
    for (path, size) in &sizes {
        if let Some(p) = owners.get(path) {
            *pkg_sizes.entry(p.clone()).or_default() += size;
        }
    }
    let plan = chunk::plan(&pkg_sizes, chunks);
    let mut writers = (0..plan.layers)
        .map(|i| LayerWriter::create(&work.join(format!("runtime-{i}.layer"))))
        .collect::<Result<Vec<_>, _>>()?;
    let layer_of = |p: &[u8]| (!chunk::is_backup(p)).then(|| plan.layer_of(p, &owners));
    let counts =
        tardiff::split(rt_tar, &layer_of, &mut writers).context("writing the runtime's layers")?;
    let mut blobs = Vec::new();
    let mut rest = None;
    for (i, (w, n)) in writers.into_iter().zip(counts).enumerate() {
        let b = w.finish()?;
        match (i, n) {
            (_, 0) => {}
            (0, _) => rest = Some(b),
            _ => blobs.push(b),
        }
    }
    // Layer 0 (dpkg's database, generated files) changes with every
    // update: last, so the ones below stay a shared base run.
    blobs.extend(rest);
    Ok(blobs)
}

pub fn create(ctx: &Ctx, a: &CreateArgs) -> anyhow::Result<ExitCode> {
    let name = ImageName::parse(&a.name)?;
    let sdk_name = match &a.sdk_name {
        Some(n) => ImageName::parse(n)?,
        None => ImageName::parse(&format!("{}-sdk:{}", name.repository, name.tag))?,
    };
    let from = debian::From::parse(&a.from)?;
    let packages = debian::parse_packages(&a.packages)?;
    let mut sdk_packages = debian::parse_packages(&a.sdk_packages)?;
    if sdk_packages.is_empty() {
        sdk_packages = DEFAULT_SDK.iter().map(|s| (*s).to_owned()).collect();
    }
    let work = WorkDir::new(&ctx.engine, "runtime-")?;
    let rt_tar = work.0.join("runtime.tar");
    let sdk_tar = work.0.join("sdk.tar");
    let rt = Bootstrap {
        from: from.clone(),
        packages: packages.clone(),
        mirrors: a.mirrors.clone(),
    };
    let mut runs = vec![(
        "runtime",
        rt.spawn(&rt_tar, &work.0.join("runtime.log"))?,
        work.0.join("runtime.log"),
    )];
    if a.sdk {
        let mut all = packages.clone();
        all.extend(sdk_packages.iter().cloned());
        let sdk = Bootstrap {
            packages: all,
            ..rt.clone()
        };
        runs.push((
            "SDK",
            sdk.spawn(&sdk_tar, &work.0.join("sdk.log"))?,
            work.0.join("sdk.log"),
        ));
    }
    // Both trees come from the same mirror state, so the SDK is the runtime
    // plus its own packages; building them side by side halves the wait.
    wait_all(runs)?;

    let spinner = ui::Spinner::new("writing layers");
    let mut blobs: Vec<LayerBlob> = runtime_layers(&rt_tar, &work.0, a.chunks)?;
    let rt_layers = blobs.len();
    let rt_pkgs = packages_of(&rt_tar)?;
    let created = source_date_epoch()?.unwrap_or_else(now);
    let from_s = format!("debian:{}", from.suite);
    let mut images = vec![NewImage {
        name: name.to_string(),
        config: runtime_config("runtime", &from_s, &rt_pkgs),
        layers: blobs.iter().map(LayerRef::from_blob).collect(),
        annotations: BTreeMap::new(),
        created,
    }];
    let mut sdk_pkgs = Vec::new();
    if a.sdk {
        let mut w = LayerWriter::create(&work.0.join("sdk.layer"))?;
        tardiff::diff(Some(&rt_tar), &sdk_tar, &mut w).context("computing the SDK layer")?;
        blobs.push(w.finish()?);
        sdk_pkgs = packages_of(&sdk_tar)?;
        let (_, rt_manifest) = oci::image_json(&images[0])?;
        images.push(NewImage {
            name: sdk_name.to_string(),
            config: runtime_config("sdk", &from_s, &sdk_pkgs),
            layers: blobs.iter().map(LayerRef::from_blob).collect(),
            annotations: BTreeMap::from([
                (BASE_NAME.to_owned(), name.to_string()),
                (BASE_DIGEST.to_owned(), Digest::of(&rt_manifest).to_string()),
            ]),
            created,
        });
    }
    let sizes: Vec<u64> = blobs.iter().map(|b| b.size).collect();
    let layout = work.0.join("layout");
    oci::write_layout(&layout, &images, &blobs)?;
    spinner.finish();
    let _ = std::fs::remove_file(&rt_tar);
    let _ = std::fs::remove_file(&sdk_tar);

    let _lock = ctx.lock_shared()?;
    let res = super::import::import_path(ctx, &layout, None)?;
    let id = |i: usize| res.images.get(i).map_or("?", |x| x.id.as_str()).to_owned();
    println!(
        "Created runtime {name} (ID {}): {} packages, {} {}",
        id(0),
        rt_pkgs.len(),
        if rt_layers == 1 {
            "layer".to_owned()
        } else {
            format!("{rt_layers} layers,")
        },
        ui::human_size(sizes[..rt_layers].iter().sum())
    );
    if a.sdk {
        println!(
            "Created SDK {sdk_name} (ID {}): {} packages; it shares the runtime's layers and adds {}",
            id(1),
            sdk_pkgs.len(),
            ui::human_size(sizes[rt_layers])
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn packages(ctx: &Ctx, image: &str, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = ctx.lock_shared()?;
    let entry = ctx.store().resolve(image)?;
    let img = ctx.store().load_image(&entry)?;
    let label = img
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().as_ref())
        .and_then(|l| l.get(LABEL_PACKAGES).cloned())
        .with_context(|| {
            format!("{image} records no package list (label {LABEL_PACKAGES}); it was not made by `berth runtime create`")
        })?;
    let pkgs = dpkg::from_label(&label);
    if json {
        ui::print_json(&pkgs)?;
    } else {
        let rows: Vec<Vec<String>> = pkgs
            .iter()
            .map(|p| vec![p.name.clone(), p.version.clone(), p.arch.clone()])
            .collect();
        ui::table(&["PACKAGE", "VERSION", "ARCH"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}
