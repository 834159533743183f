//! One module per subcommand.

mod export;
mod fsck;
mod gc;
mod images;
mod import;
mod inspect;
mod rmi;
mod tag;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_image::Store;
use berth_image::lock::LockGuard;

use crate::cli::{Cli, Command};

/// Shared by every command: the opened store.
pub struct Ctx {
    pub store: Store,
}

impl Ctx {
    fn open(home: Option<PathBuf>) -> anyhow::Result<Ctx> {
        let root = home.unwrap_or_else(Store::default_root);
        let store = Store::open(&root)
            .with_context(|| format!("opening the store at {}", root.display()))?;
        Ok(Ctx { store })
    }

    /// The shared store lock every command but gc holds.
    pub fn lock_shared(&self) -> anyhow::Result<LockGuard> {
        Ok(self
            .store
            .lock_shared(&|| crate::ui::warn("waiting for a running `berth gc` to finish..."))?)
    }
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx::open(cli.home)?;
    match cli.command {
        Command::Import {
            source,
            tag,
            json,
            quiet,
        } => import::run(&ctx, &source, tag.as_deref(), json, quiet),
        Command::Export { image, file } => export::run(&ctx, &image, &file),
        Command::Images { json, quiet } => images::run(&ctx, json, quiet),
        Command::Inspect { image, json } => inspect::run(&ctx, &image, json),
        Command::Tag { image, name } => tag::run(&ctx, &image, &name),
        Command::Rmi { images, force } => rmi::run(&ctx, &images, force),
        Command::Gc { json } => gc::run(&ctx, json),
        Command::Fsck { json } => fsck::run(&ctx, json),
    }
}
