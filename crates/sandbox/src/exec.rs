//! The executor: applies a `SandboxPlan`. In the style of bubblewrap:
//!
//! ```text
//! berth (host)                sandbox pid 1 (new user/mnt/pid/... ns)     app
//!  prepare scaffold, pipes
//!  clone ───────────────────► wait for "go"
//!  cgroup += pid (hooks), state
//!  "go" ────────────────────► uid/gid map, overlay root, /proc /dev /tmp,
//!                             binds, pivot_root, hostname
//!                             non-dumpable, drop caps,
//!                             no_new_privs, seccomp (inherited)
//!                             fork ─────────────────────────────────► setsid/tty, exec
//!  forward signals ─────────► forward signals ──────────────────────►
//!  relay the pty              reap; exit with the app's status
//!  wait, clean up
//! ```
//! Setup errors travel back over a CLOEXEC pipe, so the user sees one line.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::process::{Pid, Signal, WaitOptions};

use crate::error::{Ctx, Error, Result};
use crate::plan::{Mount, SandboxPlan, ScaffoldEntry};
use crate::seccomp;
use crate::sys::{Fork, clone_process};

/// Exit code for "the sandbox could not be set up" (podman uses 125 too).
pub const EXIT_SETUP: i32 = 125;

/// How a run ended: the exit code to pass on, and the sandbox's own error
/// message when it (not the app) failed.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub error: Option<String>,
}

/// What the caller does around the start of a sandbox: cgroup placement
/// (cgroupfs or systemd) and recording the instance.
pub trait Hooks {
    /// A v2 cgroup directory to start the sandbox in directly (clone3).
    fn clone_into(&self) -> Option<PathBuf>;
    /// Put the new sandbox (its pid 1, before the app starts) in its
    /// cgroup(s). `in_v2`: clone3 already put it in `clone_into`.
    fn place(&mut self, pid: Pid, in_v2: bool) -> std::result::Result<(), String>;
    /// The sandbox is placed and the app is starting.
    fn started(&mut self, pid: Pid);
    /// Something the user should know: the run goes on without it.
    fn warn(&mut self, msg: &str);
}

/// Run the plan (after `prepare`). Returns how it ended.
pub fn run(plan: &SandboxPlan, prepared: &Prepared, hooks: &mut dyn Hooks) -> Result<Outcome> {
    let hardening = Hardening::of(plan)?;
    let stdio = StdFds::classify();
    // A socket, not a pipe: pid 1 may fail its setup and be gone before
    // it reads "c", and writing to a pipe nobody reads would kill berth
    // with SIGPIPE (its default here) before it could report why.
    let (go_r, go_w) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "creating a socket pair".into())?;
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .ctx(|| "creating a pipe".into())?;
    // The pty is made inside (so it belongs to the sandbox's devpts and
    // `tty` works there); its master comes back over this socket.
    let console = if stdio.any_tty() {
        Some(
            rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::SEQPACKET,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .ctx(|| "creating the console socket".into())?,
        )
    } else {
        None
    };

    let n = &plan.namespaces;
    let mut flags = 0;
    for (on, f) in [
        (n.user, libc::CLONE_NEWUSER),
        (n.mount, libc::CLONE_NEWNS),
        (n.pid, libc::CLONE_NEWPID),
        (n.ipc, libc::CLONE_NEWIPC),
        (n.uts, libc::CLONE_NEWUTS),
        (n.net, libc::CLONE_NEWNET),
    ] {
        if on {
            flags |= f;
        }
    }
    // Start the child inside its v2 cgroup when the kernel allows it.
    let cg_fd = hooks.clone_into().and_then(|d| {
        rustix::fs::open(
            d,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
    });
    let forked = match &cg_fd {
        Some(fd) => crate::sys::clone_into_cgroup(flags, fd.as_fd()).transpose(),
        None => None,
    };
    let placed_in_v2 = matches!(forked, Some(Ok(_)));
    let forked = match forked {
        Some(r) => r,
        None => clone_process(flags),
    };
    let child = match forked {
        Ok(Fork::Child) => {
            use std::os::fd::AsRawFd;
            drop(go_w);
            drop(err_r);
            let sock = console.map(|(_, c)| c);
            // Pid 1 keeps no fd of the host beyond these three: not the
            // caller's, not the cgroup's, not berth's own.
            let mut keep = vec![go_r.as_raw_fd(), err_w.as_raw_fd()];
            keep.extend(sock.as_ref().map(|s| s.as_raw_fd()));
            if let Err(e) = crate::sys::close_fds_in_child(&keep) {
                let _ = rustix::io::write(&err_w, format!("closing inherited fds: {e}").as_bytes());
                std::process::exit(EXIT_SETUP);
            }
            let code = match sandbox_init(plan, prepared, &hardening, &stdio, go_r, &err_w, sock) {
                Ok(code) => code,
                Err(e) => {
                    let _ = rustix::io::write(&err_w, chain(&e).as_bytes());
                    EXIT_SETUP
                }
            };
            std::process::exit(code);
        }
        Ok(Fork::Parent(pid)) => pid,
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::ENOSPC) =>
        {
            return Err(Error::Setup(format!(
                "cannot create a user namespace ({e}); enable unprivileged user namespaces \
                 (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)"
            )));
        }
        Err(e) => return Err(e).ctx(|| "creating the sandbox process".into()),
    };
    drop(go_r);
    drop(err_w);
    let console = console.map(|(p, c)| {
        drop(c);
        p
    });
    // "g": set up the sandbox. Meanwhile move it into the remaining
    // cgroups; "c": now start the app (so it is born in them).
    // Pid 1 gone (its setup failed): its error is read below.
    let go = |b: &[u8]| match rustix::net::send(&go_w, b, rustix::net::SendFlags::NOSIGNAL) {
        Ok(_) | Err(rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET) => Ok(()),
        Err(e) => Err(e),
    };
    go(b"g").ctx(|| "starting the sandbox".into())?;
    if let Err(e) = hooks.place(child, placed_in_v2) {
        let _ = rustix::process::kill_process(child, Signal::KILL);
        let _ = rustix::process::waitpid(Some(child), WaitOptions::empty());
        // Pid 1 may have failed first (and so could not be placed): its
        // reason is the one to give.
        let mut msg = String::new();
        let _ = File::from(err_r).read_to_string(&mut msg);
        if !msg.trim().is_empty() {
            return Ok(Outcome {
                code: EXIT_SETUP,
                error: Some(msg.trim().to_owned()),
            });
        }
        return Err(Error::Setup(e));
    }
    // Stopped (dropped) when the app is gone.
    let mut _pasta = None;
    if plan.network.pasta() {
        // While pid 1 sets up: it is still dumpable, so pasta (running as
        // the user) can join its namespaces; the app does not exist yet.
        let uid = rustix::process::geteuid().as_raw();
        let _ = fs::create_dir_all(&plan.instance_dir);
        let pid_file = plan.instance_dir.join(crate::net::PASTA_PID_FILE);
        match crate::net::start_pasta(child.as_raw_nonzero().get(), uid, &pid_file) {
            Ok(p) => _pasta = Some(p),
            Err(why) => hooks.warn(&format!("warning: no network for the app: {why}")),
        }
        // The LAN only: routes cut down before the app exists, or no app.
        if _pasta.is_some()
            && plan.network == crate::plan::Network::Lan
            && let Err(why) = crate::net::lan_only(child.as_raw_nonzero().get())
        {
            let _ = rustix::process::kill_process(child, Signal::KILL);
            let _ = rustix::process::waitpid(Some(child), WaitOptions::empty());
            return Err(Error::Setup(format!(
                "cannot limit the app to the local network: {why}"
            )));
        }
    }
    go(b"c").ctx(|| "starting the sandbox".into())?;
    drop(go_w);
    hooks.started(child);
    // Before the relay's threads exist.
    crate::sys::release_setup_pages();

    let relay = console
        .and_then(|c| recv_fd(&c))
        .map(|m| TtyRelay::start(m, &stdio));
    // berth's other children (a bus proxy) are not the supervisor's to reap.
    let code = supervise(child, false);
    if let Some(r) = relay {
        r.finish();
    }
    let mut msg = String::new();
    let _ = File::from(err_r).read_to_string(&mut msg);
    Ok(Outcome {
        code,
        error: Some(msg.trim().to_owned()).filter(|m| !m.is_empty()),
    })
}

