//! berth-gui: berth's windows. `berth-gui install FILE` is what a
//! double-clicked `.berth` file opens (review, install, launch); plain
//! `berth-gui` is the permission manager. Like the CLI, it only asks and
//! shows: every step is a call into `berth_engine`.

mod installer;
mod manager;
mod widgets;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use adw::prelude::*;
use clap::{Parser, Subcommand};
use gtk::{gio, glib};
use {gtk4 as gtk, libadwaita as adw};

#[derive(Parser)]
#[command(
    name = "berth-gui",
    version,
    about = "berth's installer and permission manager",
    long_about = "berth's windows: `berth-gui install FILE.berth` reviews an app bundle \
                  (its icon, name, sizes and permissions ranked by risk) and installs it; \
                  `berth-gui` lists installed apps and switches what each may touch. \
                  Both change the same store, in the same way, as the `berth` command."
)]
struct Cli {
    /// The store to use (default: $BERTH_HOME, else ~/.local/share/berth,
    /// or /var/lib/berth for root)
    #[arg(long, env = "BERTH_HOME", value_name = "DIR", global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Clone)]
enum Cmd {
    /// Review an app bundle (.berth, or any OCI or Docker archive) and install it
    Install { file: PathBuf },
    /// Show installed apps and what they may do (the default)
    Manage {
        /// Open this app's page
        app: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli
        .store
        .clone()
        .unwrap_or_else(berth_image::Store::default_root);
    let cmd = cli.cmd.unwrap_or(Cmd::Manage { app: None });
    // Said plainly, before GTK would only warn "cannot open display".
    let has = |v: &str| std::env::var_os(v).is_some_and(|d| !d.is_empty());
    if !has("DISPLAY") && !has("WAYLAND_DISPLAY") {
        eprintln!(
            "berth-gui: error: no display (neither WAYLAND_DISPLAY nor DISPLAY is set); \
             in a terminal, `berth install FILE` and `berth permissions APPID` do the same"
        );
        return ExitCode::from(1);
    }
    let id = match cmd {
        Cmd::Install { .. } => "org.berth.Installer",
        Cmd::Manage { .. } => "org.berth.Permissions",
    };
    glib::set_application_name(match cmd {
        Cmd::Install { .. } => "Install berth app",
        Cmd::Manage { .. } => "berth app permissions",
    });
    // Each window is its own process: two bundles opened at once get two
    // installers, and no D-Bus name is needed.
    let app = adw::Application::builder()
        .application_id(id)
        .flags(gio::ApplicationFlags::NON_UNIQUE)
        .build();
    app.connect_activate(move |app| match &cmd {
        Cmd::Install { file } => installer::open(app, root.clone(), file.clone()),
        Cmd::Manage { app: id } => manager::open(app, root.clone(), id.clone()),
    });
    // Our arguments are parsed already; GTK gets none of them.
    let code = app.run_with_args(&["berth-gui"]);
    ExitCode::from(u8::try_from(code.value()).unwrap_or(1))
}
