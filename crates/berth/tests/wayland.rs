//! Wayland: under weston's headless backend, Debian's weston-simple-shm
//! (with its libraries, from the host) connects and keeps drawing only
//! when granted socket=wayland.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Weston(Child);

impl Drop for Weston {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn wayland_client_connects_only_when_granted() {
    for t in ["weston", "weston-simple-shm", "ldd"] {
        if !have_tool("wayland_client_connects_only_when_granted", t) {
            return;
        }
    }
    let env = Env::new();
    let runtime = env.path("xdg-run");
    std::fs::create_dir(&runtime).unwrap();
    rustix::fs::chmod(&runtime, rustix::fs::Mode::from_raw_mode(0o700)).unwrap();
    let _weston = Weston(
        Command::new("weston")
            .args([
                "--backend=headless-backend.so",
                "--socket=wayland-berth",
                "--idle-time=0",
            ])
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sock: PathBuf = runtime.join("wayland-berth");
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "weston did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    install_host_app(
        &env,
        "org.berth.test.Shm",
        "/usr/bin/weston-simple-shm",
        "/usr/bin/weston-simple-shm",
        "socket=wayland",
        vec![],
    );
    install_host_app(
        &env,
        "org.berth.test.Blind",
        "/usr/bin/weston-simple-shm",
        "/usr/bin/weston-simple-shm",
        "",
        vec![],
    );
    let start = |id: &str| {
        env.cmd()
            .args(["run", id])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("WAYLAND_DISPLAY", "wayland-berth")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Granted: it connects and keeps drawing until stopped.
    let mut app = start("org.berth.test.Shm");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        app.try_wait().unwrap().is_none(),
        "weston-simple-shm gave up despite the grant"
    );
    let inst = wait_for_instance(&env);
    env.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = app.wait();
    // Not granted: no display to connect to.
    let o = start("org.berth.test.Blind").wait_with_output().unwrap();
    assert!(!o.status.success(), "connected without socket=wayland");
}