/// `f` in a child process, its bytes back: for work that starts threads
/// (zbus does) in a process that must stay single-threaded until its
/// sandbox is cloned. The child exits when `f` returns; its memory and
/// threads go with it. Empty when the child died before answering.
pub fn in_child(f: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .ctx(|| "creating a pipe".into())?;
    match clone_process(0).ctx(|| "starting a helper process".into())? {
        Fork::Child => {
            drop(r);
            let out = f();
            let _ = write_all(w.as_fd(), &out);
            std::process::exit(0);
        }
        Fork::Parent(pid) => {
            drop(w);
            let mut out = Vec::new();
            let _ = File::from(r).read_to_end(&mut out);
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
            Ok(out)
        }
    }
}

/// A sandbox started in the background for a helper (the bus proxy): a
/// child of this process prepares it and supervises it, and exits with
/// its command's status. `stdio` becomes the command's stdin, stdout and
/// stderr; the caller waits for or kills the returned pid. The caller
/// must be single-threaded.
pub fn spawn(plan: &SandboxPlan, stdio: [OwnedFd; 3]) -> Result<Pid> {
    struct Quiet;
    impl Hooks for Quiet {
        fn clone_into(&self) -> Option<PathBuf> {
            None
        }
        fn place(&mut self, _: Pid, _: bool) -> std::result::Result<(), String> {
            Ok(())
        }
        fn started(&mut self, _: Pid) {}
        fn warn(&mut self, msg: &str) {
            let _ = rustix::io::write(rustix::stdio::stderr(), format!("{msg}\n").as_bytes());
        }
    }
    match clone_process(0).ctx(|| "starting a helper sandbox".into())? {
        Fork::Child => {
            let code = (|| -> Result<i32> {
                let [i, o, e] = &stdio;
                rustix::stdio::dup2_stdin(i)
                    .and_then(|()| rustix::stdio::dup2_stdout(o))
                    .and_then(|()| rustix::stdio::dup2_stderr(e))
                    .ctx(|| "setting up stdio".into())?;
                for fd in stdio {
                    if std::os::fd::AsRawFd::as_raw_fd(&fd) <= 2 {
                        std::mem::forget(fd); // it is one of 0-2 now
                    }
                }
                // Nothing of the caller's: not its store lock or pin, not
                // its end of the helper's pipe. And gone with it.
                crate::sys::close_fds_in_child(&[]).ctx(|| "closing fds".into())?;
                let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
                if rustix::process::getppid().is_none_or(|p| p.as_raw_nonzero().get() == 1) {
                    return Ok(EXIT_SETUP);
                }
                let prepared = prepare(plan)?;
                Ok(run(plan, &prepared, &mut Quiet)?.code)
            })();
            let code = code.unwrap_or_else(|e| {
                let _ = rustix::io::write(
                    rustix::stdio::stderr(),
                    format!("{}\n", chain(&e)).as_bytes(),
                );
                EXIT_SETUP
            });
            std::process::exit(code);
        }
        Fork::Parent(pid) => Ok(pid),
    }
}

/// An error with its whole cause chain on one line, for the error pipe.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// Host-side paths a run uses, made by `prepare`.
pub struct Prepared {
    /// The top overlay layer: generated files and mount points.
    pub scaffold: PathBuf,
    /// Where the root overlay is mounted (inside the private mount
    /// namespace only, so every instance can share one directory).
    pub mount_point: PathBuf,
}

