//! The escape suite: from inside a default sandbox, try each known way out
//! and require that it is blocked. Runs as root and, in CI, as an
//! unprivileged user (scripts/test-rootless). Prints the count.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// Compile the probe (static, so the image needs no libc).
fn build_probe(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe/escape-probe.c");
    let src = if src.exists() {
        src
    } else {
        // Prebuilt test binaries run elsewhere (rootless pass) get the source path here.
        PathBuf::from(std::env::var("BERTH_PROBE_SRC").unwrap())
    };
    let out = dir.join("escape-probe");
    let o = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// An image with busybox and the probe.
fn probe_image(env: &Env, probe: &Path) {
    busybox_image(
        env,
        "escape:1",
        vec![file("probe", &std::fs::read(probe).unwrap()).mode(0o755)],
    );
}

struct Attempt {
    args: Vec<String>,
    extra: Vec<String>,
    tty: bool,
    /// Shell redirections applied to berth's own process (fds the caller
    /// leaves open, odd stdio).
    redirect: &'static str,
}

fn attempt(args: &[&str]) -> Attempt {
    Attempt {
        args: args.iter().map(|s| s.to_string()).collect(),
        extra: vec![],
        tty: false,
        redirect: "",
    }
}

fn with_network(args: &[&str]) -> Attempt {
    Attempt {
        extra: vec!["--network".into()],
        ..attempt(args)
    }
}

fn redirected(redirect: &'static str, args: &[&str]) -> Attempt {
    Attempt {
        redirect,
        ..attempt(args)
    }
}

fn run_attempt(env: &Env, a: &Attempt) -> (bool, String) {
    let mut cmd: Vec<String> = vec!["run".into()];
    cmd.extend(a.extra.iter().cloned());
    cmd.push("escape:1".into());
    cmd.push("--".into());
    cmd.extend(a.args.iter().cloned());
    let out = if a.tty {
        // A real terminal on stdin: `script` gives berth a pty.
        let line = std::iter::once(berth_bin().display().to_string())
            .chain(cmd.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
            + " "
            + a.redirect;
        env.cmd_raw("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    } else if !a.redirect.is_empty() {
        // The shell opens the fds without close-on-exec, as a careless
        // caller (a file manager, a script) would.
        let mut c = env.cmd_raw("sh");
        c.arg("-c")
            .arg(format!("exec \"$0\" \"$@\" {}", a.redirect))
            .arg(berth_bin())
            .args(&cmd);
        c.stdin(Stdio::null()).output().unwrap()
    } else {
        env.cmd().args(&cmd).stdin(Stdio::null()).output().unwrap()
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let blocked =
        text.contains("BLOCKED") && !text.contains("ESCAPED") && !text.contains("UNEXPECTED");
    (blocked, text.replace('\r', ""))
}

#[test]
fn escape_suite() {
    if !have_tool("escape_suite", "gcc") || !have_tool("escape_suite", "script") {
        return;
    }
    let env = Env::new();
    let probe = build_probe(env.dir.path());
    probe_image(&env, &probe);

    // Host-side bait.
    let secret = env.path("secret.txt");
    std::fs::write(&secret, b"host secret").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port().to_string();
    let abstract_name = format!("berth-escape-test-{}", std::process::id());
    let _unix = abstract_listener(&abstract_name);
    let mut victim = Command::new("sleep").arg("60").spawn().unwrap();
    let victim_pid = victim.id().to_string();
    let hostname_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();

    let mut attempts = vec![
        attempt(&["/probe", "read-host-file", secret.to_str().unwrap()]),
        attempt(&[
            "/probe",
            "write-host-file",
            env.path("planted").to_str().unwrap(),
        ]),
        attempt(&["/probe", "write-image-root"]),
        attempt(&["/probe", "see-host-processes"]),
        attempt(&["/probe", "signal-host-process", &victim_pid]),
        attempt(&["/probe", "signal-everything"]),
        attempt(&["/probe", "ptrace-attach"]),
        attempt(&["/probe", "ptrace-traceme"]),
        Attempt {
            tty: true,
            ..attempt(&["/probe", "tiocsti"])
        },
        Attempt {
            tty: true,
            ..attempt(&["/probe", "tioclinux"])
        },
        attempt(&["/probe", "mount"]),
        attempt(&["/probe", "umount"]),
        attempt(&["/probe", "chroot"]),
        attempt(&["/probe", "pivot-root"]),
        attempt(&["/probe", "unshare-mount"]),
        attempt(&["/probe", "setns"]),
        attempt(&["/probe", "userns-unshare"]),
        attempt(&["/probe", "userns-clone"]),
        attempt(&["/probe", "clone3"]),
        attempt(&["/probe", "new-mount-api"]),
        attempt(&["/probe", "open-tree"]),
        attempt(&["/probe", "keyctl"]),
        attempt(&["/probe", "add-key"]),
        attempt(&["/probe", "raw-socket"]),
        attempt(&["/probe", "packet-socket"]),
        attempt(&["/probe", "bluetooth-socket"]),
        attempt(&["/probe", "tcp-connect", &port]),
        attempt(&["/probe", "abstract-socket", &abstract_name]),
        attempt(&["/probe", "sethostname"]),
        attempt(&["/probe", "proc-sys-write"]),
        attempt(&["/probe", "sysrq"]),
        attempt(&["/probe", "init-module"]),
        attempt(&["/probe", "finit-module"]),
        attempt(&["/probe", "open-by-handle"]),
        attempt(&["/probe", "bpf"]),
        attempt(&["/probe", "perf"]),
        attempt(&["/probe", "personality"]),
        attempt(&["/probe", "userfaultfd"]),
        attempt(&["/probe", "io-uring"]),
        attempt(&["/probe", "x32-abi"]),
        attempt(&["/probe", "mknod"]),
        attempt(&["/probe", "dev-mem"]),
        attempt(&["/probe", "caps"]),
        // pid 1 is berth's init: no host fd, not dumpable.
        attempt(&["/probe", "pidfd-getfd"]),
        attempt(&["/probe", "proc1-mem"]),
        attempt(&["/probe", "proc1-fds"]),
        attempt(&["/probe", "ptrace-pid1"]),
        attempt(&["/probe", "process-vm-readv"]),
        attempt(&["/probe", "kcmp"]),
        // fds the caller left open, and a directory as stdio.
        redirected("7</ 8<.", &["/probe", "inherited-fds"]),
        redirected("0</", &["/probe", "stdio-dir"]),
        attempt(&["/probe", "cgroup"]),
        attempt(&["/probe", "proc-masked"]),
        attempt(&["/probe", "int80"]),
        attempt(&["/probe", "listmount"]),
        attempt(&["/probe", "statmount"]),
        attempt(&["/probe", "loopback"]),
        Attempt {
            tty: true,
            redirect: "</dev/null",
            ..attempt(&["/probe", "tiocsetd"])
        },
        // share=network: the internet through pasta, never the host's
        // loopback services or abstract sockets.
        with_network(&["/probe", "tcp-connect", &port]),
        with_network(&["/probe", "abstract-socket", &abstract_name]),
        with_network(&["/probe", "loopback"]),
        with_network(&["/probe", "pidfd-getfd"]),
    ];
    // A setuid binary from the host: root can make one owned by nobody;
    // the rootless pass gets a setuid-root one from scripts/test-rootless.
    if let Some(suid) = setuid_probe(&env, &probe) {
        let mut a = attempt(&["/suid-probe", "setuid-exec"]);
        a.extra = vec![
            "--bind".into(),
            format!("{}:/suid-probe:ro", suid.display()),
        ];
        attempts.push(a);
    }

    let mut escaped = vec![];
    for a in &attempts {
        let (blocked, text) = run_attempt(&env, a);
        let line = text
            .lines()
            .find(|l| l.contains("BLOCKED") || l.contains("ESCAPED") || l.contains("UNEXPECTED"));
        let _ = writeln!(
            std::io::stderr(),
            "escape-suite: {}",
            line.unwrap_or(text.trim())
        );
        if !blocked {
            escaped.push(format!("{:?}: {text}", a.args));
        }
    }
    // Side effects on the host, checked from outside.
    let mut host_checks = 0;
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process was killed from the sandbox"
    );
    host_checks += 1;
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        hostname_before
    );
    host_checks += 1;
    assert!(
        !env.path("planted").exists(),
        "a host file was created from the sandbox"
    );
    host_checks += 1;
    let _ = victim.kill();
    let _ = victim.wait();
    drop(tcp);

    // stdout on the user's terminal, stdin not: the app gets a pty of its
    // own, so its terminal settings never reach the user's.
    if !stdout_tty_is_private(&env) {
        escaped.push("stty on stdout changed the user's terminal".into());
    }
    host_checks += 1;

    let total = attempts.len() + host_checks;
    let _ = writeln!(
        std::io::stderr(),
        "escape-suite: {} of {total} escape attempts blocked (uid {})",
        total - escaped.len(),
        rustix::process::getuid().as_raw()
    );
    assert!(escaped.is_empty(), "escapes:\n{}", escaped.join("\n"));
}

fn stdout_tty_is_private(env: &Env) -> bool {
    let line = format!(
        "stty -tostop; {} run escape:1 -- /probe stty-stdout </dev/null; stty -a",
        berth_bin().display()
    );
    let (text, _) = env.in_terminal(&line);
    let _ = writeln!(
        std::io::stderr(),
        "escape-suite: stty on stdout: {}",
        text.lines().next().unwrap_or("")
    );
    text.contains("-tostop")
}

fn abstract_listener(name: &str) -> UnixListener {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    UnixListener::bind_addr(&addr).unwrap()
}

fn setuid_probe(env: &Env, probe: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if is_root() {
        let p = env.path("suid-probe");
        std::fs::copy(probe, &p).unwrap();
        rustix::fs::chown(
            &p,
            Some(rustix::fs::Uid::from_raw(65534)),
            Some(rustix::fs::Gid::from_raw(65534)),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
        // The test dir must be reachable for the bind.
        Some(p)
    } else if let Some(p) = std::env::var_os("BERTH_TEST_SUID_PROBE") {
        Some(PathBuf::from(p))
    } else {
        skip(
            "escape_suite (setuid part)",
            "needs root or BERTH_TEST_SUID_PROBE from scripts/test-rootless",
        );
        None
    }
}
