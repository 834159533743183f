//! Real display tests: an unmodified Debian X11 app (xlogo, with the
//! libraries it links, copied from the host) opens a window on Xvfb only
//! when granted socket=x11, through berth's filtered Xauthority.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

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
    wait_for_window(&x, &mut app, "xlogo", Duration::from_secs(15));
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