/// Check what the plan needs from the host (layers, bind sources) and
/// provide the scaffold. Scaffolds are cached by content under
/// `<state>/scaffolds/`: identical runs (the common case) reuse one, built
/// once and renamed into place atomically.
pub fn prepare(plan: &SandboxPlan) -> Result<Prepared> {
    use std::hash::{Hash, Hasher};
    for l in &plan.layers {
        if !l.is_dir() {
            return Err(Error::Setup(format!(
                "image layer {} is missing; run `berth fsck` and re-import the image",
                l.display()
            )));
        }
    }
    // Bind mount points must match their source's kind (file or dir).
    let mut binds: Vec<(PathBuf, bool)> = Vec::new();
    for m in &plan.mounts {
        if let Mount::Bind { src, dest, .. } = m {
            let meta = fs::metadata(src).map_err(|e| {
                Error::Usage(format!(
                    "--bind source {} cannot be used: {e}",
                    src.display()
                ))
            })?;
            binds.push((
                dest.strip_prefix("/").unwrap_or(dest).to_path_buf(),
                meta.is_dir(),
            ));
        }
    }
    let state = plan
        .instance_dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| Error::Setup("bad instance directory".into()))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&plan.scaffold, &binds, plan.uid).hash(&mut h);
    let scaffolds = state.join("scaffolds");
    let scaffold = scaffolds.join(format!("{:016x}", h.finish()));
    let mount_point = state.join("mnt");
    fs::create_dir_all(&mount_point).ctx(|| format!("creating {}", mount_point.display()))?;
    if !scaffold.is_dir() {
        let tmp = scaffolds.join(format!(".tmp-{}", plan.instance_id));
        build_scaffold(&tmp, plan, &binds)?;
        if fs::rename(&tmp, &scaffold).is_err() {
            // Another run made the same one first.
            let _ = fs::remove_dir_all(&tmp);
        }
    }
    Ok(Prepared {
        scaffold,
        mount_point,
    })
}

/// Refuse a path under `root` that goes through a symlink: the scaffold is
/// built, and mount points are made, on the host, where a link (from an
/// image's layout, or planted by the app in its persistent home) would
/// lead the write out of the sandbox's tree.
fn no_link_on_the_way(root: &Path, rel: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    for c in rel.components() {
        if matches!(
            c,
            std::path::Component::RootDir | std::path::Component::CurDir
        ) {
            continue;
        }
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_symlink() => {
                return Err(Error::Usage(format!(
                    "cannot place /{} in the sandbox: {} is a symbolic link",
                    rel.strip_prefix("/").unwrap_or(rel).display(),
                    at.strip_prefix(root).map_or(at.as_path(), |p| p).display()
                )));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

fn build_scaffold(sc: &Path, plan: &SandboxPlan, binds: &[(PathBuf, bool)]) -> Result<()> {
    let _ = fs::remove_dir_all(sc);
    fs::create_dir_all(sc).ctx(|| format!("creating {}", sc.display()))?;
    for e in &plan.scaffold {
        match e {
            ScaffoldEntry::Dir { path } | ScaffoldEntry::File { path, .. } => {
                no_link_on_the_way(sc, path)?;
            }
            ScaffoldEntry::Symlink { path, .. } => {
                no_link_on_the_way(sc, path.parent().unwrap_or(Path::new("")))?;
            }
        }
        match e {
            ScaffoldEntry::Dir { path } => fs::create_dir_all(sc.join(path)),
            ScaffoldEntry::File { path, contents } => {
                if let Some(p) = path.parent() {
                    fs::create_dir_all(sc.join(p)).ctx(|| format!("creating {}", p.display()))?;
                }
                fs::write(sc.join(path), contents)
            }
            ScaffoldEntry::Symlink { path, target } => {
                if let Some(p) = path.parent() {
                    fs::create_dir_all(sc.join(p)).ctx(|| format!("creating {}", p.display()))?;
                }
                std::os::unix::fs::symlink(target, sc.join(path))
            }
        }
        .ctx(|| format!("preparing {}", sc.display()))?;
    }
    for (dest, is_dir) in binds {
        no_link_on_the_way(sc, dest)?;
        let target = sc.join(dest);
        if *is_dir {
            fs::create_dir_all(&target)
        } else {
            if let Some(p) = target.parent() {
                fs::create_dir_all(p).ctx(|| format!("creating {}", p.display()))?;
            }
            if target.is_dir() {
                return Err(Error::Usage(format!(
                    "--bind: a file cannot be bound over the directory /{}",
                    dest.display()
                )));
            }
            fs::write(&target, b"")
        }
        .ctx(|| format!("creating mount point /{}", dest.display()))?;
    }
    Ok(())
}

/// Open a new pty from `ptmx`, sized like the user's terminal.
fn open_pty(ptmx: &str) -> Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::{grantpt, ptsname, unlockpt};
    let ctx = || format!("opening a pty from {ptmx}");
    let m = rustix::fs::open(
        ptmx,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(ctx)?;
    grantpt(&m).ctx(ctx)?;
    unlockpt(&m).ctx(ctx)?;
    let name = ptsname(&m, Vec::new()).ctx(ctx)?;
    let s = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening the pty slave".into())?;
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(&s, ws);
    }
    Ok((m, s))
}

fn send_fd(sock: &OwnedFd, fd: &OwnedFd) -> Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut buf = SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    buf.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        sock,
        &[io::IoSlice::new(b"m")],
        &mut buf,
        SendFlags::empty(),
    )
    .ctx(|| "handing the pty to berth".into())?;
    Ok(())
}

fn recv_fd(sock: &OwnedFd) -> Option<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut buf = RecvAncillaryBuffer::new(&mut space);
    let mut b = [0u8; 1];
    rustix::net::recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut b)],
        &mut buf,
        RecvFlags::CMSG_CLOEXEC,
    )
    .ok()?;
    buf.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    })
}

// ---------------------------------------------------------------- inside

