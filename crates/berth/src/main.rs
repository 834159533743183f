//! `berth`, the front door. `berth run` is carried out here, by a program
//! that links only the store, the app model, the sandbox and the launch
//! library: loading, relocating and forking the full command line (the
//! registry client, the build tools, every command's definition) cost a
//! fifth of a launch. Everything else, `berth run`'s help and errors
//! included, is the full command line, `berth-cli`, which this process
//! becomes (exec: same pid, same arguments).

#[path = "run_args.rs"]
mod run_args;

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use clap::Parser;
use run_args::{RunOnly, RunOnlyCommand};

/// Warnings on stderr, control characters escaped (as `berth-cli` does).
struct Stderr;

impl berth_launch::Notes for Stderr {
    fn warn(&self, msg: &str) {
        eprintln!("berth: {}", berth_app::text::escape_lines(msg));
    }
}

fn error(msg: &str) -> ExitCode {
    eprintln!("berth: error: {}", berth_app::text::escape_lines(msg));
    ExitCode::from(1)
}

fn main() -> ExitCode {
    berth_sandbox::default_sigpipe();
    if subcommand().is_some_and(|c| c == "run")
        && let Ok(cli) = RunOnly::try_parse()
    {
        match launch(cli) {
            Ok(code) => return code,
            // An unknown image or app: the full command line says so,
            // with what was probably meant. Nothing was started yet.
            Err(Failed::Unknown) => {}
            Err(Failed::Other(e)) => return error(&format!("{e:#}")),
        }
    }
    full_cli()
}

/// The first word that is not `--home DIR`.
fn subcommand() -> Option<std::ffi::OsString> {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--home" {
            args.next();
        } else if !a.to_string_lossy().starts_with("--home=") {
            return Some(a);
        }
    }
    None
}

/// Become `berth-cli` with the same arguments.
fn full_cli() -> ExitCode {
    let cli = match berth_launch::programs::full_cli() {
        Ok(p) => p,
        Err(why) => return error(&why),
    };
    let mut cmd = std::process::Command::new(&cli);
    cmd.arg0(berth_launch::programs::FRONT_DOOR)
        .args(std::env::args_os().skip(1));
    // Menu entries call the front door: the full command line writes them.
    if let Ok(me) = std::env::current_exe() {
        cmd.env(berth_launch::programs::FRONT_DOOR_ENV, me);
    }
    let e = cmd.exec();
    error(&format!("cannot start {}: {e}", cli.display()))
}

enum Failed {
    Unknown,
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed::Other(e.into())
    }
}

fn launch(cli: RunOnly) -> Result<ExitCode, Failed> {
    let RunOnlyCommand::Run(a) = cli.command;
    let root = cli.home.unwrap_or_else(berth_image::Store::default_root);
    let store = berth_image::Store::open(&root).map_err(|e| {
        anyhow::Error::new(e).context(format!("opening the store at {}", root.display()))
    })?;
    let print_plan = a.print_plan;
    let places = berth_launch::Places {
        store: root,
        state: berth_launch::host::ensure_runtime_dir()?,
    };
    let plan = match berth_launch::plan(&store, &places, &run_args::request(a), &Stderr) {
        Ok(p) => p,
        Err(e)
            if matches!(e.image(), Some(berth_image::Error::NotFound(_)))
                || matches!(
                    e.deploy(),
                    Some(berth_app::deploy::DeployError::NotInstalled(_))
                ) =>
        {
            return Err(Failed::Unknown);
        }
        Err(e) => return Err(e.into()),
    };
    if print_plan {
        // Image text (commands, env, labels in notes) may hold what JSON
        // leaves raw: C1 controls, DEL, bidi overrides.
        println!(
            "{}",
            berth_app::text::escape_lines(&serde_json::to_string_pretty(&plan)?)
        );
        return Ok(ExitCode::SUCCESS);
    }
    for n in &plan.notes {
        berth_launch::Notes::warn(&Stderr, n);
    }
    let out = berth_launch::apply(&store, plan, &Stderr)?;
    if let Some(msg) = &out.error {
        error(msg);
    }
    Ok(ExitCode::from(out.code.clamp(0, 255) as u8))
}
