//! install, uninstall, list, info, permissions, override: the terminal
//! front end of the engine's lifecycle.

use std::process::ExitCode;

use berth_app::permissions::ReviewLine;
use berth_engine::{Action, Review};

use super::Ctx;
use crate::ui::{self, Term};

/// The review as the terminal shows it: what is installed, then what
/// needs consent, highest risk first, and a summary line last.
pub fn print_review(r: &Review) {
    println!(
        "{} {} ({}), {}{}",
        r.action.verb(),
        ui::safe(&r.name),
        ui::safe(&r.id),
        ui::human_size(r.size),
        match (r.shared, r.downloaded) {
            (0, 0) => String::new(),
            (shared, downloaded) => {
                let mut parts = Vec::new();
                if downloaded > 0 {
                    parts.push(format!("{} downloaded", ui::human_size(downloaded)));
                }
                if shared > 0 {
                    parts.push(format!(
                        "{} shared with installed runtimes and apps, {} new on disk",
                        ui::human_size(shared),
                        ui::human_size(r.new_on_disk())
                    ));
                }
                format!(" ({})", parts.join("; "))
            }
        }
    );
    if let Some(rt) = &r.runtime {
        println!("It runs on the Flatpak runtime {}.", ui::safe(rt));
    }
    if let Some(c) = &r.runtime_change {
        println!(
            "It moves to another image of that runtime: {}.",
            ui::safe(c)
        );
    }
    if !r.left_out.is_empty() {
        let items: Vec<String> = r
            .left_out
            .iter()
            .map(|s| ui::safe(s).into_owned())
            .collect();
        println!(
            "Not granted, as berth has no such permission: {}",
            items.join(", ")
        );
    }
    if r.action == Action::Install {
        if r.permissions.is_empty() {
            println!("It asks for no permissions: fully sandboxed.");
            return;
        }
        println!("It asks to:");
    } else if r.new_permissions.is_empty() {
        println!("No new permissions.");
        return;
    } else {
        println!("It asks for new permissions:");
    }
    print_lines(&r.new_permissions);
}

pub fn print_lines(review: &[ReviewLine]) {
    for l in review {
        println!(
            "  {:<12} {}   ({})",
            l.risk.to_string(),
            ui::safe(&l.description),
            ui::safe(&l.permission)
        );
    }
    // The last line before the question: what matters most stays in view
    // however long the list above is.
    println!("{}", berth_engine::risk_summary(review));
}

pub fn install(
    ctx: &Ctx,
    source: &str,
    yes: bool,
    channel: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let term = Term::new(yes, json);
    let review = ctx.engine.review(source, channel, &term)?;
    finish_install(ctx, review, &term, json)
}

/// Show the review, ask when it needs consent, install, report.
pub fn finish_install(
    ctx: &Ctx,
    review: Review,
    term: &Term,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !json {
        print_review(&review);
    }
    if review.needs_consent()
        && !term.consented_to(&review.new_permissions)
        && !term.ask("Allow this and install?")?
    {
        println!("Not installed.");
        return Ok(ExitCode::from(1));
    }
    let installed = ctx.engine.install(review, true, term)?;
    if json {
        ui::print_json(&installed)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Installed {} (deployment {}). Run it with: berth run {0}",
        ui::safe(&installed.id),
        installed.deployment
    );
    if let Some(h) = &installed.menu_hint {
        println!("{h}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall(ctx: &Ctx, id: &str, delete_data: bool, json: bool) -> anyhow::Result<ExitCode> {
    let running = super::state_dir()
        .map(|d| {
            berth_sandbox::instance::list(&d)
                .into_iter()
                .filter(|s| s.name == id || s.image == id)
                .count()
        })
        .unwrap_or(0);
    let u = ctx.engine.uninstall(id, delete_data, running)?;
    if json {
        ui::print_json(&u)?;
    } else if u.data_deleted {
        println!("Uninstalled {} and deleted its data", ui::safe(id));
    } else {
        println!(
            "Uninstalled {}{}",
            ui::safe(id),
            u.data_kept
                .map(|d| format!(" (its data stays in {})", ui::safe(&d)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let rows = ctx.engine.list()?;
    if json {
        ui::print_json(&rows)?;
    } else {
        let t: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.name.clone(),
                    r.image
                        .trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect(),
                    r.permissions.len().to_string(),
                ]
            })
            .collect();
        ui::table(&["APP ID", "NAME", "IMAGE", "PERMISSIONS"], &t);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn info(ctx: &Ctx, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let r = ctx.engine.info(id)?;
    if json {
        ui::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("ID:           {}", ui::safe(&r.id));
    println!("Name:         {}", ui::safe(&r.name));
    println!("Deployment:   {}", r.deployment);
    println!("Image:        {}", r.image);
    println!("Origin:       {}", ui::safe(&r.origin));
    println!("Data:         {}", ctx.engine.data_dir(id).display());
    println!(
        "Permissions:  {}",
        if r.permissions.is_empty() {
            "none".to_owned()
        } else {
            r.permissions.join(";")
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn print_permissions(
    id: &str,
    eff: &[berth_engine::EffectivePermission],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        return ui::print_json(&eff);
    }
    if eff.is_empty() {
        println!("{} has no permissions: fully sandboxed.", ui::safe(id));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = eff
        .iter()
        .map(|p| {
            vec![
                p.permission.clone(),
                format!("{:?}", p.source).to_lowercase(),
                p.risk.to_string(),
                p.description.clone(),
            ]
        })
        .collect();
    ui::table(&["PERMISSION", "FROM", "RISK", "MEANING"], &rows);
    Ok(())
}

pub fn permissions(
    ctx: &Ctx,
    id: &str,
    json: bool,
    portals: bool,
    reset_portals: bool,
) -> anyhow::Result<ExitCode> {
    if reset_portals {
        let gone = ctx.engine.reset_portal_permissions(id)?;
        if json {
            ui::print_json(&gone)?;
        } else {
            println!(
                "Removed {} portal permission(s) of {}",
                gone.len(),
                ui::safe(id)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if portals {
        let p = ctx.engine.portal_permissions(id)?;
        if json {
            ui::print_json(&p)?;
        } else {
            print_portal_permissions(id, &p);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let eff = ctx.engine.permissions(id)?;
    print_permissions(id, &eff, json)?;
    if !json {
        // Without a session bus there is nothing to ask; said, not an error.
        match ctx.engine.portal_permissions(id) {
            Ok(p) => {
                println!();
                print_portal_permissions(id, &p);
            }
            Err(e) => ui::warn(&format!("portal permissions unknown: {e}")),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_portal_permissions(id: &str, p: &[berth_engine::PortalPermission]) {
    if p.is_empty() {
        println!("The portals remember nothing for {}.", ui::safe(id));
        return;
    }
    println!(
        "What the portals remember (`berth permissions --reset-portals {}` forgets it):",
        ui::safe(id)
    );
    let rows: Vec<Vec<String>> = p
        .iter()
        .map(|e| vec![e.table.clone(), e.id.clone(), e.permissions.join(", ")])
        .collect();
    ui::table(&["TABLE", "ID", "ALLOWED"], &rows);
}

pub fn override_(
    ctx: &Ctx,
    id: &str,
    grant: Vec<String>,
    revoke: Vec<String>,
    reset: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let eff = ctx.engine.set_override(id, &grant, &revoke, reset)?;
    if reset && !json {
        println!("Overrides of {} removed", ui::safe(id));
        return Ok(ExitCode::SUCCESS);
    }
    print_permissions(id, &eff, json)?;
    Ok(ExitCode::SUCCESS)
}
