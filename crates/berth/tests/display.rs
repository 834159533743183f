//! Real display tests: an unmodified Debian X11 app (xlogo, with the
//! libraries it links, copied from the host) opens a window on Xvfb only
//! when granted socket=x11, through berth's filtered Xauthority.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Xvfb {
    child: Child,
    display: u32,
    auth: PathBuf,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_xvfb(dir: &Path) -> Xvfb {
    let display = 80 + std::process::id() % 100;
    let auth = dir.join("Xauthority");
    // A cookie the server demands: without it no client gets in.
    let cookie: String = (0..16)
        .map(|i| format!("{:02x}", (i * 37 + display) % 256))
        .collect();
    let st = Command::new("xauth")
        .arg("-f")
        .arg(&auth)
        .args(["add", &format!(":{display}"), ".", &cookie])
        .status()
        .unwrap();
    assert!(st.success());
    // An unrelated cookie that must not reach the app.
    let _ = Command::new("xauth")
        .arg("-f")
        .arg(&auth)
        .args(["add", ":7", ".", "00112233445566778899aabbccddeeff"])
        .status();
    let child = Command::new("Xvfb")
        .arg(format!(":{display}"))
        .args(["-screen", "0", "320x240x24", "-nolisten", "tcp", "-auth"])
        .arg(&auth)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Xvfb {
        child,
        display,
        auth,
    }
}

/// Distinct pixel values in an XWD screenshot of the root window.
fn distinct_pixels(x: &Xvfb) -> usize {
    let o = Command::new("xwd")
        .args(["-root", "-silent", "-display", &format!(":{}", x.display)])
        .env("XAUTHORITY", &x.auth)
        .output()
        .unwrap();
    assert!(o.status.success(), "xwd failed");
    let d = &o.stdout;
    let be = |i: usize| {
        u32::from_be_bytes([d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]]) as usize
    };
    let (header, ncolors, bytes_per_line, height, bpp) = (be(0), be(19), be(12), be(5), be(11));
    let start = header + ncolors * 12;
    let data = &d[start..(start + bytes_per_line * height).min(d.len())];
    let px = (bpp / 8).max(1);
    let mut seen = std::collections::HashSet::new();
    for chunk in data.chunks(px) {
        seen.insert(chunk.to_vec());
        if seen.len() > 16 {
            break;
        }
    }
    seen.len()
}

fn window_names(x: &Xvfb) -> String {
    let o = Command::new("xwininfo")
        .args(["-root", "-tree", "-display", &format!(":{}", x.display)])
        .env("XAUTHORITY", &x.auth)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn x11_app_opens_a_window_only_when_granted() {
    for t in ["Xvfb", "xlogo", "xwd", "xwininfo", "xauth", "ldd"] {
        if !have_tool("x11_app_opens_a_window_only_when_granted", t) {
            return;
        }
    }
    let env = Env::new();
    let x = start_xvfb(env.dir.path());
    assert!(distinct_pixels(&x) <= 1, "the screen starts blank");
    install_host_app(
        &env,
        "org.berth.test.Xlogo",
        "/usr/bin/xlogo",
        "/usr/bin/xlogo",
        "socket=x11",
        vec![],
    );
    install_host_app(
        &env,
        "org.berth.test.NoDisplay",
        "/usr/bin/xlogo",
        "/usr/bin/xlogo",
        "",
        vec![],
    );

    let mut app = env
        .cmd()
        .args(["run", "org.berth.test.Xlogo"])
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !window_names(&x).contains("xlogo") {
        if let Some(st) = app.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(app.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("xlogo exited ({st}) without a window: {err}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no xlogo window appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let colors = distinct_pixels(&x);
    assert!(
        colors >= 2,
        "the screenshot is blank ({colors} distinct pixel values)"
    );
    let inst = wait_for_instance(&env);
    env.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = app.wait();

    // Without the grant the same server refuses: no socket, no cookie.
    let o = env
        .cmd()
        .args(["run", "org.berth.test.NoDisplay"])
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "xlogo ran without socket=x11");
    assert!(
        err.contains("Can't open display") || err.contains("cannot open display"),
        "{err}"
    );
}
