use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use berth_image::layer::parse_size;
use berth_sandbox::cgroup::{self, Cgroup};
use berth_sandbox::exec;
use berth_sandbox::instance::{self, InstanceState};
use berth_sandbox::plan::{BindSpec, HostInfo, ImageDefaults, Limits, RunRequest, parse_env};
use berth_sandbox::systemd;
use rustix::process::Pid;

use super::{Ctx, state_dir};
use crate::cli::RunArgs;
use crate::ui;

fn new_instance_id() -> String {
    let mut b = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&(t as u64 ^ u64::from(std::process::id())).to_le_bytes()[..6]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn host_info(state_dir: std::path::PathBuf) -> HostInfo {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && !u.contains([':', '\n']));
    let user = user.unwrap_or_else(|| {
        if uid == 0 {
            "root".into()
        } else {
            format!("user{uid}")
        }
    });
    let home = std::env::var("HOME")
        .ok()
        .filter(|h| h.starts_with('/') && h.len() > 1 && !h.contains([':', '\n']))
        .unwrap_or_else(|| {
            if uid == 0 {
                "/root".into()
            } else {
                format!("/home/{user}")
            }
        });
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    HostInfo {
        uid,
        gid,
        user,
        home,
        term: std::env::var("TERM").ok().filter(|_| tty),
        tty,
        state_dir,
    }
}

pub fn run(ctx: &Ctx, a: RunArgs) -> anyhow::Result<ExitCode> {
    let (entry, image) = {
        let _lock = ctx.lock_shared()?;
        let entry = ctx.store.resolve(&a.image)?;
        let image = ctx.store.load_image(&entry)?;
        (entry, image)
    };
    let layers = image
        .diff_ids()?
        .iter()
        .map(|d| ctx.store.layer_path(d))
        .collect();
    let c = image.config.config().clone().unwrap_or_default();
    let limits = Limits {
        memory: a
            .memory
            .as_deref()
            .map(parse_size)
            .transpose()
            .context("--memory")?,
        cpu_weight: a.cpu_weight,
        pids: a.pids,
    };
    if let Some(w) = a.cpu_weight {
        anyhow::ensure!(
            (1..=10_000).contains(&w),
            "--cpu-weight must be between 1 and 10000"
        );
    }
    let name = entry
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| a.image.clone());
    let req = RunRequest {
        name: name.clone(),
        instance_id: new_instance_id(),
        layers,
        image: ImageDefaults {
            env: c.env().clone().unwrap_or_default(),
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone(),
        },
        command: a.command,
        binds: a
            .bind
            .iter()
            .map(|b| BindSpec::parse(b))
            .collect::<Result<_, _>>()?,
        env: a
            .env
            .iter()
            .map(|e| parse_env(e))
            .collect::<Result<_, _>>()?,
        workdir: a.workdir,
        network: a.network,
        limits: limits.clone(),
        host: host_info(state_dir()?),
    };
    let plan = berth_sandbox::build(&req)?;
    if a.print_plan {
        ui::print_json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }

    let prepared = exec::prepare(&plan)?;
    // systemd hosts: a transient scope through systemd; otherwise cgroupfs.
    let placement = match systemd::detect() {
        Some(bus) => Placement::Systemd(bus),
        None => match cgroup::create(&plan.cgroup.name, &limits) {
            Ok(cg) => Placement::Fs(cg),
            Err(why) if limits != Limits::default() => {
                anyhow::bail!("cannot apply resource limits: {why}")
            }
            Err(why) => {
                ui::warn(&format!(
                    "warning: resource limits and the freezer are unavailable: {why}"
                ));
                Placement::None
            }
        },
    };
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut hooks = RunHooks {
        placement,
        cgroup: None,
        limits,
        state_dir: req.host.state_dir.clone(),
        state: InstanceState {
            id: plan.instance_id.clone(),
            name: plan.name.clone(),
            image: name.clone(),
            pid: 0,
            start_ticks: 0,
            started_unix: started,
            argv: plan.argv.clone(),
            env: plan
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cwd: plan.cwd.clone(),
            cgroup: None,
            paused: false,
        },
        cgroup_name: plan.cgroup.name.clone(),
    };
    let res = exec::run(&plan, &prepared, &mut hooks);
    let placed = hooks.cgroup.take().or(match hooks.placement {
        Placement::Fs(cg) => Some(cg),
        _ => None,
    });
    instance::cleanup(&plan.instance_dir, placed.as_ref());
    let out = res?;
    if let Some(msg) = &out.error {
        ui::error(msg);
    }
    Ok(ExitCode::from(out.code.clamp(0, 255) as u8))
}

enum Placement {
    None,
    Fs(Cgroup),
    Systemd(systemd::Bus),
}

struct RunHooks {
    placement: Placement,
    /// Where the instance ended up.
    cgroup: Option<Cgroup>,
    limits: Limits,
    cgroup_name: String,
    state_dir: std::path::PathBuf,
    state: InstanceState,
}

impl exec::Hooks for RunHooks {
    fn clone_into(&self) -> Option<std::path::PathBuf> {
        match &self.placement {
            Placement::Fs(cg) => cg.v2.clone(),
            _ => None,
        }
    }

    fn place(&mut self, pid: Pid, in_v2: bool) -> Result<(), String> {
        match &self.placement {
            Placement::None => Ok(()),
            Placement::Fs(cg) => {
                cg.add(pid, in_v2)?;
                self.cgroup = Some(cg.clone());
                Ok(())
            }
            Placement::Systemd(bus) => {
                let raw = pid.as_raw_nonzero().get() as u32;
                match systemd::start_scope(bus, &self.cgroup_name, raw, &self.limits) {
                    Ok(cg) => {
                        self.cgroup = Some(cg);
                        Ok(())
                    }
                    Err(e) if self.limits != Limits::default() => {
                        Err(format!("cannot apply resource limits: {e}"))
                    }
                    Err(e) => {
                        ui::warn(&format!(
                            "warning: resource limits and the freezer are unavailable: {e}"
                        ));
                        Ok(())
                    }
                }
            }
        }
    }

    fn started(&mut self, pid: Pid) {
        let raw = pid.as_raw_nonzero().get();
        self.state.pid = raw;
        self.state.start_ticks = instance::start_ticks(raw).unwrap_or(0);
        self.state.cgroup = self.cgroup.clone();
        if let Err(e) = self.state.save(&self.state_dir) {
            ui::warn(&format!("warning: instance state not recorded: {e}"));
        }
    }
}
