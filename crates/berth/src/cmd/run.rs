use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use berth_app::deploy::{AppStore, effective};
use berth_app::metadata::{app_id_of, valid_install_key};
use berth_app::{grants, xauth};
use berth_image::layer::parse_size;
use berth_sandbox::cgroup::{self, Cgroup};
use berth_sandbox::exec;
use berth_sandbox::instance::{self, InstanceState};
use berth_sandbox::plan::{
    BindSpec, HostInfo, ImageDefaults, Limits, Network, Protected, RunRequest, parse_env,
};
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
    // The user's terminal on any of the three: the app gets its own pty,
    // never the terminal itself (TIOCSTI, TIOCSETD, stty on the user's tty).
    let tty = std::io::stdin().is_terminal()
        || std::io::stdout().is_terminal()
        || std::io::stderr().is_terminal();
    HostInfo {
        resolv_conf: std::fs::read_to_string("/etc/resolv.conf").ok(),
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
    // An installed app ID runs that app; anything else names an image.
    let apps = AppStore::new(ctx.store().root());
    let app = if valid_install_key(&a.image) {
        apps.current(&a.image)?
    } else {
        None
    };
    let store_lock = ctx.lock_shared()?;
    let (entry, image) = {
        let entry = match &app {
            Some(d) => match berth_image::Digest::parse(&d.image)
                .and_then(|digest| ctx.store().entry_by_digest(&digest))
            {
                Ok(e) => e,
                Err(e @ berth_image::Error::NotFound(_)) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "the image of {} is gone from the store; `berth fsck --repair` or a reinstall brings it back",
                        d.app_id
                    )));
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot read the image of {}", d.app_id)));
                }
            },
            None => ctx.store().resolve(&a.image)?,
        };
        let image = ctx.store().load_image(&entry)?;
        if let Some(why) = image.platform_mismatch() {
            anyhow::bail!("cannot run {}: {why}", a.image);
        }
        (entry, image)
    };
    let diff_ids = image.diff_ids()?;
    if let Some(d) = diff_ids.iter().find(|d| !ctx.store().has_layer(d)) {
        anyhow::bail!(
            "layer {} of {} is missing or incomplete (an interrupted import or removal); `berth fsck --repair` re-creates it",
            d.short(),
            a.image
        );
    }
    let layers = diff_ids.iter().map(|d| ctx.store().layer_path(d)).collect();
    let instance_id = new_instance_id();
    // From here the instance is a gc root, for as long as this process
    // lives; then the store lock can go.
    let pin = match ctx.store().pin(&instance_id, &entry.digest, &diff_ids) {
        Ok(p) => Some(p),
        Err(e) => {
            ui::warn(&format!(
                "warning: this app's files are not protected from `berth gc` while it runs: {e}"
            ));
            None
        }
    };
    drop(store_lock);
    let c = image.config.config().clone().unwrap_or_default();
    if let Some(w) = a.cpu_weight {
        anyhow::ensure!(
            (1..=10_000).contains(&w),
            "--cpu-weight must be between 1 and 10000"
        );
    }
    let mut limits = Limits {
        memory: a
            .memory
            .as_deref()
            .map(parse_size)
            .transpose()
            .context("--memory")?,
        cpu_weight: a.cpu_weight,
        pids: a.pids,
    };
    let state = state_dir()?;
    // Grants: berth's own state is masked wherever one covers it.
    let mut binds: Vec<BindSpec> = Vec::new();
    // Binds the user typed (`--bind`, also how `build` passes its install
    // dir) and those berth sets up itself (sockets, cookies, fonts): the
    // user's explicit choice, not an app's request, so never masked.
    let mut internal: Vec<BindSpec> = a
        .bind
        .iter()
        .map(|b| BindSpec::parse(b))
        .map(|b| b.map_err(anyhow::Error::from).and_then(canonical_bind))
        .collect::<Result<_, _>>()?;
    let mut env: Vec<(String, String)> = Vec::new();
    // `--command PROGRAM`: PROGRAM and the arguments after `--`, instead of
    // the app's (or image's) own command.
    let replaced = a.command_override.is_some();
    let mut command: Vec<String> = a.command_override.into_iter().chain(a.command).collect();
    let mut network = if a.host_network {
        Network::Host
    } else if a.network {
        Network::Pasta
    } else {
        Network::None
    };
    let (mut share_ipc, mut devel, mut multiarch, mut home_source) = (false, false, false, None);
    let mut extra_files: Vec<(std::path::PathBuf, String)> = Vec::new();
    // Kept alive for the run; dropping it stops the proxy.
    let mut bus_proxy: Option<BusProxyProcess> = None;
    let name = match &app {
        Some(d) => {
            let perms: Vec<_> = effective(&d.granted()?, &apps.overrides(&d.app_id)?)?
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            let host = host_env();
            let g = grants::compute(&perms, &host);
            let mut env_from_grants = g.env.clone();
            for u in &g.unavailable {
                ui::warn(&format!("warning: {u}"));
            }
            for b in &g.binds {
                if b.create {
                    std::fs::create_dir_all(&b.src)
                        .with_context(|| format!("creating {}", b.src.display()))?;
                }
                if b.src.exists() && !b.files {
                    // A socket or device berth provides.
                    internal.push(BindSpec {
                        src: b.src.clone(),
                        dest: b.dest.clone(),
                        readonly: b.readonly,
                    });
                } else if b.src.exists() {
                    match grant_source(&b.src, &host.home, b.broad, b.readonly) {
                        Ok(src) => binds.push(BindSpec {
                            src,
                            dest: b.dest.clone(),
                            readonly: b.readonly,
                        }),
                        Err(why) => ui::warn(&format!("warning: {why}; not granted")),
                    }
                } else {
                    ui::warn(&format!(
                        "warning: {} does not exist on this computer; not granted",
                        b.src.display()
                    ));
                }
            }
            // Look native: the desktop's fonts and icons, read-only under
            // /run/host as Flatpak places them, with fontconfig told.
            for (host_dir, inner) in [
                ("/usr/share/fonts", "/run/host/fonts"),
                ("/usr/share/icons", "/run/host/share/icons"),
            ] {
                if std::path::Path::new(host_dir).is_dir() {
                    internal.push(BindSpec {
                        src: host_dir.into(),
                        dest: inner.into(),
                        readonly: true,
                    });
                }
            }
            extra_files.push((
                "/etc/fonts/conf.d/50-berth-host-fonts.conf".into(),
                "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig><dir>/run/host/fonts</dir></fontconfig>\n".into(),
            ));
            env.push((
                "XDG_DATA_DIRS".into(),
                "/usr/local/share:/usr/share:/run/host/share".into(),
            ));
            // Look native: same machine-id and time zone as the desktop.
            for f in ["/etc/machine-id", "/etc/localtime"] {
                if let Ok(real) = std::fs::canonicalize(f) {
                    internal.push(BindSpec {
                        src: real,
                        dest: f.into(),
                        readonly: true,
                    });
                }
            }
            let xauth = match g.x11_display {
                Some(n) => filtered_xauthority(&host, n, &state, &instance_id)?,
                None => None,
            };
            if let Some(x) = xauth {
                let inner = grants::inner_runtime_dir(host.uid).join("Xauthority");
                internal.push(BindSpec {
                    src: x,
                    dest: inner.clone(),
                    readonly: true,
                });
                env.push(("XAUTHORITY".into(), inner.display().to_string()));
            }
            if let Some(conf) = &g.pulse_client_conf {
                let dir = instance::instances_dir(&state).join(&instance_id);
                std::fs::create_dir_all(&dir)?;
                let src = dir.join("pulse-client.conf");
                std::fs::write(&src, grants::PULSE_CLIENT_CONF)?;
                internal.push(BindSpec {
                    src,
                    dest: conf.clone(),
                    readonly: true,
                });
            }
            if let Some(bp) = &g.bus_proxy {
                match start_bus_proxy(app_id_of(&d.app_id), &g, bp, &state, &instance_id)? {
                    Some((proxy, socket)) => {
                        internal.push(BindSpec {
                            src: socket,
                            dest: bp.inner.clone(),
                            readonly: false,
                        });
                        bus_proxy = Some(proxy);
                    }
                    None => g_env_drop_bus(&mut env_from_grants),
                }
            }
            env.extend(env_from_grants);
            if g.host_network {
                network = Network::Host;
            } else if g.network && network == Network::None {
                network = Network::Pasta;
            }
            share_ipc = g.ipc;
            devel = g.devel;
            multiarch = g.multiarch;
            limits.memory = limits.memory.or(g.memory);
            limits.cpu_weight = limits.cpu_weight.or(g.cpu_weight);
            limits.pids = limits.pids.or(g.pids);
            // App arguments follow the app's own command.
            if !replaced && !d.command.is_empty() {
                command = d.command.iter().cloned().chain(command).collect();
            } else if !replaced && !command.is_empty() {
                let mut base = c.entrypoint().clone().unwrap_or_default();
                base.extend(c.cmd().clone().unwrap_or_default());
                command = base.into_iter().chain(command).collect();
            }
            let data = ctx.engine.data_dir(&d.app_id);
            std::fs::create_dir_all(&data)
                .with_context(|| format!("creating {}", data.display()))?;
            home_source = Some(data);
            d.app_id.clone()
        }
        None => entry
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| a.image.clone()),
    };
    env.extend(
        a.env
            .iter()
            .map(|e| parse_env(e))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let req = RunRequest {
        name: name.clone(),
        instance_id,
        layers,
        image: ImageDefaults {
            env: c.env().clone().unwrap_or_default(),
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone(),
        },
        command,
        binds,
        internal_binds: internal,
        protected: protected_paths(ctx, &state),
        env,
        workdir: a.workdir,
        network,
        share_ipc,
        devel,
        multiarch,
        home_source,
        extra_files,
        limits: limits.clone(),
        host: host_info(state),
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
            devel,
            multiarch,
            store: super::store_id(ctx),
            image_digest: entry.digest.to_string(),
        },
        cgroup_name: plan.cgroup.name.clone(),
    };
    let res = exec::run(&plan, &prepared, &mut hooks);
    // The app is gone: stop its bus proxy, release its files.
    drop(bus_proxy);
    drop(pin);
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

    fn warn(&mut self, msg: &str) {
        ui::warn(msg);
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

/// A `--bind` source, canonical: masks of berth's own state are placed by
/// real paths, so a symlink must not hide what a bind exposes.
fn canonical_bind(mut b: BindSpec) -> anyhow::Result<BindSpec> {
    b.src = std::fs::canonicalize(&b.src)
        .with_context(|| format!("--bind source {}", b.src.display()))?;
    Ok(b)
}

/// The real path a filesystem grant exposes. Only a grant of the whole
/// host or home may turn out to be `/` or to hold the home: a symlink
/// planted at a granted path must not widen the grant.
fn grant_source(
    src: &std::path::Path,
    home: &std::path::Path,
    broad: bool,
    readonly: bool,
) -> Result<std::path::PathBuf, String> {
    use berth_app::permissions::{Access, Place};
    let real = std::fs::canonicalize(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let real_home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_owned());
    let widened = || {
        Err(format!(
            "{} leads to {}, which is more than was granted",
            src.display(),
            real.display()
        ))
    };
    if !broad && (real == std::path::Path::new("/") || real_home.starts_with(&real)) {
        return widened();
    }
    // A symlink (planted by an app through another grant, say) must not
    // turn a reviewed place into a riskier one: judge the real path as the
    // review judged the written one.
    let access = if readonly {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let risk = |p: &std::path::Path, h: &std::path::Path| {
        berth_app::Permission::Filesystem(Place::Absolute(p.display().to_string()), access)
            .describe(h)
            .1
    };
    if !broad && real != src && risk(&real, &real_home) > risk(src, home) {
        return widened();
    }
    Ok(real)
}

/// berth's own files: no grant may reach its store, exports, overrides,
/// configuration or instance state; its executable stays read-only.
fn protected_paths(ctx: &Ctx, state: &std::path::Path) -> Vec<Protected> {
    let mut out = Vec::new();
    let mut hide = |p: std::path::PathBuf, hide: bool| {
        let p = std::fs::canonicalize(&p).unwrap_or(p);
        if !out.iter().any(|q: &Protected| q.path == p) {
            out.push(Protected { path: p, hide });
        }
    };
    hide(ctx.store().root().to_owned(), true);
    hide(state.to_owned(), true);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(c) = config {
        // berth reads its signature policy there: it must exist to be
        // masked, or an app granted the home could create it.
        let dir = c.join("berth");
        if !dir.exists() {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir);
        }
        hide(dir, true);
    }
    if let Ok(exe) = std::env::current_exe() {
        hide(exe, false);
    }
    out.retain(|p| p.path.exists());
    out
}

/// The host's display, sound and folder facts, for app grants.
fn host_env() -> grants::HostEnv {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = std::path::PathBuf::from(var("HOME").unwrap_or_else(|| "/".into()));
    let runtime_dir = var("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    let config =
        var("XDG_CONFIG_HOME").map_or_else(|| home.join(".config"), std::path::PathBuf::from);
    let xdg_dirs = std::fs::read_to_string(config.join("user-dirs.dirs"))
        .map(|t| grants::parse_user_dirs(&t, &home))
        .unwrap_or_default();
    let existing = |p: std::path::PathBuf| p.exists().then_some(p);
    let pulse_socket = var("PULSE_SERVER")
        .and_then(|s| s.strip_prefix("unix:").map(std::path::PathBuf::from))
        .or_else(|| runtime_dir.as_ref().map(|r| r.join("pulse/native")))
        .and_then(existing);
    let session_bus = var("DBUS_SESSION_BUS_ADDRESS")
        .and_then(|a| {
            a.split(',')
                .find_map(|p| p.strip_prefix("unix:path=").map(std::path::PathBuf::from))
        })
        .or_else(|| runtime_dir.as_ref().map(|r| r.join("bus")))
        .and_then(existing);
    // NVIDIA's userspace driver, wherever the distribution put it.
    let mut nvidia_files = Vec::new();
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/share/glvnd/egl_vendor.d",
        "/usr/share/vulkan/icd.d",
        "/etc/vulkan/icd.d",
    ] {
        if let Ok(rd) = std::fs::read_dir(d) {
            nvidia_files.extend(
                rd.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(grants::is_nvidia_userspace)
                    })
                    .filter_map(|e| std::fs::canonicalize(e.path()).ok().map(|_| e.path())),
            );
        }
    }
    grants::HostEnv {
        nvidia_files,
        uid: rustix::process::getuid().as_raw(),
        xauthority: var("XAUTHORITY")
            .map(std::path::PathBuf::from)
            .or_else(|| existing(home.join(".Xauthority"))),
        pulse_cookie: var("PULSE_COOKIE")
            .map(std::path::PathBuf::from)
            .or_else(|| existing(config.join("pulse/cookie"))),
        display: var("DISPLAY"),
        wayland_display: var("WAYLAND_DISPLAY"),
        pulse_socket,
        session_bus,
        runtime_dir,
        xdg_dirs,
        home,
    }
}

