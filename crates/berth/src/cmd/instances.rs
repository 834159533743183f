//! ps, kill, pause, resume, enter.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_sandbox::exec::{self, Hardening};
use berth_sandbox::instance::{self, InstanceState};
use rustix::process::{Pid, Signal};
use serde::Serialize;

use super::state_dir;
use crate::ui;

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    name: &'a str,
    image: &'a str,
    pid: i32,
    uptime_seconds: u64,
    status: &'static str,
    cgroup: Option<&'a str>,
    command: &'a [String],
}

fn uptime(s: &InstanceState) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    now.saturating_sub(s.started_unix)
}

fn human_duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn identify(pid: i32, json: bool) -> anyhow::Result<ExitCode> {
    let found = instance::identify(&state_dir()?, pid)?;
    if json {
        ui::print_json(&found)?;
    } else {
        match &found {
            Some(i) => println!(
                "{} is {} (instance {}{}){}",
                i.pid,
                ui::safe(&i.app),
                ui::safe(&i.instance),
                i.cgroup
                    .as_deref()
                    .map(|c| format!(", cgroup {}", ui::safe(c)))
                    .unwrap_or_default(),
                if i.found_by == "scope" {
                    "; by its cgroup's name only: not one of your running instances"
                } else {
                    ""
                }
            ),
            None => println!("{pid} is not in a berth sandbox"),
        }
    }
    Ok(if found.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn ps(json: bool, quiet: bool) -> anyhow::Result<ExitCode> {
    let all = instance::list(&state_dir()?);
    if quiet {
        for s in &all {
            println!("{}", s.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Row> = all
        .iter()
        .map(|s| Row {
            id: &s.id,
            name: &s.name,
            image: &s.image,
            pid: s.pid,
            uptime_seconds: uptime(s),
            status: if s.paused { "paused" } else { "running" },
            cgroup: s.cgroup.as_ref().map(|c| c.display.as_str()),
            command: &s.argv,
        })
        .collect();
    if json {
        ui::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_owned(),
                r.image.to_owned(),
                r.pid.to_string(),
                human_duration(r.uptime_seconds),
                r.status.to_owned(),
                r.cgroup.unwrap_or("-").to_owned(),
                r.command.join(" "),
            ]
        })
        .collect();
    ui::table(
        &[
            "ID", "IMAGE", "PID", "UPTIME", "STATUS", "CGROUP", "COMMAND",
        ],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}

fn pid_of(s: &InstanceState) -> anyhow::Result<Pid> {
    Pid::from_raw(s.pid).ok_or_else(|| anyhow::anyhow!("instance {} has an invalid pid", s.id))
}

pub fn kill(key: &str, signal: Option<&str>) -> anyhow::Result<ExitCode> {
    let s = instance::find(&state_dir()?, key)?;
    let sig = signal
        .map(exec::parse_signal)
        .transpose()?
        .unwrap_or(Signal::KILL);
    if s.paused && sig != Signal::KILL {
        anyhow::bail!(
            "instance {} is paused; resume it first or use the default SIGKILL",
            s.id
        );
    }
    rustix::process::kill_process(pid_of(&s)?, sig)
        .map_err(|e| anyhow::anyhow!("signalling instance {}: {e}", s.id))?;
    println!("{}", s.id);
    Ok(ExitCode::SUCCESS)
}

pub fn pause(key: &str, frozen: bool) -> anyhow::Result<ExitCode> {
    let dir = state_dir()?;
    let mut s = instance::find(&dir, key)?;
    // Frozen by a `berth commit` just now: pausing makes it the user's,
    // and the commit then leaves it frozen.
    if s.paused == frozen && !(frozen && s.frozen_by.is_some()) {
        anyhow::bail!(
            "instance {} is already {}",
            s.id,
            if frozen { "paused" } else { "running" }
        );
    }
    match s.cgroup.as_ref().map(|c| c.set_frozen(frozen)) {
        Some(Ok(())) => {}
        // No freezer: stop every process of the instance's pid namespace.
        other => {
            if let Some(Err(e)) = other {
                ui::warn(&format!(
                    "warning: cgroup freezer failed ({e}); using SIGSTOP/SIGCONT"
                ));
            }
            let sig = if frozen { Signal::STOP } else { Signal::CONT };
            // Until no new process turns up: one forked between the scan
            // and the signal would otherwise keep running (and could
            // SIGCONT the others).
            let mut done: Vec<rustix::process::Pid> = Vec::new();
            for _ in 0..50 {
                let new: Vec<_> = exec::namespace_pids(s.pid)
                    .into_iter()
                    .filter(|p| !done.contains(p))
                    .collect();
                if new.is_empty() {
                    break;
                }
                for p in new {
                    let _ = rustix::process::kill_process(p, sig);
                    done.push(p);
                }
            }
        }
    }
    s.paused = frozen;
    s.frozen_by = None;
    s.save(&dir)?;
    println!("{}", s.id);
    Ok(ExitCode::SUCCESS)
}

pub fn enter(key: &str, command: Vec<String>) -> anyhow::Result<ExitCode> {
    let s = instance::find(&state_dir()?, key)?;
    if s.paused {
        anyhow::bail!("instance {} is paused; `berth resume {}` first", s.id, s.id);
    }
    let argv = if command.is_empty() {
        vec!["/bin/sh".to_owned()]
    } else {
        command
    };
    // The command counts against the instance's limits and is frozen,
    // listed and killed with it.
    if let Some(cg) = &s.cgroup {
        let me = rustix::process::getpid();
        cg.add(me, false)
            .map_err(|e| anyhow::anyhow!("joining the instance's cgroup: {e}"))?;
    }
    let hardening = Hardening::for_instance(s.devel, s.multiarch)?;
    let code = exec::enter(s.pid, &argv, &s.env, &s.cwd, &hardening)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