/// Pid 1 of the sandbox: set up, start the app, reap, forward signals.
fn sandbox_init(
    plan: &SandboxPlan,
    prepared: &Prepared,
    hardening: &Hardening,
    stdio: &StdFds,
    go: OwnedFd,
    err_w: &OwnedFd,
    console: Option<OwnedFd>,
) -> Result<i32> {
    let mut b = [0u8; 1];
    if !matches!(rustix::io::read(&go, &mut b), Ok(1)) {
        return Ok(EXIT_SETUP); // the parent went away before "go"
    }
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    if plan.namespaces.user {
        write_id_maps(plan.uid, plan.gid)?;
    }
    if plan.namespaces.cgroup {
        crate::sys::unshare_cgroup_ns().ctx(|| "creating a cgroup namespace".into())?;
    }
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .ctx(|| "making mounts private".into())?;
    let root = &prepared.mount_point;
    mount_root(plan, &prepared.scaffold, root)?;
    for m in &plan.mounts {
        apply_mount(root, m)?;
    }
    rustix::process::chdir(root).ctx(|| "entering the new root".into())?;
    rustix::process::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).ctx(|| "detaching the old root".into())?;
    rustix::process::chdir("/").ctx(|| "chdir /".into())?;
    if plan.namespaces.net {
        crate::net::loopback_up().ctx(|| "bringing up lo".into())?;
    }
    if plan.namespaces.uts {
        rustix::system::sethostname(plan.hostname.as_bytes())
            .ctx(|| "setting the hostname".into())?;
    }
    let mut tty = match console {
        Some(sock) => {
            let (master, slave) = open_pty("/dev/ptmx")?;
            send_fd(&sock, &master)?;
            Some(slave)
        }
        None => None,
    };

    // Wait until the parent has put us in every cgroup (and connected
    // the network).
    if !matches!(rustix::io::read(&go, &mut b), Ok(1)) {
        return Ok(EXIT_SETUP);
    }
    drop(go);
    // From here on the app exists: no process in the sandbox may ptrace
    // pid 1, take its fds or write its memory (/proc/1/mem). Non-dumpable
    // puts that under CAP_SYS_PTRACE in berth's own user namespace, which
    // nothing inside has. The app's fork inherits it until its exec.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .ctx(|| "making pid 1 non-dumpable".into())?;
    // Pid 1 keeps nothing it does not need either: no capability and the
    // app's seccomp filter, which the app inherits (one filter load per
    // launch, not two).
    harden(hardening)?;
    let app = match clone_process(0).ctx(|| "starting the app".into())? {
        Fork::Child => {
            let e = exec_app(plan, stdio, tty.take());
            let code = match &e {
                Error::Sys { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
                Error::Sys { .. } => 126,
                _ => EXIT_SETUP,
            };
            let _ = rustix::io::write(err_w, chain(&e).as_bytes());
            std::process::exit(code);
        }
        Fork::Parent(p) => p,
    };
    drop(tty.take());
    // No host fd either (the error pipe was the last; the caller exits
    // without using it again).
    crate::sys::close_fds_in_child(&[]).ctx(|| "closing fds".into())?;
    // Pid 1 keeps the pages it touched: it shares the supervisor's (a
    // fork of a small program), and dropping them cost more launch time
    // (reading its maps while the app starts) than the memory they hold.
    Ok(supervise(app, true))
}

/// Wait for `child`, forwarding termination signals to it and reaping any
/// other child (pid 1's duty). Single-threaded: SIGCHLD arrives through the
/// same signal queue as the signals to forward. Returns the shell-style
/// exit code (128+N for death by signal N).
fn supervise(child: Pid, reap_all: bool) -> i32 {
    use signal_hook::consts::*;
    let status_code = |st: rustix::process::WaitStatus| {
        st.exit_status()
            .or_else(|| st.terminating_signal().map(|s| 128 + s))
            .unwrap_or(EXIT_SETUP)
    };
    // `wait` is wait4(-1); waitpid(None) would be wait4(0), which skips a
    // child in another session or process group.
    let reap = || -> Option<i32> {
        loop {
            let r = if reap_all {
                rustix::process::wait(WaitOptions::NOHANG)
            } else {
                rustix::process::waitpid(Some(child), WaitOptions::NOHANG)
            };
            match r {
                Ok(Some((pid, st))) if pid == child => return Some(status_code(st)),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return Some(EXIT_SETUP),
            }
        }
    };
    let signals = signal_hook::iterator::Signals::new([
        SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
    ]);
    let Ok(mut signals) = signals else {
        return match rustix::process::waitpid(Some(child), WaitOptions::empty()) {
            Ok(Some((_, st))) => status_code(st),
            _ => EXIT_SETUP,
        };
    };
    // The child may have exited before the handlers were in place.
    if let Some(code) = reap() {
        return code;
    }
    loop {
        for sig in signals.wait() {
            if sig == SIGCHLD {
                if let Some(code) = reap() {
                    return code;
                }
            } else if let Some(s) = Signal::from_named_raw(sig) {
                let _ = rustix::process::kill_process(child, s);
            }
        }
    }
}

fn write_id_maps(uid: u32, gid: u32) -> Result<()> {
    // Only our own ids are mapped: no setuid helper, nothing else to own.
    fs::write("/proc/self/setgroups", "deny").ctx(|| "writing /proc/self/setgroups".into())?;
    fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n")).ctx(|| "writing uid_map".into())?;
    fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n")).ctx(|| "writing gid_map".into())
}

fn mount_root(plan: &SandboxPlan, scaffold: &Path, root: &Path) -> Result<()> {
    if plan.layers.is_empty() {
        // No image (a helper such as the bus proxy, whose programs are
        // bound from the host): the scaffold alone, read-only.
        rustix::mount::mount_bind(scaffold, root)
            .ctx(|| "binding the scaffold as the root".into())?;
        return remount_ro(root).ctx(|| "making the root read-only".into());
    }
    let mut lower: Vec<String> = vec![scaffold.display().to_string()];
    for l in plan.layers.iter().rev() {
        lower.push(l.display().to_string());
    }
    for l in &lower {
        if l.contains([':', ',', '\\']) {
            return Err(Error::Setup(format!(
                "path {l} cannot be used in an overlay mount"
            )));
        }
    }
    let upper = plan.upper.as_ref().map(|u| {
        (
            u.join("upper").display().to_string(),
            u.join("work").display().to_string(),
        )
    });
    if let Some((u, w)) = &upper
        && (u.contains([':', ',', '\\']) || w.contains([':', ',', '\\']))
    {
        return Err(Error::Setup(format!(
            "path {u} cannot be used in an overlay mount"
        )));
    }
    let mut opts = format!("lowerdir={},userxattr", lower.join(":"));
    let mut flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
    if let Some((u, w)) = &upper {
        opts.push_str(&format!(",upperdir={u},workdir={w}"));
        flags.remove(MountFlags::RDONLY);
    }
    let what = if upper.is_some() {
        "mounting the image with the container's writable root"
    } else {
        "mounting the image as a read-only overlay"
    };
    // mount(2) takes its options in one page: past that (a runtime split
    // into many layers), the new mount API takes one layer at a time.
    if opts.len() < MOUNT_DATA_MAX {
        return mount_fs("overlay", root, flags, &opts).ctx(|| what.into());
    }
    overlay_layer_by_layer(&lower, upper.as_ref(), root).ctx(|| {
        format!(
            "mounting the image's {} layers as a read-only overlay (more than mount(2) takes at once; \
             this needs Linux 6.8 or later)",
            lower.len() - 1
        )
    })
}

