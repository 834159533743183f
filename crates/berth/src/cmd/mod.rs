//! One module per subcommand.

mod apps;
mod build;
mod containers;
mod docs;
mod export;
mod fsck;
mod gc;
mod images;
mod import;
mod inspect;
mod instances;
mod registry;
mod rmi;
mod run;
mod runtime;
mod tag;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_engine::Engine;
use berth_image::Store;
use berth_image::lock::LockGuard;

pub use apps::{print_lines, print_review};

use crate::cli::{Cli, Command, KeyCommand, RuntimeCommand};

/// Shared by every command: the engine on the opened store.
pub struct Ctx {
    pub engine: Engine,
}

impl Ctx {
    fn open(home: Option<PathBuf>) -> anyhow::Result<Ctx> {
        let root = home.unwrap_or_else(Store::default_root);
        let store = Store::open(&root)
            .with_context(|| format!("opening the store at {}", root.display()))?;
        let engine = Engine::new(store);
        engine.list_container_images();
        // Menu entries whose berth is gone (`cargo clean`) are rewritten.
        engine.refresh_launcher(&crate::ui::Term::new(true, true));
        Ok(Ctx { engine })
    }

    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// The shared store lock every command but gc holds.
    pub fn lock_shared(&self) -> anyhow::Result<LockGuard> {
        Ok(self
            .store()
            .lock_shared(&|| crate::ui::warn("waiting for a running `berth gc` to finish..."))?)
    }
}

