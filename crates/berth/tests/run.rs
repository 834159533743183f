//! `berth run` and the instance commands, end to end.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn setup() -> Env {
    let env = Env::new();
    busybox_image(&env, "bb:1", vec![file("etc/motd", b"from the image\n")]);
    env
}

fn sh(env: &Env, script: &str) -> std::process::Output {
    env.cmd()
        .args(["run", "bb:1", "--", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn runs_as_the_invoking_user_in_fresh_namespaces() {
    let env = setup();
    let o = sh(
        &env,
        "id -u; id -g; hostname; cat /etc/motd; ls /proc | grep -c '^[0-9]'; echo $HOME; pwd",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], rustix::process::getuid().as_raw().to_string());
    assert_eq!(lines[1], rustix::process::getgid().as_raw().to_string());
    assert_eq!(lines[2], "bb");
    assert_eq!(lines[3], "from the image");
    // pid 1, sh, ls and grep: nothing from the host.
    assert!(
        lines[4].parse::<u32>().unwrap() <= 4,
        "only the sandbox's processes: {out}"
    );
    assert_eq!(lines[6], "/");
}

#[test]
fn root_is_read_only_and_tmp_is_private_tmpfs() {
    let env = setup();
    let o = sh(
        &env,
        "touch /etc/x 2>&1; echo hi > /tmp/f && cat /tmp/f; grep ' /tmp ' /proc/mounts; grep ' / ' /proc/mounts",
    );
    let out = stdout(&o);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("hi\n"));
    assert!(out.contains("tmpfs /tmp tmpfs"), "{out}");
    assert!(out.contains("overlay / overlay ro"), "{out}");
    // Nothing written inside survives.
    let o = sh(&env, "cat /tmp/f 2>&1; true");
    assert!(stdout(&o).contains("No such file"));
}

#[test]
fn passwd_and_group_are_generated() {
    let env = setup();
    let out = stdout(&sh(&env, "cat /etc/passwd /etc/group"));
    let uid = rustix::process::getuid().as_raw();
    assert!(
        out.lines()
            .any(|l| l.split(':').nth(2) == Some(&uid.to_string())),
        "{out}"
    );
}

#[test]
fn minimal_dev() {
    let env = setup();
    let out = stdout(&sh(&env, "ls /dev"));
    let mut names: Vec<&str> = out.split_whitespace().collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero"
        ]
    );
    assert_eq!(
        stdout(&sh(
            &env,
            "echo ok > /dev/null && head -c 4 /dev/zero | wc -c 2>/dev/null || echo 4"
        ))
        .trim(),
        "4"
    );
}