/// What mount(2) reads of its options: one page, with the final NUL.
const MOUNT_DATA_MAX: usize = 4095;

/// overlayfs through fsopen/fsconfig (`lowerdir+`, Linux 6.8): any number
/// of lower layers, top first, as in a `lowerdir=` list.
fn overlay_layer_by_layer(
    lower: &[String],
    upper: Option<&(String, String)>,
    root: &Path,
) -> rustix::io::Result<()> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for l in lower {
        fsconfig_set_string(&fs, "lowerdir+", l.as_str())?;
    }
    let mut attrs = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
    match upper {
        Some((u, w)) => {
            fsconfig_set_string(&fs, "upperdir", u.as_str())?;
            fsconfig_set_string(&fs, "workdir", w.as_str())?;
        }
        None => attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY,
    }
    fsconfig_set_flag(&fs, "userxattr")?;
    fsconfig_create(&fs)?;
    let m = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    move_mount(
        &m,
        "",
        rustix::fs::CWD,
        root,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

/// A read-only stack of store directories at `d`. Their last component
/// came from an image, so each must be a real directory: a symlink there
/// would bring a host directory into the sandbox.
fn mount_overlay(lowers: &[PathBuf], d: &Path) -> rustix::io::Result<()> {
    for l in lowers {
        let m = fs::symlink_metadata(l).map_err(|e| {
            rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::NOENT)
        })?;
        if !m.is_dir() {
            return Err(rustix::io::Errno::NOTDIR);
        }
        if l.to_string_lossy().contains([':', ',', '\\']) {
            return Err(rustix::io::Errno::INVAL);
        }
    }
    let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
    match lowers {
        [] => Err(rustix::io::Errno::NOENT),
        // overlayfs needs two lower directories when it has no upper one.
        [one] => {
            rustix::mount::mount_bind(one, d)?;
            rustix::mount::mount_remount(d, MountFlags::BIND | flags, "")
        }
        _ => {
            // overlayfs takes the top directory first.
            let l: Vec<String> = lowers
                .iter()
                .rev()
                .map(|l| l.display().to_string())
                .collect();
            mount_fs(
                "overlay",
                d,
                flags,
                &format!("lowerdir={},userxattr", l.join(":")),
            )
        }
    }
}

/// Mount a filesystem of type `fs` (also used as the source name).
fn mount_fs(fs: &str, target: &Path, flags: MountFlags, data: &str) -> rustix::io::Result<()> {
    let data = std::ffi::CString::new(data).map_err(|_| rustix::io::Errno::INVAL)?;
    rustix::mount::mount(fs, target, fs, flags, Some(data.as_c_str()))
}

fn inside(root: &Path, dest: &Path) -> PathBuf {
    root.join(dest.strip_prefix("/").unwrap_or(dest))
}

fn apply_mount(root: &Path, m: &Mount) -> Result<()> {
    let nsd = MountFlags::NOSUID | MountFlags::NODEV;
    match m {
        Mount::Proc { dest } => {
            let d = inside(root, dest);
            mount_fs("proc", &d, nsd | MountFlags::NOEXEC, "")
                .ctx(|| format!("mounting proc on {}", dest.display()))
        }
        Mount::ReadOnly { dest } => {
            let d = inside(root, dest);
            if fs::metadata(&d).is_err() {
                return Ok(()); // e.g. /proc/irq on a kernel without it
            }
            rustix::mount::mount_bind(&d, &d).ctx(|| format!("binding {}", dest.display()))?;
            remount_ro(&d).ctx(|| format!("making {} read-only", dest.display()))
        }
        Mount::Mask { dest } => {
            let d = inside(root, dest);
            let Ok(meta) = fs::metadata(&d) else {
                return Ok(());
            };
            if meta.is_dir() {
                mount_fs(
                    "tmpfs",
                    &d,
                    MountFlags::RDONLY | nsd | MountFlags::NOEXEC,
                    "mode=555,size=0",
                )
            } else {
                // Still the host's /dev/null: the root is not pivoted yet.
                rustix::mount::mount_bind("/dev/null", &d)
            }
            .ctx(|| format!("masking {}", dest.display()))
        }
        Mount::Tmpfs { dest, mode } => {
            no_link_on_the_way(root, dest)?;
            let d = inside(root, dest);
            // e.g. a home under /tmp: its mount point is inside another tmpfs.
            if std::fs::symlink_metadata(&d).is_err() {
                fs::create_dir_all(&d)
                    .ctx(|| format!("creating the mount point {}", dest.display()))?;
            }
            mount_fs("tmpfs", &d, nsd, &format!("mode={mode:o}"))
                .ctx(|| format!("mounting tmpfs on {}", dest.display()))
        }
        Mount::Dev { dest } => mount_dev(&inside(root, dest)),
        Mount::Overlay { lowers, dest } => mount_overlay(lowers, &inside(root, dest))
            .ctx(|| format!("mounting the image's files at {}", dest.display())),
        Mount::Bind {
            src,
            dest,
            readonly,
        } => {
            no_link_on_the_way(root, dest)?;
            let d = inside(root, dest);
            // Mount points under the sandbox's own tmpfs mounts (/dev, /run,
            // /tmp, a tmpfs home) are made here; the scaffold has the rest.
            if std::fs::symlink_metadata(&d).is_err() {
                let made = if src.is_dir() {
                    fs::create_dir_all(&d)
                } else {
                    d.parent()
                        .map_or(Ok(()), fs::create_dir_all)
                        .and_then(|()| fs::write(&d, b""))
                };
                made.ctx(|| format!("creating the mount point {}", dest.display()))?;
            }
            rustix::mount::mount_bind_recursive(src, &d)
                .ctx(|| format!("binding {} to {}", src.display(), dest.display()))?;
            if *readonly {
                remount_ro(&d).ctx(|| format!("making {} read-only", dest.display()))?;
            }
            Ok(())
        }
    }
}

