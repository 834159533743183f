//! A Debian runtime built with mmdebstrap from Debian packages (cached in
//! target/), carrying the unmodified x11-apps, installed as an app: xlogo
//! opens a window on Xvfb. Root only (mmdebstrap needs it here); the
//! rootless pass covers the same path with host binaries (display.rs).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The runtime tarball, built once and kept between runs.
fn runtime_tarball() -> Option<PathBuf> {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bookworm-x11-apps.tar");
    if cache.exists() {
        return Some(cache);
    }
    let partial = cache.with_file_name("partial-bookworm-x11-apps.tar");
    let o = Command::new("mmdebstrap")
        .args(["--variant=minbase", "--include=x11-apps", "bookworm"])
        .arg(&partial)
        .output()
        .unwrap();
    if !o.status.success() {
        // No Debian mirror reachable: say so; CI requires it to work.
        assert!(
            std::env::var("BERTH_TEST_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "mmdebstrap failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        skip(
            "debian_runtime_app_opens_a_window",
            "mmdebstrap could not build the runtime",
        );
        return None;
    }
    std::fs::rename(&partial, &cache).unwrap();
    Some(cache)
}

#[test]
fn debian_runtime_app_opens_a_window() {
    if !is_root() {
        skip(
            "debian_runtime_app_opens_a_window",
            "needs root to build the runtime with mmdebstrap",
        );
        return;
    }
    for t in ["mmdebstrap", "Xvfb", "xwd", "xwininfo", "xauth"] {
        if !have_tool("debian_runtime_app_opens_a_window", t) {
            return;
        }
    }
    let Some(tarball) = runtime_tarball() else {
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
