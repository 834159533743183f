//! The small step that carries out a [`LaunchPlan`]: pin the image, take
//! the host-side steps, place the sandbox in its cgroup (systemd or
//! cgroupfs), record the instance, run it, and clean up after it.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::{Digest, Store};
use berth_sandbox::cgroup::{self, Cgroup};
use berth_sandbox::exec;
use berth_sandbox::instance::{self, InstanceState};
use berth_sandbox::plan::Limits;
use berth_sandbox::systemd;
use rustix::process::Pid;

use crate::error::{Error, Result, io};
use crate::plan::{HostStep, LaunchPlan};
use crate::{GC_WAIT, Notes};

/// How a launch ended: the app's exit code (128+N for signal N; 125 when
/// the sandbox could not be set up), and the sandbox's own error message
/// when it, not the app, failed.
pub type Outcome = exec::Outcome;

/// Run `plan`. Returns when the app has exited and the instance is gone.
/// A plan names its instance: it is applied once (taken by value).
pub fn apply(store: &Store, plan: LaunchPlan, notes: &dyn Notes) -> Result<Outcome> {
    let plan = &plan;
    // Forwarded files rewrite the app's arguments; nothing else changes.
    let mut sb = std::borrow::Cow::Borrowed(&plan.sandbox);
    // From here the instance is a gc root, for as long as this process
    // lives; the layers are checked again under the lock, since the plan
    // was read without holding it.
    let pin = {
        let _lock = store.lock_shared(&|| notes.warn(GC_WAIT))?;
        let manifest = Digest::parse(&plan.image_digest)?;
        let layers = plan
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if let Some(d) = layers.iter().find(|d| !store.has_layer(d)) {
            return Err(Error::Store(format!(
                "layer {} was removed while {} was starting; run it again",
                d.short(),
                sb.name
            )));
        }
        match store.pin(&sb.instance_id, &manifest, &layers) {
            Ok(p) => Some(p),
            Err(e) => {
                notes.warn(&format!(
                    "warning: this app's files are not protected from `berth gc` while it runs: {e}"
                ));
                None
            }
        }
    };
    // A working container's root serves one run at a time.
    let _container = plan
        .container
        .as_deref()
        .map(|n| berth_app::containers::ContainerStore::new(store.root()).lock(n))
        .transpose()?;
    // A `--writable` run's own root: made here, removed however the run ends.
    let temp_root = match (&sb.upper, plan.temporary_root) {
        (Some(u), true) => {
            for d in ["upper", "work"] {
                io(std::fs::create_dir_all(u.join(d)), || {
                    format!("creating {}", u.join(d).display())
                })?;
            }
            Some(TempRoot(u.clone()))
        }
        _ => None,
    };
    // Kept alive for the run; dropping it stops the proxy.
    let mut bus_proxy: Option<BusProxyProcess> = None;
    let steps = (|| -> Result<()> {
        for step in &plan.host_steps {
            match step {
                HostStep::CreateDir {
                    path,
                    private,
                    required,
                } => {
                    let mut b = std::fs::DirBuilder::new();
                    b.recursive(true);
                    if *private {
                        b.mode(0o700);
                    }
                    match b.create(path) {
                        Ok(()) => {}
                        // Its mask is skipped where the path does not exist.
                        Err(_) if !required => {}
                        Err(e) => return io(Err(e), || format!("creating {}", path.display())),
                    }
                }
                HostStep::SeedHome {
                    layers,
                    home,
                    tmp,
                    path,
                } => {
                    let layers: Vec<&std::path::Path> =
                        layers.iter().map(std::path::PathBuf::as_path).collect();
                    io(crate::seed::seed_home(&layers, home, tmp, path), || {
                        format!("making {} from the home the image carries", path.display())
                    })?;
                }
                HostStep::WriteFile { path, contents, .. } => {
                    // Instance files (an X cookie among them) are the
                    // user's alone.
                    if let Some(dir) = path.parent() {
                        io(
                            std::fs::DirBuilder::new()
                                .recursive(true)
                                .mode(0o700)
                                .create(dir),
                            || format!("creating {}", dir.display()),
                        )?;
                    }
                    let write = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(path)
                        .and_then(|mut f| std::io::Write::write_all(&mut f, contents));
                    io(write, || format!("writing {}", path.display()))?;
                }
                HostStep::ForwardFiles {
                    bus,
                    app_id,
                    inner,
                    files,
                } => {
                    for f in files {
                        let seen = crate::documents::add(bus, app_id, f).map_err(|why| {
                            Error::Invalid(format!(
                                "cannot hand {} to the app: {why}",
                                f.path.display()
                            ))
                        })?;
                        // None: the app sees the file where it is.
                        if let Some(rel) = seen {
                            let p = inner.join(rel);
                            sb.to_mut().argv[f.argv_index] = if f.uri {
                                file_uri(&p)
                            } else {
                                p.display().to_string()
                            };
                        }
                    }
                }
                HostStep::CheckFile { path, dev, ino } => {
                    if crate::mime::same_file(path, *dev, *ino).is_none() {
                        return Err(Error::Invalid(format!(
                            "{} changed while the app was starting; it is not handed over",
                            path.display()
                        )));
                    }
                }
                HostStep::BusProxy {
                    upstream,
                    socket,
                    sandbox,
                } => {
                    if let Some(dir) = socket.parent() {
                        io(std::fs::create_dir_all(dir), || {
                            format!("creating {}", dir.display())
                        })?;
                    }
                    bus_proxy = Some(start_bus_proxy(sandbox, upstream, socket)?);
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = steps {
        drop(bus_proxy);
        instance::cleanup(&sb.instance_dir, None);
        return Err(e);
    }

    let prepared = match exec::prepare(&sb) {
        Ok(p) => p,
        Err(e) => {
            drop(bus_proxy);
            instance::cleanup(&sb.instance_dir, None);
            return Err(e.into());
        }
    };
    // systemd hosts: a transient scope through systemd; otherwise cgroupfs.
    let placement = match systemd::detect() {
        Some(bus) => Placement::Systemd(bus),
        None => match cgroup::create(&sb.cgroup.name, &plan.limits) {
            Ok(cg) => {
                for n in &cg.notes {
                    notes.warn(&format!("warning: {n}"));
                }
                Placement::Fs(cg)
            }
            Err(why) if plan.limits.strict() => {
                drop(bus_proxy);
                instance::cleanup(&sb.instance_dir, None);
                return Err(Error::Invalid(format!(
                    "cannot apply resource limits: {why}"
                )));
            }
            Err(why) => {
                notes.warn(&format!(
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
    let store_id = std::fs::canonicalize(store.root())
        .unwrap_or_else(|_| store.root().to_path_buf())
        .to_string_lossy()
        .into_owned();
    let mut hooks = RunHooks {
        placement,
        cgroup: None,
        limits: plan.limits.clone(),
        state_dir: plan.state_dir.clone(),
        notes,
        state: InstanceState {
            id: sb.instance_id.clone(),
            name: sb.name.clone(),
            app: sb.app.clone(),
            image: plan.image_name.clone(),
            pid: 0,
            start_ticks: 0,
            started_unix: started,
            argv: sb.argv.clone(),
            env: sb.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            cwd: sb.cwd.clone(),
            cgroup: None,
            paused: false,
            frozen_by: None,
            devel: plan.devel,
            multiarch: plan.multiarch,
            store: store_id,
            image_digest: plan.image_digest.clone(),
            container: plan.container.clone(),
            upper: sb.upper.as_ref().map(|u| u.display().to_string()),
        },
        cgroup_name: sb.cgroup.name.clone(),
    };
    let res = exec::run(&sb, &prepared, &mut hooks);
    // The app is gone: stop its bus proxy, release its files.
    drop(bus_proxy);
    drop(pin);
    let placed = hooks.cgroup.take().or(match hooks.placement {
        Placement::Fs(cg) => Some(cg),
        _ => None,
    });
    // A `berth enter` may still sit in the cgroup for a moment after the
    // instance died (its command went with the pid namespace).
    if let Some(cg) = &placed {
        cg.remove_when_empty(std::time::Duration::from_secs(2));
    }
    instance::cleanup(&sb.instance_dir, None);
    drop(temp_root);
    Ok(res?)
}

/// Removes a run's temporary writable root when the run ends.
struct TempRoot(std::path::PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = berth_image::fsutil::remove_tree(&self.0);
    }
}

enum Placement {
    None,
    Fs(Cgroup),
    Systemd(systemd::Bus),
}

struct RunHooks<'a> {
    placement: Placement,
    /// Where the instance ended up.
    cgroup: Option<Cgroup>,
    limits: Limits,
    cgroup_name: String,
    state_dir: std::path::PathBuf,
    state: InstanceState,
    notes: &'a dyn Notes,
}

impl exec::Hooks for RunHooks<'_> {
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
                        for n in &cg.notes {
                            self.notes.warn(&format!("warning: {n}"));
                        }
                        self.cgroup = Some(cg);
                        Ok(())
                    }
                    Err(e) if self.limits.strict() => {
                        Err(format!("cannot apply resource limits: {e}"))
                    }
                    Err(e) => {
                        self.notes.warn(&format!(
                            "warning: resource limits and the freezer are unavailable: {e}"
                        ));
                        Ok(())
                    }
                }
            }
        }
    }

    fn warn(&mut self, msg: &str) {
        self.notes.warn(msg);
    }

    fn started(&mut self, pid: Pid) {
        let raw = pid.as_raw_nonzero().get();
        self.state.pid = raw;
        self.state.start_ticks = instance::start_ticks(raw).unwrap_or(0);
        self.state.cgroup = self.cgroup.clone();
        if let Err(e) = self.state.save_new(&self.state_dir) {
            self.notes
                .warn(&format!("warning: instance state not recorded: {e}"));
        }
    }
}

/// A running bus proxy sandbox, stopped with its supervisor.
struct BusProxyProcess {
    supervisor: rustix::process::Pid,
    sync: Option<std::os::fd::OwnedFd>,
}

impl Drop for BusProxyProcess {
    fn drop(&mut self) {
        use rustix::process::{Signal, WaitOptions, kill_process, waitpid};
        // The proxy exits when our end of its pipe closes, and its sandbox
        // with it; a proxy that does not is killed after a while (its pid 1
        // dies with its supervisor, and the proxy with its pid namespace).
        drop(self.sync.take());
        let _ = kill_process(self.supervisor, Signal::TERM);
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(2) {
            match waitpid(Some(self.supervisor), WaitOptions::NOHANG) {
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(2)),
                _ => return,
            }
        }
        let _ = kill_process(self.supervisor, Signal::KILL);
        let _ = waitpid(Some(self.supervisor), WaitOptions::empty());
    }
}

/// Start xdg-dbus-proxy in its sandbox, as Flatpak does: it gets the write
/// end of a pipe (as stdin, `--fd=0`) and writes a byte once it listens.
/// What it says goes to `bus-proxy.log` beside its socket.
fn start_bus_proxy(
    sandbox: &berth_sandbox::SandboxPlan,
    upstream: &std::path::Path,
    socket: &std::path::Path,
) -> Result<BusProxyProcess> {
    let (read, write) = io(
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(Into::into),
        || "creating a pipe".into(),
    )?;
    let log_path = socket.with_file_name("bus-proxy.log");
    let log = io(std::fs::File::create(&log_path), || {
        format!("creating {}", log_path.display())
    })?;
    let null = io(std::fs::File::open("/dev/null"), || {
        "opening /dev/null".into()
    })?;
    let supervisor = berth_sandbox::exec::spawn(sandbox, [write, null.into(), log.into()])?;
    let mut b = [0u8; 1];
    let ready = rustix::io::read(&read, &mut b);
    let proxy = BusProxyProcess {
        supervisor,
        sync: Some(read),
    };
    match ready {
        Ok(1) => Ok(proxy),
        _ => {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            Err(Error::Invalid(format!(
                "the D-Bus proxy did not start (is the session bus at {} alive?){}",
                upstream.display(),
                match said.trim() {
                    "" => String::new(),
                    s => format!(": {}", s.lines().last().unwrap_or(s)),
                }
            )))
        }
    }
}

/// `file://` and the path, percent-encoded where a URI needs it.
fn file_uri(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file://");
    for &b in p.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