/// Remount a bind read-only, keeping the flags the kernel locks in a user
/// namespace (nosuid, nodev, noexec, atime) or the remount is refused.
fn remount_ro(p: &Path) -> rustix::io::Result<()> {
    use rustix::fs::StatVfsMountFlags as S;
    let st = rustix::fs::statvfs(p)?;
    let mut f = MountFlags::BIND | MountFlags::RDONLY;
    for (s, m) in [
        (S::NOSUID, MountFlags::NOSUID),
        (S::NODEV, MountFlags::NODEV),
        (S::NOEXEC, MountFlags::NOEXEC),
        (S::NOATIME, MountFlags::NOATIME),
        (S::NODIRATIME, MountFlags::NODIRATIME),
        (S::RELATIME, MountFlags::RELATIME),
    ] {
        if st.f_flag.contains(s) {
            f |= m;
        }
    }
    rustix::mount::mount_remount(p, f, "")
}

fn mount_dev(dev: &Path) -> Result<()> {
    let ctx = || format!("setting up {}", dev.display());
    mount_fs(
        "tmpfs",
        dev,
        MountFlags::NOSUID | MountFlags::NOEXEC,
        "mode=755",
    )
    .ctx(ctx)?;
    for n in ["null", "zero", "full", "random", "urandom", "tty"] {
        let t = dev.join(n);
        fs::write(&t, b"").ctx(ctx)?;
        rustix::mount::mount_bind(Path::new("/dev").join(n), &t)
            .ctx(|| format!("binding /dev/{n}"))?;
    }
    fs::create_dir(dev.join("pts")).ctx(ctx)?;
    fs::create_dir(dev.join("shm")).ctx(ctx)?;
    mount_fs(
        "devpts",
        &dev.join("pts"),
        MountFlags::NOSUID | MountFlags::NOEXEC,
        "newinstance,ptmxmode=0666,mode=620",
    )
    .ctx(|| "mounting devpts".into())?;
    mount_fs(
        "tmpfs",
        &dev.join("shm"),
        MountFlags::NOSUID | MountFlags::NODEV,
        "mode=1777",
    )
    .ctx(|| "mounting /dev/shm".into())?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link)).ctx(ctx)?;
    }
    Ok(())
}

/// What every process in a sandbox gives up before running app code.
pub struct Hardening {
    pub drop_all_capabilities: bool,
    /// Kept when the rest go (`device=tun`: CAP_NET_ADMIN).
    pub keep: rustix::thread::CapabilitySet,
    pub no_new_privs: bool,
    /// Compiled once, before forking, so no process compiles it twice.
    pub seccomp: Vec<seccompiler::BpfProgram>,
}

impl Hardening {
    pub fn of(plan: &SandboxPlan) -> Result<Hardening> {
        Ok(Hardening {
            drop_all_capabilities: plan.drop_all_capabilities,
            keep: if plan.keep_net_admin {
                rustix::thread::CapabilitySet::NET_ADMIN
            } else {
                rustix::thread::CapabilitySet::empty()
            },
            no_new_privs: plan.no_new_privs,
            seccomp: plan.seccomp.compile()?,
        })
    }

    pub fn default_policy() -> Result<Hardening> {
        Hardening::for_instance(false, false)
    }

    /// What a running instance's app got, for commands `enter` starts.
    pub fn for_instance(devel: bool, multiarch: bool) -> Result<Hardening> {
        Ok(Hardening {
            drop_all_capabilities: true,
            keep: rustix::thread::CapabilitySet::empty(),
            no_new_privs: true,
            seccomp: seccomp::SeccompPolicy::new(seccomp::Allow { devel, multiarch }).compile()?,
        })
    }
}

/// Drop every capability, forbid new privileges, load seccomp.
fn harden(plan: &Hardening) -> Result<()> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    if plan.drop_all_capabilities {
        for c in CapabilitySet::all().difference(plan.keep).iter() {
            // EINVAL: a capability this kernel does not know; nothing to drop.
            match rustix::thread::remove_capability_from_bounding_set(c) {
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(e).ctx(|| "dropping capabilities".into()),
            }
        }
        let _ = rustix::thread::clear_ambient_capability_set();
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: plan.keep,
                permitted: plan.keep,
                inheritable: plan.keep,
            },
        )
        .ctx(|| "dropping capabilities".into())?;
        // What is kept must survive the app's exec as its own uid: the
        // ambient set.
        for c in plan.keep.iter() {
            rustix::thread::configure_capability_in_ambient_set(c, true)
                .ctx(|| "keeping CAP_NET_ADMIN for the app".into())?;
        }
    }
    if plan.no_new_privs {
        rustix::thread::set_no_new_privs(true).ctx(|| "setting no_new_privs".into())?;
    }
    seccomp::apply(&plan.seccomp)
}

/// In the app process: stdio, terminal, hardening, exec. Returns only on
/// error.
fn exec_app(plan: &SandboxPlan, stdio: &StdFds, tty: Option<OwnedFd>) -> Error {
    let r = (|| -> Result<Error> {
        rustix::process::setsid().ctx(|| "setsid".into())?;
        // The user's terminal never reaches the app: its own pty stands in
        // for every std fd that was a terminal; fds that could reach the
        // host's files (directories, O_PATH, pidfds, unconnected sockets)
        // become /dev/null.
        redirect_stdio(stdio, tty.as_ref())?;
        drop(tty);
        rustix::process::chdir(plan.cwd.as_str())
            .map_err(|e| Error::Usage(format!("working directory {}: {e}", plan.cwd)))?;
        // Capabilities, no_new_privs and seccomp come from pid 1.
        let mut cmd = Command::new(&plan.argv[0]);
        cmd.args(&plan.argv[1..]).env_clear().envs(&plan.env);
        let e = cmd.exec();
        Ok(Error::Sys {
            context: format!("cannot run {}", plan.argv[0]),
            source: e,
        })
    })();
    r.unwrap_or_else(|e| e)
}

