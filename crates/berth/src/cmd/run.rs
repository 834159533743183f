//! `berth run`: the launch library's plan, printed or applied.

use std::process::ExitCode;

use crate::cli::RunArgs;
use crate::ui;

/// Warnings on stderr, escaped like everything berth prints.
pub struct TermNotes;

impl berth_launch::Notes for TermNotes {
    fn warn(&self, msg: &str) {
        ui::warn(msg);
    }
}

pub fn run(store: &berth_image::Store, a: RunArgs) -> anyhow::Result<ExitCode> {
    let print_plan = a.print_plan;
    let places = berth_launch::Places {
        store: store.root().to_owned(),
        state: berth_launch::host::ensure_runtime_dir()?,
    };
    let plan = berth_launch::plan(store, &places, &crate::run_args::request(a), &TermNotes)?;
    if print_plan {
        ui::print_json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    for n in &plan.notes {
        ui::warn(n);
    }
    let out = berth_launch::apply(store, plan, &TermNotes)?;
    if let Some(msg) = &out.error {
        ui::error(msg);
    }
    Ok(ExitCode::from(out.code.clamp(0, 255) as u8))
}