/// Write the user's X cookies for display `n` only, for this instance.
fn filtered_xauthority(
    host: &grants::HostEnv,
    n: u32,
    state: &std::path::Path,
    instance: &str,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let Some(src) = &host.xauthority else {
        return Ok(None);
    };
    let Ok(bytes) = std::fs::read(src) else {
        return Ok(None);
    };
    let Some(entries) = xauth::parse(&bytes) else {
        ui::warn(&format!(
            "warning: {} is not a valid Xauthority file; X11 cookies not passed",
            src.display()
        ));
        return Ok(None);
    };
    let kept = xauth::filter_for_display(&entries, n);
    if kept.is_empty() {
        return Ok(None);
    }
    let dir = instance::instances_dir(state).join(instance);
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("Xauthority");
    std::fs::write(&out, xauth::serialize(&kept))?;
    Ok(Some(out))
}

/// A running xdg-dbus-proxy; it exits when `sync` closes.
struct BusProxyProcess {
    child: std::process::Child,
    _sync: std::os::fd::OwnedFd,
}

impl Drop for BusProxyProcess {
    fn drop(&mut self) {
        // Closing our end of the sync pipe tells the proxy to stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start xdg-dbus-proxy for an app, as Flatpak does: it gets the write
/// end of a pipe (as stdin, `--fd=0`), writes a byte once it listens, and
/// exits when our end closes. `None` (with a warning) when it is missing.
fn start_bus_proxy(
    app_id: &str,
    g: &grants::Grants,
    bp: &grants::BusProxy,
    state: &std::path::Path,
    instance: &str,
) -> anyhow::Result<Option<(BusProxyProcess, std::path::PathBuf)>> {
    let dir = instance::instances_dir(state).join(instance);
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("bus");
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let spawned = std::process::Command::new("xdg-dbus-proxy")
        .arg("--fd=0")
        .arg(format!("unix:path={}", bp.upstream.display()))
        .arg(&socket)
        .args(grants::proxy_args(app_id, g))
        .stdin(std::process::Stdio::from(write))
        .stdout(std::process::Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            ui::warn(&format!(
                "warning: no D-Bus for the app: cannot start xdg-dbus-proxy ({e})"
            ));
            return Ok(None);
        }
    };
    let proxy = BusProxyProcess { child, _sync: read };
    let mut b = [0u8; 1];
    match rustix::io::read(&proxy._sync, &mut b) {
        Ok(1) => Ok(Some((proxy, socket))),
        _ => anyhow::bail!(
            "xdg-dbus-proxy did not start (is the session bus at {} alive?)",
            bp.upstream.display()
        ),
    }
}

/// The app gets no bus address when the proxy is not there.
fn g_env_drop_bus(env: &mut Vec<(String, String)>) {
    env.retain(|(k, _)| k != "DBUS_SESSION_BUS_ADDRESS");
}
