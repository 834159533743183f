//! Scopes through systemd's D-Bus API, against a stand-in for
//! org.freedesktop.systemd1 on a private dbus-daemon (CI has no systemd).
//! The stand-in does what systemd does with a transient scope: create the
//! cgroup and move the listed PIDs into it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

type Calls = Arc<Mutex<Vec<(String, Vec<(String, OwnedValue)>)>>>;

struct MockSystemd {
    calls: Calls,
    slice: PathBuf,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl MockSystemd {
    fn start_transient_unit(
        &self,
        name: String,
        _mode: String,
        props: Vec<(String, OwnedValue)>,
        _aux: Vec<(String, Vec<(String, OwnedValue)>)>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let pids: Vec<u32> = props
            .iter()
            .find(|(k, _)| k == "PIDs")
            .and_then(|(_, v)| Vec::<u32>::try_from(v.try_clone().ok()?).ok())
            .unwrap_or_default();
        let dir = self.slice.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        for p in pids {
            std::fs::write(dir.join("cgroup.procs"), p.to_string())
                .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        }
        let copied = props
            .iter()
            .map(|(k, v)| (k.clone(), v.try_clone().unwrap()))
            .collect();
        self.calls.lock().unwrap().push((name, copied));
        Ok(OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/1").unwrap())
    }
}

struct Bus {
    daemon: Child,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn private_bus(dir: &Path) -> Bus {
    let mut daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", dir.join("bus").display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Bus {
        daemon,
        address: line.trim().to_owned(),
    }
}

fn v2_mount() -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mount = left.split(' ').nth(4)?;
            right.starts_with("cgroup2 ").then(|| PathBuf::from(mount))
        })
}

fn setup() -> Env {
    let env = Env::new();
    busybox_image(&env, "bb:1", vec![]);
    env
}

#[test]
fn scope_created_through_systemd() {
    if !have_tool("scope_created_through_systemd", "dbus-daemon") {
        return;
    }
    let Some(v2) = v2_mount().filter(|_| is_root()) else {
        skip(
            "scope_created_through_systemd",
            "needs root and cgroup v2 to stand in for systemd",
        );
        return;
    };
    let env = setup();
    let bus = private_bus(env.dir.path());
    let slice = v2.join(format!("berth-mock-{}.slice", std::process::id()));
    let calls: Calls = Arc::default();
    let _server = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at(
            "/org/freedesktop/systemd1",
            MockSystemd {
                calls: calls.clone(),
                slice: slice.clone(),
            },
        )
        .unwrap()
        .build()
        .unwrap();

    let mut child = env
        .cmd()
        .env("BERTH_SYSTEMD_BUS", &bus.address)
        .args([
            "run",
            "--memory",
            "64M",
            "--pids",
            "40",
            "bb:1",
            "--",
            "/bin/sleep",
            "30",
        ])
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let id = inst["id"].as_str().unwrap().to_owned();
    let unit = format!("app-berth-bb-{id}.scope");
    let cg = inst["cgroup"].as_str().unwrap();
    assert!(cg.ends_with(&unit) && cg.contains("berth-mock-"), "{cg}");
    let pid = inst["pid"].as_i64().unwrap();
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .contains(&unit)
    );

    {
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let (name, props) = &calls[0];
        assert_eq!(name, &unit);
        let get = |k: &str| {
            props
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.try_clone().unwrap())
        };
        assert_eq!(
            Vec::<u32>::try_from(get("PIDs").unwrap()).unwrap(),
            vec![pid as u32]
        );
        assert_eq!(u64::try_from(get("MemoryMax").unwrap()).unwrap(), 64 << 20);
        assert_eq!(u64::try_from(get("TasksMax").unwrap()).unwrap(), 40);
        assert!(bool::try_from(get("Delegate").unwrap()).unwrap());
    }
    // The freezer works on the delegated scope.
    env.ok(&["pause", &id]);
    assert_eq!(
        std::fs::read_to_string(slice.join(&unit).join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "1"
    );
    env.ok(&["resume", &id]);
    env.ok(&["kill", &id]);
    let _ = child.wait();
    // systemd (here: the test) owns the scope; berth leaves it alone.
    let _ = std::fs::remove_dir(slice.join(&unit));
    let _ = std::fs::remove_dir(&slice);
}

#[test]
fn systemd_unreachable_falls_back_with_a_warning() {
    if !have_tool(
        "systemd_unreachable_falls_back_with_a_warning",
        "dbus-daemon",
    ) {
        return;
    }
    let env = setup();
    // A bus where nobody owns org.freedesktop.systemd1.
    let bus = private_bus(env.dir.path());
    let o = env
        .cmd()
        .env("BERTH_SYSTEMD_BUS", &bus.address)
        .args(["run", "bb:1", "--", "/bin/sh", "-c", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: resource limits and the freezer are unavailable"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Asking for limits is an error then, and the sandbox is not left running.
    let o = env
        .cmd()
        .env("BERTH_SYSTEMD_BUS", &bus.address)
        .args([
            "run", "--memory", "64M", "bb:1", "--", "/bin/sh", "-c", "true",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot apply resource limits") && err.contains("systemd"),
        "{err}"
    );
    assert_eq!(env.ok(&["ps", "--json"]).trim(), "[]");
}