/// `berth integrate`: the launcher, every menu entry, the .berth type.
fn integrate(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    use berth_engine::{desktop, launcher};
    let term = crate::ui::Term::new(true, json);
    let installed = launcher::install()?;
    let apps = ctx.engine.reexport_all(&term)?;
    let hint = desktop::hint_once(ctx.store().root());
    if json {
        crate::ui::print_json(&serde_json::json!({
            "launcher": installed.path,
            "installed": installed.copied,
            "launcher_dir_on_path": installed.dir_on_path,
            "gui": installed.gui,
            "gui_from_earlier": installed.gui_from_earlier,
            "apps_exported": apps,
            "mime_type": desktop::BUNDLE_MIME,
            "installer_entry": desktop::INSTALLER_DESKTOP,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if installed.copied {
        println!("Installed berth as {}", installed.path.display());
    }
    println!("Menu entries call {}", installed.path.display());
    if let Some(dir) = installed.path.parent().filter(|_| !installed.dir_on_path) {
        println!(
            "Note: {} is not on PATH; add it to run `berth` by name.",
            dir.display()
        );
    }
    println!("Wrote the menu entries of {apps} app(s)");
    println!(
        "Registered *.berth files ({}) with the installer entry {}",
        desktop::BUNDLE_MIME,
        desktop::INSTALLER_DESKTOP
    );
    match &installed.gui {
        Some(g) => {
            println!(
                "They open in the installer window ({}); `{}` alone manages app permissions",
                g.display(),
                launcher::GUI
            );
            if installed.gui_from_earlier {
                println!(
                    "Note: that {} was installed earlier, not from this build, and may be \
                     older than berth; `cargo build --release -p berth-gui` and `berth \
                     integrate` replace it",
                    launcher::GUI
                );
            }
        }
        None => println!(
            "They open `berth install` in a terminal: build the installer window with \
             `cargo build --release -p berth-gui` (needs libgtk-4-dev and libadwaita-1-dev) \
             and run `berth integrate` again"
        ),
    }
    if let Some(h) = hint {
        println!("{h}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Where instance state lives (created if needed): see
/// [`berth_launch::host::runtime_dir`].
pub fn state_dir() -> anyhow::Result<PathBuf> {
    Ok(berth_launch::host::ensure_runtime_dir()?)
}

/// Images that installed apps (and their rollback deployments) and
/// working containers use: gc roots besides index.json.
pub fn live_app_images(ctx: &Ctx) -> anyhow::Result<Vec<berth_image::Digest>> {
    let mut out: Vec<berth_image::Digest> = berth_app::deploy::AppStore::new(ctx.store().root())
        .live_images()
        .iter()
        .map(|d| berth_image::Digest::parse(d))
        .collect::<Result<_, _>>()?;
    out.extend(ctx.engine.container_images());
    Ok(out)
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // These describe berth itself: no store needed.
    match &cli.command {
        Command::Completions { shell } => return docs::completions(*shell),
        Command::Man { dir } => return docs::man_pages(dir),
        _ => {}
    }
    let ctx = Ctx::open(cli.home)?;
    let res = run_command(&ctx, cli.command);
    // A mistyped image or app name: say what was probably meant.
    match res {
        Err(e) => match suggestion(&ctx, &e) {
            Some(hint) => {
                crate::ui::error(&format!("{e:#}"));
                crate::ui::warn(&hint);
                Ok(ExitCode::from(1))
            }
            None => Err(e),
        },
        ok => ok,
    }
}

/// "did you mean" for an unknown image name or app ID in `e`'s chain.
fn suggestion(ctx: &Ctx, e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        let engine = cause.downcast_ref::<berth_engine::Error>();
        let launch = cause.downcast_ref::<berth_launch::Error>();
        let image = engine
            .and_then(berth_engine::Error::image)
            .or_else(|| launch.and_then(berth_launch::Error::image))
            .or_else(|| cause.downcast_ref());
        let deploy = engine
            .and_then(berth_engine::Error::deploy)
            .or_else(|| launch.and_then(berth_launch::Error::deploy))
            .or_else(|| cause.downcast_ref());
        if let Some(berth_image::Error::NotFound(typed)) = image {
            let names: Vec<String> = ctx
                .store()
                .images()
                .ok()?
                .into_iter()
                .flat_map(|i| i.names)
                .collect();
            let typed_full = berth_image::ImageName::parse(typed)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| typed.clone());
            return crate::ui::closest(&typed_full, &names).map(|n| {
                format!(
                    "did you mean {}? (`berth images` lists them)",
                    crate::ui::safe(n)
                )
            });
        }
        if let Some(berth_app::deploy::DeployError::NotInstalled(typed)) = deploy {
            let ids: Vec<String> = berth_app::deploy::AppStore::new(ctx.store().root())
                .list()
                .into_iter()
                .map(|d| d.app_id)
                .collect();
            return crate::ui::closest(typed, &ids).map(|n| {
                format!(
                    "did you mean {}? (`berth list` lists them)",
                    crate::ui::safe(n)
                )
            });
        }
    }
    None
}

fn run_command(ctx: &Ctx, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Import {
            source,
            tag,
            json,
            quiet,
        } => import::run(ctx, &source, tag.as_deref(), json, quiet),
        Command::Export { image, file, json } => export::run(ctx, &image, &file, json),
        Command::Images { json, quiet } => images::run(ctx, json, quiet),
        Command::Inspect { image, json } => inspect::run(ctx, &image, json),
        Command::Tag { image, name, json } => tag::run(ctx, &image, &name, json),
        Command::Rmi {
            images,
            force,
            json,
        } => rmi::run(ctx, &images, force, json),
        Command::Gc { json } => gc::run(ctx, json),
        Command::Fsck { json, repair } => fsck::run(ctx, json, repair),
        Command::Run(args) => run::run(ctx.store(), args),
        Command::Install {
            source,
            yes,
            as_,
            json,
        } => apps::install(ctx, &source, yes, as_.as_deref(), json),
        Command::Promote { app, json } => update::promote(ctx, &app, json),
        Command::Uninstall {
            app,
            delete_data,
            json,
        } => apps::uninstall(ctx, &app, delete_data, json),
        Command::List { json } => apps::list(ctx, json),
        Command::Info { app, json } => apps::info(ctx, &app, json),
        Command::Permissions {
            app,
            json,
            portals,
            reset_portals,
        } => apps::permissions(ctx, &app, json, portals, reset_portals),
        Command::Override {
            app,
            grant,
            revoke,
            reset,
            json,
        } => apps::override_(ctx, &app, grant, revoke, reset, json),
        Command::Ps { json, quiet } => instances::ps(json, quiet),
        Command::Create { name, image, json } => containers::create(ctx, &name, &image, json),
        Command::Containers { json } => containers::list(ctx, json),
        Command::Rm { names } => containers::rm(ctx, &names),
        Command::Commit {
            what,
            image,
            with_data,
            json,
        } => containers::commit(ctx, &what, image.as_deref(), with_data, json),
        Command::Identify { pid, json } => instances::identify(pid, json),
        Command::Kill { instance, signal } => instances::kill(&instance, signal.as_deref()),
        Command::Pause { instance } => instances::pause(&instance, true),
        Command::Resume { instance } => instances::pause(&instance, false),
        Command::Enter { instance, command } => instances::enter(&instance, command),
        Command::Runtime(RuntimeCommand::Create {
            name,
            from,
            packages,
            sdk,
            sdk_packages,
            sdk_name,
            mirror,
            chunks,
        }) => runtime::create(
            ctx,
            &runtime::CreateArgs {
                name,
                from,
                packages,
                sdk: sdk || !sdk_packages.is_empty(),
                sdk_packages,
                sdk_name,
                mirrors: mirror,
                chunks: usize::from(chunks),
            },
        ),
        Command::Runtime(RuntimeCommand::Packages { image, json }) => {
            runtime::packages(ctx, &image, json)
        }
        Command::Build {
            manifest,
            tag,
            json,
        } => build::build(ctx, &manifest, tag.as_deref(), json),
        Command::Bundle {
            source,
            file,
            thin,
            json,
        } => export::bundle(ctx, &source, &file, thin, json),
        Command::Pull { reference, json } => registry::pull(ctx, &reference, json),
        Command::Push {
            image,
            reference,
            sign,
            delta_from,
            json,
        } => registry::push(ctx, &image, &reference, sign.as_deref(), &delta_from, json),
        Command::Key {
            command: KeyCommand::Generate { prefix },
        } => registry::key_generate(&prefix),
        Command::Update {
            apps,
            dry_run,
            yes,
            json,
        } => update::update(ctx, &apps, dry_run, yes, json),
        Command::Rollback { app, json } => update::rollback(ctx, &app, json),
        Command::Mask { app, remove } => update::mask(ctx, &app, !remove),
        Command::Rebase { app, onto, json } => update::rebase(ctx, &app, &onto, json),
        // Answered before the store was opened; kept for exhaustiveness.
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man_pages(&dir),
        Command::Integrate { json } => integrate(ctx, json),
    }
}
