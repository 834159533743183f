//! The session bus through the per-instance filtering proxy: a granted
//! name is reachable, an ungranted one is not. Real dbus-daemon and
//! xdg-dbus-proxy; the client is Debian's dbus-send, copied with its
//! libraries from the host.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use common::*;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Echo;

#[zbus::interface(name = "org.berth.test.Echo")]
impl Echo {
    fn ping(&self) -> String {
        "pong".into()
    }
}

fn call(env: &Env, bus: &str, app: &str, dest: &str) -> std::process::Output {
    let script = format!(
        "dbus-send --session --print-reply --dest={dest} /org/berth/test org.berth.test.Echo.Ping"
    );
    env.cmd()
        .args(["run", app, "--", &script])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn only_granted_names_are_reachable() {
    for t in ["dbus-daemon", "xdg-dbus-proxy", "dbus-send", "ldd"] {
        if !have_tool("only_granted_names_are_reachable", t) {
            return;
        }
    }
    let env = Env::new();
    let mut daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", env.path("bus").display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut address = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let _daemon = Daemon(daemon);
    let address = address.trim().to_owned();
    let _granted = zbus::blocking::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.berth.test.Granted")
        .unwrap()
        .serve_at("/org/berth/test", Echo)
        .unwrap()
        .build()
        .unwrap();
    let _hidden = zbus::blocking::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.berth.test.Hidden")
        .unwrap()
        .serve_at("/org/berth/test", Echo)
        .unwrap()
        .build()
        .unwrap();
    install_host_app(
        &env,
        "org.berth.test.Client",
        "/usr/bin/dbus-send",
        "/bin/sh -c",
        "talk-name=org.berth.test.Granted",
        vec![],
    );
    let o = call(
        &env,
        &address,
        "org.berth.test.Client",
        "org.berth.test.Granted",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && text.contains("pong"),
        "granted name unreachable: {text}"
    );
    let o = call(
        &env,
        &address,
        "org.berth.test.Client",
        "org.berth.test.Hidden",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !o.status.success() && !text.contains("pong"),
        "ungranted name reachable: {text}"
    );
    // No proxy left behind.
    let ps = Command::new("pgrep")
        .args([
            "-f",
            &format!("xdg-dbus-proxy.*{}", env.dir.path().display()),
        ])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "a proxy outlived its app");
}