#[test]
fn exit_codes_and_signal_deaths_propagate() {
    let env = setup();
    assert_eq!(sh(&env, "exit 7").status.code(), Some(7));
    assert_eq!(sh(&env, "kill -9 $$").status.code(), Some(137));
    assert_eq!(sh(&env, "kill -TERM $$").status.code(), Some(143));
    let o = env.run(&["run", "bb:1", "--", "/no/such/cmd"]);
    assert_eq!(o.status.code(), Some(127));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot run /no/such/cmd") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn stdin_and_stdout_pass_through() {
    let env = setup();
    let mut c = env
        .cmd()
        .args(["run", "bb:1", "--", "/bin/cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"piped data\n").unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "piped data\n");
}

#[test]
fn a_terminal_gets_its_own_pty() {
    if !have_tool("a_terminal_gets_its_own_pty", "script") {
        return;
    }
    let env = setup();
    let line = format!(
        "{} run bb:1 -- /bin/sh -c 'tty; exit 3'",
        berth_bin().display()
    );
    let (out, code) = env.in_terminal(&line);
    assert!(
        out.contains("/dev/pts/0"),
        "the sandbox's own devpts: {out}"
    );
    assert_eq!(code, Some(3));
}

#[test]
fn signals_are_forwarded_to_the_app() {
    let env = setup();
    let child = env
        .cmd()
        .args([
            "run",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(stdout(&o).contains("got-term"), "{}", stdout(&o));
    assert_eq!(o.status.code(), Some(42));
}

#[test]
fn options_env_workdir_and_binds() {
    let env = setup();
    let data = env.path("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in.txt"), b"granted\n").unwrap();
    let ro = format!("{}:/data:ro", data.display());
    let o = env
        .cmd()
        .args([
            "run",
            "--bind",
            &ro,
            "-e",
            "GREETING=hi there",
            "-w",
            "/data",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
        ])
        .arg("echo $GREETING; pwd; cat in.txt; touch new 2>&1; true")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(out.contains("hi there\n/data\ngranted\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    let rw = format!("{}:/data", data.display());
    let o = env
        .cmd()
        .args([
            "run",
            "--bind",
            &rw,
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            "echo written > /data/out.txt",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).unwrap(),
        "written\n"
    );
}

#[test]
fn network_is_off_unless_asked() {
    let env = setup();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let script = format!("echo hello | nc -w 2 127.0.0.1 {port} && echo connected || echo refused");
    assert!(stdout(&sh(&env, &script)).contains("refused"));
    // --network is the app's own network (pasta): not the host's loopback.
    if have_tool("network_is_off_unless_asked", "pasta") {
        let o = env
            .cmd()
            .args(["run", "--network", "bb:1", "--", "/bin/sh", "-c", &script])
            .output()
            .unwrap();
        assert!(stdout(&o).contains("refused"), "{}", stdout(&o));
    }
    let accept = std::thread::spawn(move || l.accept().is_ok());
    let o = env
        .cmd()
        .args([
            "run",
            "--host-network",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(stdout(&o).contains("connected"), "{}", stdout(&o));
    assert!(accept.join().unwrap());
}

#[test]
fn print_plan_runs_nothing() {
    let env = setup();
    let o = env.run(&[
        "run",
        "--print-plan",
        "--memory",
        "256M",
        "bb:1",
        "--",
        "/bin/true",
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["argv"][0], "/bin/true");
    assert_eq!(v["namespaces"]["net"], true);
    assert_eq!(v["no_new_privs"], true);
    assert_eq!(v["cgroup"]["limits"]["memory"], 256 << 20);
    assert!(
        v["cgroup"]["name"]
            .as_str()
            .unwrap()
            .starts_with("app-berth-bb-")
    );
    assert!(
        v["seccomp"]["deny"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["syscall"] == "keyctl")
    );
    assert_eq!(
        std::fs::read_dir(env.runtime_dir().join("instances"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn clear_errors() {
    let env = setup();
    let err = env.fails(&["run", "ghost:1"]);
    assert!(err.contains("no image named"), "{err}");
    let err = env.fails(&["run", "--bind", "/no/such:/x", "bb:1", "--", "/bin/true"]);
    assert!(err.contains("--bind source /no/such"), "{err}");
    let err = env.fails(&["run", "--bind", "relative:/x", "bb:1"]);
    assert!(err.contains("absolute"), "{err}");
    let err = env.fails(&["run", "-e", "NOEQUALS", "bb:1"]);
    assert!(err.contains("KEY=VALUE"), "{err}");
    let err = env.fails(&["run", "--memory", "lots", "bb:1"]);
    assert!(err.contains("--memory"), "{err}");
    let o = env.run(&["run", "-w", "/nope", "bb:1", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("working directory /nope"));
    // Nothing is left behind by failed runs.
    assert_eq!(
        std::fs::read_dir(env.runtime_dir().join("instances"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn ps_pause_resume_enter_kill() {
    let env = setup();
    let mut child = env
        .cmd()
        .args([
            "run",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let id = inst["id"].as_str().unwrap().to_owned();
    assert_eq!(inst["image"], "bb:1");
    assert_eq!(inst["status"], "running");
    assert!(inst["pid"].as_i64().unwrap() > 1);
    let table = env.ok(&["ps"]);
    assert!(table.contains(&id) && table.contains("UPTIME"), "{table}");

    let count = |env: &Env| {
        env.ok(&["enter", &id, "--", "/bin/cat", "/tmp/count"])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    // enter sees the instance's own /tmp and hostname.
    assert_eq!(env.ok(&["enter", &id, "--", "/bin/hostname"]).trim(), "bb");
    // From a terminal, the entered command gets a pty of berth's, never
    // the user's terminal (which the app could open through /proc).
    if have_tool("ps_pause_resume_enter_kill", "script") {
        let line = format!(
            "stat -L -c %t:%T /dev/stdin; {} enter {id} -- /bin/stat -L -c %t:%T /proc/self/fd/0",
            berth_bin().display()
        );
        let (text, _) = env.in_terminal(&line);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(':')).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_ne!(
            lines[0], lines[1],
            "the entered command got the user's terminal: {text}"
        );
    }
    let a = count(&env);
    std::thread::sleep(Duration::from_millis(300));
    assert!(count(&env) > a, "running instance makes progress");

    env.ok(&["pause", &id]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    assert_eq!(v[0]["status"], "paused");
    let err = env.fails(&["enter", &id, "--", "/bin/true"]);
    assert!(err.contains("paused"), "{err}");
    env.ok(&["resume", &id]);
    let a = count(&env);
    env.ok(&["pause", &id]);
    let frozen_at = {
        std::thread::sleep(Duration::from_millis(200));
        env.ok(&["resume", &id]);
        count(&env)
    };
    assert!(
        frozen_at <= a + 3,
        "paused instance stopped making progress ({a} -> {frozen_at})"
    );

    env.ok(&["kill", &id]);
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(137), "SIGKILL through `berth kill`");
    assert_eq!(env.ok(&["ps", "--json"]).trim(), "[]");
    let err = env.fails(&["kill", &id]);
    assert!(err.contains("no instance"), "{err}");
}

#[test]
fn a_crashed_instance_is_not_listed() {
    let env = setup();
    let child = env
        .cmd()
        .args(["run", "bb:1", "--", "/bin/sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    // Kill berth itself and the sandbox without any cleanup.
    let pid1 = inst["pid"].as_i64().unwrap() as i32;
    for p in [child.id() as i32, pid1] {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(p).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    let mut child = child;
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.ok(&["ps", "--json"]).trim(), "[]");
    assert_eq!(
        std::fs::read_dir(env.runtime_dir().join("instances"))
            .unwrap()
            .count(),
        0,
        "stale state cleaned"
    );
}

#[test]
fn cgroup_named_after_the_app_with_limits() {
    let env = setup();
    if !is_root() {
        let o = sh(&env, "true");
        assert!(o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("unavailable") {
            // Without a delegated cgroup: runs, with a one-line warning;
            // asking for limits is a clear error.
            assert_eq!(err.lines().count(), 1, "{err}");
        } else {
            // Delegated (a systemd user session): the instance gets a
            // cgroup named after the app, beside the caller's.
            let mut child = env
                .cmd()
                .args(["run", "bb:1", "--", "/bin/sleep", "30"])
                .spawn()
                .unwrap();
            let inst = wait_for_instance(&env);
            let cg = inst["cgroup"].as_str().unwrap_or_default().to_owned();
            assert!(cg.contains("app-berth-bb-"), "{inst}");
            let pid = inst["pid"].as_i64().unwrap();
            let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            assert!(host_view.contains(&cg), "{host_view}");
            env.ok(&["kill", inst["id"].as_str().unwrap()]);
            let _ = child.wait();
        }
        // Limits need controllers delegated in v2 (a hybrid host's v2 has
        // none); when they cannot be applied, that is an error, never a
        // silent run without them.
        let o = env.run(&[
            "run",
            "--memory",
            "64M",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            "cat /proc/self/cgroup",
        ]);
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("cannot apply resource limits"), "{err}");
        }
        return;
    }
    let o = env
        .cmd()
        .args([
            "run",
            "--memory",
            "64M",
            "--pids",
            "50",
            "--cpu-weight",
            "200",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            "cat /proc/self/cgroup",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Check from outside while one runs.
    let mut child = env
        .cmd()
        .args([
            "run",
            "--memory",
            "64M",
            "--pids",
            "50",
            "bb:1",
            "--",
            "/bin/sleep",
            "30",
        ])
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let cg = inst["cgroup"].as_str().unwrap().to_owned();
    assert!(
        cg.contains("app-berth-bb-") && cg.ends_with(".scope"),
        "{cg}"
    );
    let pid = inst["pid"].as_i64().unwrap();
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(host_view.contains("app-berth-bb-"), "{host_view}");
    let mem_limit = host_view
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            let (ctrl, path) = rest.split_once(':')?;
            if ctrl == "memory" {
                std::fs::read_to_string(format!(
                    "/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
                ))
                .ok()
            } else if ctrl.is_empty() {
                std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max")).ok()
            } else {
                None
            }
        })
        .unwrap_or_default();
    assert_eq!(mem_limit.trim(), (64u64 << 20).to_string(), "{host_view}");
    env.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = child.wait();
    let _ = Command::new("true").status();
}

#[test]
fn pid1_reaps_orphans() {
    let env = setup();
    // The subshell exits at once; its `sleep` is orphaned to pid 1, exits,
    // and must not stay a zombie.
    let out = stdout(&sh(&env, "(sleep 0.2 &); sleep 0.8; ps -o stat,comm"));
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with('Z')),
        "zombie left: {out}"
    );
}

#[test]
fn no_user_namespaces_is_a_clear_error() {
    // bwrap --disable-userns gives berth a kernel view where creating a
    // user namespace fails, as on hosts that forbid it.
    if !have_tool("no_user_namespaces_is_a_clear_error", "bwrap") {
        return;
    }
    let env = setup();
    let bin = berth_bin();
    let o = env
        .cmd_raw("bwrap")
        .args([
            "--unshare-user",
            "--disable-userns",
            "--bind",
            "/",
            "/",
            "--dev-bind",
            "/dev",
            "/dev",
            "--proc",
            "/proc",
            "--",
        ])
        .arg(&bin)
        .args(["run", "bb:1", "--", "/bin/true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot create a user namespace") && err.contains("user.max_user_namespaces"),
        "{err}"
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("berth: error"))
            .count(),
        1,
        "{err}"
    );
}

/// A peer on a veth pair in a network namespace of its own, serving a
/// line on TCP: somewhere "on the internet" that is neither the host's
/// loopback nor any real address. Root sets it up; the rootless pass gets
/// it from scripts/test-rootless as BERTH_TEST_NET_PEER.
struct NetPeer {
    ns: String,
    server: Option<std::process::Child>,
    addr: String,
}

const PEER_SERVER: &str = "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 7777))\ns.listen(8)\nwhile True:\n    c,_=s.accept()\n    c.sendall(b'peer-hello\\n')\n    c.close()\n";

impl NetPeer {
    fn start() -> Option<NetPeer> {
        if let Ok(addr) = std::env::var("BERTH_TEST_NET_PEER") {
            return Some(NetPeer {
                ns: String::new(),
                server: None,
                addr,
            });
        }
        if !is_root() {
            return None;
        }
        let ns = format!("berth-peer-{}", std::process::id());
        let (host_if, peer_if) = (
            format!("bh{}", std::process::id() % 100000),
            format!("bp{}", std::process::id() % 100000),
        );
        let ip = |args: &str| {
            let ok = Command::new("ip")
                .args(args.split(' '))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip {args}");
        };
        ip(&format!("netns add {ns}"));
        ip(&format!("link add {host_if} type veth peer name {peer_if}"));
        ip(&format!("link set {peer_if} netns {ns}"));
        ip(&format!("addr add 198.51.100.1/30 dev {host_if}"));
        ip(&format!("link set {host_if} up"));
        ip(&format!("-n {ns} addr add 198.51.100.2/30 dev {peer_if}"));
        ip(&format!("-n {ns} link set {peer_if} up"));
        ip(&format!("-n {ns} link set lo up"));
        let server = Command::new("ip")
            .args(["netns", "exec", &ns, "/usr/bin/python3", "-c", PEER_SERVER])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        Some(NetPeer {
            ns,
            server: Some(server),
            addr: "198.51.100.2:7777".into(),
        })
    }
}

impl Drop for NetPeer {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        if !self.ns.is_empty() {
            // Deleting the namespace deletes the veth pair with it.
            let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        }
    }
}

#[test]
fn network_reaches_a_peer_through_pasta() {
    if !have_tool("network_reaches_a_peer_through_pasta", "pasta") {
        return;
    }
    let Some(peer) = NetPeer::start() else {
        skip(
            "network_reaches_a_peer_through_pasta",
            "needs root, or BERTH_TEST_NET_PEER from scripts/test-rootless",
        );
        assert!(
            std::env::var_os("BERTH_TEST_REQUIRE_TOOLS").is_none(),
            "no network peer in CI"
        );
        return;
    };
    let env = setup();
    let (host, port) = peer.addr.split_once(':').unwrap();
    // timeout: Debian 12's pasta can miss the peer's FIN after the app
    // half-closes first, leaving nc waiting; the answer is what counts.
    let script = format!("timeout 5 nc -w 3 {host} {port} </dev/null || echo unreachable");
    // Without network: nothing but lo.
    let o = sh(&env, &script);
    assert!(stdout(&o).contains("unreachable"), "{}", stdout(&o));
    // With it: the peer answers, through pasta; the sandbox sees only lo
    // and pasta's interface, and a resolv.conf pointing at pasta.
    let o = env
        .cmd()
        .args(["run", "--network", "bb:1", "--", "/bin/sh", "-c"])
        .arg(format!("{script}; cat /etc/resolv.conf; ls /sys/class/net"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&o);
    assert!(
        text.contains("peer-hello"),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("nameserver 169.254.1.1"), "{text}");
    assert!(text.contains("lo"), "{text}");
}

/// pasta processes started for this test's instances (their pid file is
/// under the test's runtime dir).
fn pastas_of(env: &Env) -> Vec<i32> {
    let dir = env.runtime_dir().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let c = String::from_utf8_lossy(&c);
        if c.starts_with("pasta\0") && c.contains(&dir) {
            out.push(pid);
        }
    }
    out
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting: {what}");
}

#[test]
fn pasta_ends_with_the_app() {
    if !have_tool("pasta_ends_with_the_app", "pasta") {
        return;
    }
    let env = setup();
    env.ok(&["run", "--network", "bb:1", "--", "/bin/sh", "-c", "true"]);
    wait_until("pasta to stop after a normal exit", || {
        pastas_of(&env).is_empty()
    });
    // The supervisor is killed: the next look at the instances stops the
    // pasta of the instance that ended meanwhile.
    let mut sup = env
        .cmd()
        .args(["run", "--network", "bb:1", "--", "/bin/sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let id = wait_for_instance(&env)["id"].as_str().unwrap().to_owned();
    assert!(!pastas_of(&env).is_empty(), "a pasta serves the instance");
    sup.kill().unwrap();
    sup.wait().unwrap();
    let _ = env.run(&["kill", &id]);
    wait_until("the instance to end and pasta to be stopped", || {
        env.ok(&["ps"]);
        pastas_of(&env).is_empty()
    });
}

/// An image of more layers than one mount(2) call can name (a runtime
/// split by package) runs: past a page of options, the overlay is
/// mounted layer by layer with the new mount API.
#[test]
fn an_image_of_many_layers_runs() {
    let env = setup();
    let base = busybox_img("x:1", vec![], &[]);
    let mut layers = base.layers.clone();
    for i in 0..70 {
        layers.push((
            layer(&[
                dir("layers"),
                file(&format!("layers/{i}"), format!("{i}\n").as_bytes()),
            ]),
            Comp::Gzip,
        ));
    }
    let img = Img::new(layers).named("test/many:1");
    let p = env.write("many.tar", &img.oci_archive());
    env.ok(&["import", p.to_str().unwrap()]);
    let home = env.home().display().to_string();
    assert!(
        71 * (home.len() + 80) > 4096,
        "the layer paths fit one mount(2) call; the test proves nothing"
    );
    assert_eq!(
        env.ok(&[
            "run",
            "test/many:1",
            "--",
            "/bin/cat",
            "/layers/0",
            "/layers/69"
        ]),
        "0\n69\n"
    );
}

/// The whole disk (`MAJ:MIN`) a path is on, as berth finds it.
fn disk_of(p: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(p).ok()?.dev();
    let (maj, min) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let real = std::fs::canonicalize(format!("/sys/dev/block/{maj}:{min}")).ok()?;
    if real.join("partition").exists() {
        return Some(
            std::fs::read_to_string(real.parent()?.join("dev"))
                .ok()?
                .trim()
                .to_owned(),
        );
    }
    Some(format!("{maj}:{min}"))
}

/// I/O weight and bandwidth limits land in the instance's cgroup (v2
/// io.weight / io.max, or v1 blkio), and what the host cannot enforce is
/// said; `berth identify` names the app of any process in the sandbox,
/// from its pid namespace or its cgroup.
#[test]
fn io_limits_and_identify() {
    let env = setup();
    // Another name of the same image, sorted first: the run goes by the
    // name it was given.
    env.ok(&["tag", "bb:1", "a/alias:1"]);
    // Flags that would do nothing, or stop the app, are refused.
    let err = env.fails(&["run", "--io-read", "0", "bb:1", "--", "/bin/true"]);
    assert!(err.contains("--io-read 0"), "{err}");
    let err = env.fails(&["run", "--dns", "10.0.0.53", "bb:1", "--", "/bin/true"]);
    assert!(err.contains("--dns needs a network"), "{err}");
    let child = env
        .cmd()
        .args([
            "run",
            "--io-read",
            "1M",
            "--io-write",
            "2M",
            "--io-weight",
            "300",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            "sleep 30 & wait",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let id = inst["id"].as_str().unwrap().to_owned();
    let pid = inst["pid"].as_i64().unwrap();

    // identify: the sandbox's pid 1 and a process below it.
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["identify", &pid.to_string(), "--json"])).unwrap();
    assert_eq!(v["app"], "bb:1", "{v}");
    assert_eq!(v["instance"], id.as_str(), "{v}");
    let mut below = None;
    for _ in 0..100 {
        below = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_owned));
        if below.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let below = below.expect("the sandbox runs a child");
    let text = env.ok(&["identify", &below]);
    assert!(text.contains("bb:1") && text.contains(&id), "{text}");
    let o = env.run(&["identify", &std::process::id().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not in a berth sandbox"));
    let o = env.run(&["identify", "999999999"]);
    assert!(!o.status.success());
    if let Some(cg) = inst["cgroup"].as_str() {
        assert!(
            cg.rsplit('/').next().unwrap() == format!("app-berth-bb-{id}.scope"),
            "{cg}"
        );
        assert_eq!(v["cgroup"], cg, "{v}");
    }

    // The limits, as the kernel has them.
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let disk = disk_of(&env.home()).expect("the store is on a disk");
    let mut applied = Vec::new();
    for l in host_view.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
        // Only the instance's own cgroup (rootless, it may have none).
        if !path.contains("app-berth-") {
            continue;
        }
        if ctrl.split(',').any(|c| c == "blkio") {
            let dir = format!("/sys/fs/cgroup/blkio{path}");
            let r = std::fs::read_to_string(format!("{dir}/blkio.throttle.read_bps_device"));
            let w = std::fs::read_to_string(format!("{dir}/blkio.throttle.write_bps_device"));
            if let (Ok(r), Ok(w)) = (r, w) {
                assert!(r.contains(&format!("{disk} 1048576")), "{r}");
                assert!(w.contains(&format!("{disk} 2097152")), "{w}");
                applied.push("blkio");
            }
        } else if ctrl.is_empty() {
            let dir = format!("/sys/fs/cgroup{path}");
            if let Ok(m) = std::fs::read_to_string(format!("{dir}/io.max")) {
                assert!(
                    m.contains(&format!("{disk} rbps=1048576 wbps=2097152")),
                    "{m}"
                );
                applied.push("io.max");
            }
        }
    }
    // Killed while a `berth enter` runs in it: its cgroup still goes.
    let mut entered = env
        .cmd()
        .args(["enter", &id, "--", "/bin/sleep", "5"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["kill", &id]);
    let out = child.wait_with_output().unwrap();
    let _ = entered.wait();
    for l in host_view.lines() {
        let path = l.splitn(3, ':').nth(2).unwrap_or_default();
        if !path.contains("app-berth-") {
            continue;
        }
        for mount in ["", "/unified", "/systemd", "/freezer", "/pids", "/memory"] {
            let dir = format!("/sys/fs/cgroup{mount}{path}");
            assert!(!std::path::Path::new(&dir).exists(), "{dir} is left");
        }
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if is_root() {
        assert!(!applied.is_empty(), "no I/O limit in {host_view}\n{err}");
    } else if applied.is_empty() {
        // Rootless without the io controller delegated (or no cgroup at
        // all): said, and run.
        assert!(
            err.contains("not enforced") || err.contains("limits and the freezer are unavailable"),
            "{err}"
        );
    }
    // A weight the scheduler cannot take is said, never silently dropped.
    let weighted = host_view.lines().any(|l| {
        let p = l.rsplit(':').next().unwrap_or_default();
        ["blkio/", ""].iter().any(|h| {
            ["blkio.weight", "io.weight", "io.bfq.weight"]
                .iter()
                .any(|f| std::path::Path::new(&format!("/sys/fs/cgroup/{h}{p}/{f}")).exists())
        })
    });
    if !weighted {
        assert!(
            err.contains("not enforced") || err.contains("limits and the freezer are unavailable"),
            "{err}"
        );
    }
}

/// `--lan-only` (the `share=lan` permission): the local network answers,
/// a public address is unreachable, and the app cannot route around it;
/// `--dns` gives the sandbox its own resolver. As root the test builds a
/// LAN host and a "public" host in a network namespace of its own behind
/// a veth pair; rootless, the routes are checked from inside.
#[test]
fn lan_only_reaches_the_lan_but_not_the_internet() {
    const T: &str = "lan_only_reaches_the_lan_but_not_the_internet";
    if !have_tool(T, "pasta") || !have_tool(T, "ip") {
        return;
    }
    let env = setup();
    let probe = "busybox ip route; cat /etc/resolv.conf; busybox ip route add default via 169.254.1.1 2>&1 || true; \
                 for a in 10.231.7.2 198.51.100.7; do echo | nc -w 3 $a 8080 >/dev/null 2>&1 && echo \"$a open\" || echo \"$a closed\"; done";
    let lan = |mode: &str| {
        env.ok(&[
            "run",
            mode,
            "--dns",
            "10.0.0.53",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            probe,
        ])
    };
    // A LAN host (10.231.7.2) and a "public" one (198.51.100.7, TEST-NET-2),
    // both a listener in a namespace the test owns.
    let ns = format!("berth-lan-{}", std::process::id());
    let mut server = None;
    if is_root() {
        let script = format!(
            "ip netns add {ns} && ip link add bl{p} type veth peer name bn{p} netns {ns} && \
             ip addr add 10.231.7.1/24 dev bl{p} && ip link set bl{p} up && \
             ip netns exec {ns} sh -c 'ip addr add 10.231.7.2/24 dev bn{p}; ip addr add 198.51.100.7/32 dev bn{p}; \
             ip link set bn{p} up; ip link set lo up; ip route add default via 10.231.7.1' && \
             ip route add 198.51.100.7/32 via 10.231.7.2",
            p = std::process::id() % 100_000
        );
        let st = Command::new("sh").args(["-c", &script]).status().unwrap();
        assert!(st.success(), "setting up the test network");
        server = Some(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "python3",
                    "-m",
                    "http.server",
                    "8080",
                    "--bind",
                    "0.0.0.0",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(700));
    } else {
        skip(
            T,
            "rootless: no test network can be built; the routes are checked instead",
        );
    }
    let out = lan("--lan-only");
    let full = lan("--network");
    if let Some(mut s) = server {
        let _ = s.kill();
        let _ = s.wait();
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        let _ = Command::new("ip")
            .args([
                "link",
                "del",
                &format!("bl{}", std::process::id() % 100_000),
            ])
            .status();
        let _ = Command::new("ip")
            .args(["route", "del", "198.51.100.7/32"])
            .status();
        assert!(out.contains("10.231.7.2 open"), "{out}");
        assert!(
            full.contains("10.231.7.2 open") && full.contains("198.51.100.7 open"),
            "{full}"
        );
    }
    assert!(out.contains("198.51.100.7 closed"), "{out}");
    assert!(out.contains("unreachable default"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("default via")), "{out}");
    assert!(out.contains("10.0.0.0/8 via"), "{out}");
    // The cloud's metadata service is link-local but no LAN device.
    assert!(out.contains("unreachable 169.254.169.254"), "{out}");
    // The app has no capability to route around it.
    assert!(
        out.contains("Operation not permitted") || out.contains("RTNETLINK"),
        "{out}"
    );
    assert!(out.contains("nameserver 10.0.0.53"), "{out}");
    assert!(full.lines().any(|l| l.starts_with("default via")), "{full}");
}

/// `--tun` (the `device=tun` permission): the app makes its own tun
/// device and routes in its own network namespace; other instances and
/// the host do not see them, and without it there is no tun and no
/// capability to route.
#[test]
fn a_tun_device_and_its_routes_stay_in_the_app() {
    const T: &str = "a_tun_device_and_its_routes_stay_in_the_app";
    if !have_tool(T, "gcc") || !have_tool(T, "pasta") {
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        skip(T, "this kernel has no /dev/net/tun");
        return;
    }
    let env = setup();
    // What a VPN client does first: a persistent tun0.
    let src = env.write(
        "tunup.c",
        br#"#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
int main(void) {
  int fd = open("/dev/net/tun", O_RDWR);
  if (fd < 0) { perror("open /dev/net/tun"); return 1; }
  struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI; strcpy(ifr.ifr_name, "tun0");
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); return 1; }
  if (ioctl(fd, TUNSETPERSIST, 1) < 0) { perror("TUNSETPERSIST"); return 1; }
  return 0;
}
"#,
    );
    let bin = env.path("tunup");
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "building the tun helper");
    let bind = format!("{}:/tunup:ro", bin.display());
    let vpn = "/tunup && ip link set tun0 up && ip addr add 10.99.0.1/24 dev tun0 && \
               ip route add 10.98.0.0/16 dev tun0 && ip route";
    let mut app = env
        .cmd()
        .args([
            "run",
            "--tun",
            "--network",
            "--bind",
            &bind,
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
        ])
        .arg(format!("{} && sleep 30", vpn.replace("ip ", "busybox ip ")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    // The route exists in the app's namespace while another instance and
    // the host know nothing of it.
    let mut seen = String::new();
    for _ in 0..100 {
        let o = env.run(&[
            "enter",
            inst["id"].as_str().unwrap(),
            "--",
            "busybox",
            "ip",
            "route",
        ]);
        seen = String::from_utf8_lossy(&o.stdout).into_owned();
        if seen.contains("10.98.0.0/16 dev tun0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.contains("10.98.0.0/16 dev tun0"), "{seen}");
    let other = env.ok(&["run", "--network", "bb:1", "--", "busybox", "ip", "route"]);
    assert!(
        !other.contains("10.98.") && !other.contains("tun0"),
        "{other}"
    );
    let host = Command::new("ip").args(["route"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&host.stdout).contains("10.98.0.0/16"));
    env.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = app.wait();
    // Without it: no tun device, no capability to route.
    let o = env.run(&[
        "run",
        "--network",
        "--bind",
        &bind,
        "bb:1",
        "--",
        "/bin/sh",
        "-c",
        "/tunup; busybox ip route add 10.98.0.0/16 dev lo",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("open /dev/net/tun"), "{err}");
    assert!(
        err.contains("Operation not permitted") || err.contains("RTNETLINK"),
        "{err}"
    );
    // Never beside the LAN-only routes it could undo.
    let o = env.run(&["run", "--tun", "--lan-only", "bb:1", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
}
