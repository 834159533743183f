//! Instance scopes through systemd's D-Bus API (`StartTransientUnit`), as
//! Flatpak and Podman do on systemd hosts: there systemd owns the cgroup
//! tree, and desktops find an app by its scope. zbus's blocking API is used
//! only from berth's supervising process, after the sandbox is cloned.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zbus::zvariant::Value;

use crate::cgroup::{Cgroup, parse_mountinfo, parse_proc_cgroup};
use crate::plan::Limits;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bus {
    System,
    Session,
    /// An explicit D-Bus address (`BERTH_SYSTEMD_BUS`).
    Address(String),
}

/// Which systemd manager to ask, if one runs. `$BERTH_SYSTEMD_BUS` names a
/// bus address to use (empty: never use systemd); otherwise the system
/// manager for root and the user manager for everyone else, when the host
/// was booted with systemd.
pub fn detect() -> Option<Bus> {
    if let Ok(a) = std::env::var("BERTH_SYSTEMD_BUS") {
        return (!a.is_empty()).then_some(Bus::Address(a));
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    if rustix::process::geteuid().is_root() {
        return Some(Bus::System);
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)?;
    runtime
        .join("systemd/private")
        .exists()
        .then_some(Bus::Session)
}

fn connect(bus: &Bus) -> zbus::Result<zbus::blocking::Connection> {
    match bus {
        Bus::System => zbus::blocking::Connection::system(),
        Bus::Session => zbus::blocking::Connection::session(),
        Bus::Address(a) => zbus::blocking::connection::Builder::address(a.as_str())?.build(),
    }
}

/// The unit properties for a scope holding `pid` with `limits`.
pub fn scope_properties(
    name: &str,
    pid: u32,
    limits: &Limits,
) -> Vec<(&'static str, Value<'static>)> {
    let mut p: Vec<(&'static str, Value<'static>)> = vec![
        ("Description", Value::from(format!("berth instance {name}"))),
        ("PIDs", Value::from(vec![pid])),
        // Let berth freeze the scope (cgroup.freeze) and clean up on exit.
        ("Delegate", Value::from(true)),
        ("CollectMode", Value::from("inactive-or-failed")),
    ];
    if let Some(m) = limits.memory {
        p.push(("MemoryMax", Value::from(m)));
    }
    if let Some(w) = limits.cpu_weight {
        p.push(("CPUWeight", Value::from(w)));
    }
    if let Some(t) = limits.pids {
        p.push(("TasksMax", Value::from(t)));
    }
    if let Some(w) = limits.io_weight {
        p.push(("IOWeight", Value::from(w.clamp(1, 10_000))));
    }
    for (key, v) in [
        ("IOReadBandwidthMax", limits.io_read),
        ("IOWriteBandwidthMax", limits.io_write),
    ] {
        if let Some(v) = v {
            let per_disk: Vec<(String, u64)> = limits
                .io_devices
                .iter()
                .map(|d| (format!("/dev/block/{d}"), v))
                .collect();
            p.push((key, Value::from(per_disk)));
        }
    }
    p
}

/// Ask systemd for a transient scope `name` holding `pid`, wait until the
/// process is in it, and describe the resulting cgroup.
pub fn start_scope(bus: &Bus, name: &str, pid: u32, limits: &Limits) -> Result<Cgroup, String> {
    let conn = connect(bus).map_err(|e| format!("connecting to systemd: {e}"))?;
    let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
    conn.call_method(
        Some("org.freedesktop.systemd1"),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        "StartTransientUnit",
        &(name, "fail", scope_properties(name, pid, limits), aux),
    )
    .map_err(|e| format!("systemd refused the scope {name}: {e}"))?;
    // The job runs asynchronously: wait for the move to show.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let own = crate::sys::read_proc(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let (v2, v1) = parse_proc_cgroup(&own);
        let path = v2.filter(|p| p.ends_with(&format!("/{name}"))).or_else(|| {
            v1.get("name=systemd")
                .filter(|p| p.ends_with(&format!("/{name}")))
                .cloned()
        });
        if let Some(path) = path {
            let layout =
                parse_mountinfo(&crate::sys::read_proc("/proc/self/mountinfo").unwrap_or_default());
            let v2dir = layout.v2.map(|m| m.join(path.trim_start_matches('/')));
            return Ok(Cgroup {
                name: name.to_owned(),
                dirs: v2dir.iter().cloned().collect(),
                v2: v2dir,
                display: path,
                systemd: true,
                notes: Vec::new(),
            });
        }
        if Instant::now() > deadline {
            return Err(format!("systemd did not move the instance into {name}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_carry_pid_and_limits() {
        let l = Limits {
            memory: Some(64 << 20),
            cpu_weight: Some(200),
            pids: Some(50),
            io_weight: Some(300),
            io_read: Some(1 << 20),
            io_write: None,
            io_devices: vec!["254:0".into()],
        };
        let p = scope_properties("app-berth-x-1.scope", 42, &l);
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("PIDs"), Some(Value::from(vec![42u32])));
        assert_eq!(get("MemoryMax"), Some(Value::from(64u64 << 20)));
        assert_eq!(get("CPUWeight"), Some(Value::from(200u64)));
        assert_eq!(get("TasksMax"), Some(Value::from(50u64)));
        assert_eq!(get("Delegate"), Some(Value::from(true)));
        assert_eq!(get("IOWeight"), Some(Value::from(300u64)));
        assert_eq!(
            get("IOReadBandwidthMax"),
            Some(Value::from(vec![(
                "/dev/block/254:0".to_owned(),
                1u64 << 20
            )]))
        );
        assert_eq!(get("IOWriteBandwidthMax"), None);
        let none = scope_properties("s", 1, &Limits::default());
        assert!(!none.iter().any(|(n, _)| *n == "MemoryMax"));
    }
}
