//! `berth completions` and `berth man`: generated from the clap definition,
//! so they never drift from `--help`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man_pages(dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = Cli::command();
    let mut n = 0;
    write_page(dir, "berth", cmd.clone(), &mut n)?;
    for sub in cmd.get_subcommands() {
        let name = format!("berth-{}", sub.get_name());
        let shown = format!("berth {}", sub.get_name());
        write_page(
            dir,
            &name,
            sub.clone().name(leak(&name)).bin_name(shown),
            &mut n,
        )?;
        for subsub in sub.get_subcommands() {
            let name = format!("berth-{}-{}", sub.get_name(), subsub.get_name());
            let shown = format!("berth {} {}", sub.get_name(), subsub.get_name());
            write_page(
                dir,
                &name,
                subsub.clone().name(leak(&name)).bin_name(shown),
                &mut n,
            )?;
        }
    }
    println!("Wrote {n} man pages to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// clap names are `&'static str`; this runs once per page of a command
/// that then exits.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command, n: &mut usize) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .with_context(|| format!("rendering the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    *n += 1;
    Ok(())
}
