//! The `berth` command line. Each subcommand lives in `cmd/`; errors are
//! printed once, here, with their whole chain.

mod cli;
mod cmd;
mod desktop;
mod ui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    berth_sandbox::default_sigpipe();
    let cli = cli::Cli::parse();
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            ui::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}
