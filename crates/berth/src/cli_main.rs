//! The `berth` command line. Each subcommand lives in `cmd/`; errors are
//! printed once, here, with their whole chain.

// Everything berth prints goes through these, shadowing std's: text from
// images and registries reaches the terminal with control characters,
// escape sequences and bidi overrides shown as `\uXXXX`, never obeyed.
// Line breaks and tabs in berth's own formats stay.
macro_rules! println {
    () => { ::std::println!() };
    ($($t:tt)*) => { ::std::println!("{}", $crate::ui::safe_lines(&::std::format!($($t)*))) };
}
macro_rules! print {
    ($($t:tt)*) => { ::std::print!("{}", $crate::ui::safe_lines(&::std::format!($($t)*))) };
}
macro_rules! eprintln {
    () => { ::std::eprintln!() };
    ($($t:tt)*) => { ::std::eprintln!("{}", $crate::ui::safe_lines(&::std::format!($($t)*))) };
}

mod cli;
mod cmd;
mod run_args;
mod ui;

use std::process::ExitCode;

fn main() -> ExitCode {
    berth_sandbox::default_sigpipe();
    let cli = cli::Cli::from_args();
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            ui::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}
