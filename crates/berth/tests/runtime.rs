//! A Debian runtime built with mmdebstrap from Debian packages (cached, see
//! `common::debian_rootfs`; CI's root pass builds it, the rootless pass
//! reads it), carrying the unmodified x11-apps, installed as an app: xlogo
//! opens a window on Xvfb.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn debian_runtime_app_opens_a_window() {
    for t in ["Xvfb", "xwd", "xwininfo", "xauth"] {
        if !have_tool("debian_runtime_app_opens_a_window", t) {
            return;
        }
    }
    let Some(tarball) = debian_rootfs(
        "debian_runtime_app_opens_a_window",
        "x11-apps",
        &["x11-apps"],
    ) else {
        return;
    };
    let env = Env::new();
    let mut img = Img::new(vec![(std::fs::read(&tarball).unwrap(), Comp::None)])
        .named("debian/x11-apps:bookworm");
    for (k, v) in [
        ("org.berth.app.id", "org.debian.Xlogo"),
        ("org.berth.app.name", "xlogo (Debian)"),
        ("org.berth.app.command", "/usr/bin/xlogo"),
        ("org.berth.app.permissions", "socket=x11"),
    ] {
        img.labels.insert(k.into(), v.into());
    }
    let archive = env.write("runtime.tar", &img.oci_archive());
    drop(img);
    let o = env
        .cmd()
        .args(["install", "--yes", archive.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let x = start_xvfb(env.dir.path());
    let mut app = env
        .cmd()
        .args(["run", "org.debian.Xlogo"])
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_window(&x, &mut app, "xlogo", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    assert!(distinct_pixels(&x) >= 2, "the screenshot is blank");
    let inst = wait_for_instance(&env);
    env.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = app.wait();
}