/// Put the sandbox's pty (made the controlling terminal) in place of every
/// std fd that is a terminal, and /dev/null in place of those that could
/// reach the host. Call after setsid.
fn redirect_stdio(stdio: &StdFds, tty: Option<&OwnedFd>) -> Result<()> {
    let null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| "opening /dev/null".into())?;
    if let Some(t) = tty {
        rustix::process::ioctl_tiocsctty(t).ctx(|| "taking the terminal".into())?;
    }
    for (i, kind) in stdio.0.iter().enumerate() {
        let with = match kind {
            StdFd::Tty => tty.unwrap_or(&null),
            StdFd::Null => &null,
            StdFd::Pass => continue,
        };
        let r = match i {
            0 => rustix::stdio::dup2_stdin(with),
            1 => rustix::stdio::dup2_stdout(with),
            _ => rustix::stdio::dup2_stderr(with),
        };
        r.ctx(|| "dup2".into())?;
    }
    Ok(())
}

/// What each of stdin, stdout and stderr is, as far as the sandbox cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdFd {
    /// A terminal: replaced by the sandbox's own pty.
    Tty,
    /// A file, pipe, connected stream socket or harmless device: passed.
    Pass,
    /// Closed, or something that reaches beyond itself (a directory to
    /// walk `..` from, an O_PATH fd, a pidfd, an unconnected socket):
    /// replaced by /dev/null.
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StdFds(pub [StdFd; 3]);

impl StdFds {
    pub fn classify() -> StdFds {
        let fds = [
            rustix::stdio::stdin(),
            rustix::stdio::stdout(),
            rustix::stdio::stderr(),
        ];
        StdFds(fds.map(|fd| classify_fd(fd)))
    }

    fn any_tty(&self) -> bool {
        self.0.contains(&StdFd::Tty)
    }
}

fn classify_fd(fd: std::os::fd::BorrowedFd<'_>) -> StdFd {
    use rustix::fs::FileType;
    let Ok(st) = rustix::fs::fstat(fd) else {
        return StdFd::Null;
    };
    if rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(OFlags::PATH)) {
        return StdFd::Null;
    }
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile | FileType::Fifo => StdFd::Pass,
        FileType::CharacterDevice if rustix::termios::isatty(fd) => StdFd::Tty,
        FileType::CharacterDevice => {
            // /dev/null, zero, full, random, urandom (major 1): harmless.
            let dev = st.st_rdev;
            let harmless =
                rustix::fs::major(dev) == 1 && matches!(rustix::fs::minor(dev), 3 | 5 | 7 | 8 | 9);
            if harmless { StdFd::Pass } else { StdFd::Null }
        }
        FileType::Socket => {
            // A connected stream (the journal, a pipe-like socketpair) can
            // only talk to its peer; anything else could reach more.
            let stream = rustix::net::sockopt::socket_type(fd)
                .is_ok_and(|t| t == rustix::net::SocketType::STREAM);
            let connected = rustix::net::getpeername(fd).is_ok_and(|a| a.is_some());
            if stream && connected {
                StdFd::Pass
            } else {
                StdFd::Null
            }
        }
        _ => StdFd::Null,
    }
}

// ---------------------------------------------------------------- host side

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut b: &[u8]) -> rustix::io::Result<()> {
    while !b.is_empty() {
        match rustix::io::write(fd, b) {
            Ok(0) => return Err(rustix::io::Errno::PIPE),
            Ok(n) => b = &b[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copies between the user's terminal (in raw mode) and the sandbox's pty.
struct TtyRelay {
    saved: Option<rustix::termios::Termios>,
    out: std::thread::JoinHandle<()>,
    _winch: Option<signal_hook::iterator::Handle>,
}

impl TtyRelay {
    /// Relay the sandbox's pty to whichever std fd is the user's terminal
    /// (stdout first), and the terminal's input to it when stdin is one.
    fn start(master: OwnedFd, stdio: &StdFds) -> TtyRelay {
        let input = stdio.0[0] == StdFd::Tty;
        let out_fd = [1usize, 2, 0]
            .into_iter()
            .find(|i| stdio.0[*i] == StdFd::Tty)
            .unwrap_or(1) as i32;
        let term = move || -> std::os::fd::BorrowedFd<'static> {
            match out_fd {
                0 => rustix::stdio::stdin(),
                2 => rustix::stdio::stderr(),
                _ => rustix::stdio::stdout(),
            }
        };
        let saved = if input {
            rustix::termios::tcgetattr(rustix::stdio::stdin()).ok()
        } else {
            None
        };
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Now,
                &raw,
            );
        }
        if let Ok(ws) = rustix::termios::tcgetwinsize(term()) {
            let _ = rustix::termios::tcsetwinsize(&master, ws);
        }
        let m_in = if input { master.try_clone().ok() } else { None };
        let m_winch = master.try_clone().ok();
        if let Some(m) = m_in {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut f = File::from(m);
                while let Ok(n) = rustix::io::read(rustix::stdio::stdin(), &mut buf) {
                    if n == 0 || f.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
        let winch = m_winch.and_then(|m| {
            let mut s =
                signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]).ok()?;
            let h = s.handle();
            std::thread::spawn(move || {
                for _ in s.forever() {
                    if let Ok(ws) = rustix::termios::tcgetwinsize(term()) {
                        let _ = rustix::termios::tcsetwinsize(&m, ws);
                    }
                }
            });
            Some(h)
        });
        let out = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave fd is closed: the app is gone.
            while let Ok(n) = rustix::io::read(master.as_fd(), &mut buf) {
                if n == 0 || write_all(term(), &buf[..n]).is_err() {
                    break;
                }
            }
        });
        TtyRelay {
            saved,
            out,
            _winch: winch,
        }
    }

    fn finish(self) {
        let _ = self.out.join();
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
        if let Some(h) = &self._winch {
            h.close();
        }
    }
}

/// Signal names users type (`TERM`, `SIGKILL`, `9`).
pub fn parse_signal(s: &str) -> Result<Signal> {
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let sig = match name {
        "TERM" => Signal::TERM,
        "KILL" => Signal::KILL,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        "QUIT" => Signal::QUIT,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "STOP" => Signal::STOP,
        "CONT" => Signal::CONT,
        n => n
            .parse::<i32>()
            .ok()
            .and_then(Signal::from_named_raw)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown signal {s:?} (use e.g. TERM, KILL, INT, HUP or a number)"
                ))
            })?,
    };
    Ok(sig)
}

// ---------------------------------------------------------------- instances

fn ns_inode(pid: i32, ns: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// The parent pid in /proc/PID/stat (after the parenthesized name).
fn ppid_of(pid: i32) -> Option<i32> {
    let stat = crate::sys::read_proc(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Host pids of pid 1 and every process below it. Found by parent pids,
/// which /proc shows to anyone: pid 1 is not dumpable, so its namespace
/// links are closed to the user who started it.
pub fn namespace_pids(pid1: i32) -> Vec<Pid> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(pp) = ppid_of(pid) {
                parents.push((pid, pp));
            }
        }
    }
    let mut out = vec![pid1];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.into_iter().filter_map(Pid::from_raw).collect()
}

/// The process to join for `enter`: the app (pid 1's first child), whose
/// namespaces are pid 1's; pid 1 itself is not dumpable.
fn join_target(pid1: i32) -> i32 {
    namespace_pids(pid1)
        .iter()
        .map(|p| p.as_raw_nonzero().get())
        .filter(|p| *p != pid1 && ppid_of(*p) == Some(pid1))
        .min()
        .unwrap_or(pid1)
}

/// Run `argv` inside a running instance's namespaces, hardened like its
/// app. Returns the exit code.
pub fn enter(
    pid1: i32,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    hardening: &Hardening,
) -> Result<i32> {
    if argv.is_empty() {
        return Err(Error::Usage("no command to run".into()));
    }
    let stdio = StdFds::classify();
    if !stdio.any_tty() {
        return enter_inner(pid1, argv, env, cwd, hardening, &stdio, None);
    }
    // The user's terminal never goes inside, where the app could open it
    // through /proc/PID/fd of the entered command: a pty stands in, and
    // berth relays from out here. The relay needs threads, which a process
    // that joined a pid namespace cannot have, so a child does the joining.
    let (master, slave) = open_pty("/dev/ptmx")?;
    crate::sys::ensure_single_threaded().ctx(|| "entering the instance".into())?;
    match crate::sys::clone_checked(0).ctx(|| "starting the command".into())? {
        Fork::Child => {
            drop(master);
            let code = enter_inner(pid1, argv, env, cwd, hardening, &stdio, Some(slave))
                .unwrap_or_else(|e| {
                    eprintln!("berth: error: {}", chain(&e));
                    EXIT_SETUP
                });
            std::process::exit(code);
        }
        Fork::Parent(pid) => {
            drop(slave);
            let relay = TtyRelay::start(master, &stdio);
            let code = loop {
                match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
                    Ok(Some((_, st))) => {
                        break st
                            .exit_status()
                            .or_else(|| st.terminating_signal().map(|s| 128 + s))
                            .unwrap_or(EXIT_SETUP);
                    }
                    Ok(None) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e).ctx(|| "waiting for the command".into()),
                }
            };
            relay.finish();
            Ok(code)
        }
    }
}

fn enter_inner(
    pid1: i32,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    hardening: &Hardening,
    stdio: &StdFds,
    tty: Option<OwnedFd>,
) -> Result<i32> {
    use rustix::thread::LinkNameSpaceType as T;
    let me = std::process::id() as i32;
    let pid1 = join_target(pid1);
    let mut fds = Vec::new();
    for (name, t) in [
        ("user", T::User),
        ("mnt", T::Mount),
        ("pid", T::ProcessID),
        ("ipc", T::InterProcessCommunication),
        ("uts", T::HostNameAndNISDomainName),
        ("net", T::Network),
        ("cgroup", T::ControlGroup),
    ] {
        // Joining a namespace we are already in is an error for some types.
        if ns_inode(pid1, name).is_some() && ns_inode(pid1, name) == ns_inode(me, name) {
            continue;
        }
        let f = File::open(format!("/proc/{pid1}/ns/{name}"))
            .ctx(|| format!("opening the instance's {name} namespace"))?;
        fds.push((name, t, f));
    }
    crate::sys::ensure_single_threaded().ctx(|| "entering the instance".into())?;
    // Once inside the instance's user namespace, its app holds every
    // capability there: a dumpable berth could be ptraced or have its fds
    // taken. Non-dumpable, only the host's own namespace may.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .ctx(|| "making berth non-dumpable".into())?;
    for (name, t, f) in &fds {
        rustix::thread::move_into_link_name_space(f.as_fd(), Some(*t))
            .ctx(|| format!("joining the {name} namespace"))?;
    }
    // The pid namespace applies to children only: fork once more.
    match crate::sys::clone_checked(0).ctx(|| "starting the command".into())? {
        Fork::Child => {
            let r = (|| -> Result<Error> {
                rustix::process::chdir(cwd)
                    .or_else(|_| rustix::process::chdir("/"))
                    .ctx(|| "chdir".into())?;
                rustix::process::setsid().ctx(|| "setsid".into())?;
                redirect_stdio(stdio, tty.as_ref())?;
                // berth cannot run a signal-forwarding thread once it has
                // joined a pid namespace, so tie the command's life to it.
                rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
                    .ctx(|| "prctl".into())?;
                // Nothing of the caller's reaches the instance but stdio.
                crate::sys::close_fds_in_child(&[0, 1, 2]).ctx(|| "closing fds".into())?;
                harden(hardening)?;
                let e = Command::new(&argv[0])
                    .args(&argv[1..])
                    .env_clear()
                    .envs(env.iter().cloned())
                    .exec();
                Ok(Error::Sys {
                    context: format!("cannot run {}", argv[0]),
                    source: e,
                })
            })();
            let e = r.unwrap_or_else(|e| e);
            eprintln!("berth: error: {}", chain(&e));
            std::process::exit(127);
        }
        Fork::Parent(pid) => {
            // No threads after setns(CLONE_NEWPID): the kernel refuses them.
            loop {
                match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
                    Ok(Some((_, st))) => {
                        return Ok(st
                            .exit_status()
                            .or_else(|| st.terminating_signal().map(|s| 128 + s))
                            .unwrap_or(EXIT_SETUP));
                    }
                    Ok(None) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e).ctx(|| "waiting for the command".into()),
                }
            }
        }
    }
}
