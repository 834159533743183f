//! The installer and the permission manager, run for real: under Xvfb with
//! a session bus and the accessibility bus, read and driven through the
//! accessibility tree (tests/a11y.py, python3-pyatspi) as a user with a
//! screen reader would, and checked with the `berth` CLI.
//! `BERTH_SCREENSHOTS=DIR` keeps a screenshot of each window there.
#![allow(clippy::unwrap_used)]

#[path = "../../berth/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const ID: &str = "org.example.Editor";

fn gui_bin() -> PathBuf {
    std::env::var_os("BERTH_GUI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth-gui")))
}

fn driver() -> PathBuf {
    // CI copies the tests elsewhere to run them rootless; the script goes
    // with them.
    std::env::var_os("BERTH_A11Y_DRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a11y.py"))
}

/// A desktop session of its own: an X server, a session bus (which starts
/// the accessibility bus on demand), and a store.
struct Desktop {
    env: Env,
    x: Xvfb,
    bus: Child,
    bus_addr: String,
    /// Last: released once the session is gone.
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// One window at a time: on two cores, parallel GTK apps and their
/// accessibility buses starve each other's replies.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn desktop(test: &str) -> Option<Desktop> {
    for tool in [
        "Xvfb",
        "xauth",
        "dbus-daemon",
        "/usr/bin/python3",
        "import",
        "xdg-mime",
        "gio",
    ] {
        if !have_tool(test, tool) {
            return None;
        }
    }
    for (path, pkg) in [
        ("/usr/lib/python3/dist-packages/pyatspi", "python3-pyatspi"),
        ("/usr/libexec/at-spi-bus-launcher", "at-spi2-core"),
    ] {
        if !Path::new(path).exists() {
            assert!(
                std::env::var("BERTH_TEST_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "{pkg} is required in CI but missing"
            );
            skip(test, &format!("{pkg} is not installed"));
            return None;
        }
    }
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    let x = start_xvfb_sized(env.dir.path(), "1024x768x24");
    let run = env.path("xdg-run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let sock = env.path("bus");
    std::fs::create_dir_all(env.path("home")).unwrap();
    // The bus starts the accessibility bus launcher with its own
    // environment: this session's, so each test has its own a11y bus.
    let bus = session_env(&mut Command::new("dbus-daemon"), &env, &x)
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address=unix:path={}", sock.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "dbus-daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Desktop {
        _turn: turn,
        bus_addr: format!("unix:path={}", sock.display()),
        env,
        x,
        bus,
    })
}

fn session_env<'a>(c: &'a mut Command, env: &Env, x: &Xvfb) -> &'a mut Command {
    c.env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .env("XDG_RUNTIME_DIR", env.path("xdg-run"))
        .env("HOME", env.path("home"))
        .env("XDG_DATA_HOME", env.path("home/.local/share"))
        .env("XDG_CONFIG_HOME", env.path("home/.config"))
        .env("XDG_CACHE_HOME", env.path("home/.cache"))
}

impl Desktop {
    /// A program with the session's environment and the test's store.
    fn cmd(&self, program: &Path) -> Command {
        let mut c = self.env.cmd_raw(&program.to_string_lossy());
        session_env(&mut c, &self.env, &self.x)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_addr)
            .env("GDK_BACKEND", "x11")
            .env("GSK_RENDERER", "cairo")
            .env("GTK_A11Y", "atspi")
            .env("GSETTINGS_BACKEND", "memory")
            .env("NO_AT_BRIDGE", "0")
            .env("BERTH_BIN", berth_bin());
        c
    }

    fn gui(&self, args: &[&str]) -> Child {
        std::fs::create_dir_all(self.env.path("home")).unwrap();
        self.cmd(&gui_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn a11y(&self, pid: u32, args: &[&str]) -> Output {
        self.cmd(Path::new("/usr/bin/python3"))
            .arg(driver())
            .arg(pid.to_string())
            .args(args)
            .output()
            .unwrap()
    }

    /// Run a driver step; on failure, the window's own output says why.
    fn step(&self, app: &mut Child, args: &[&str]) -> String {
        let o = self.a11y(app.id(), args);
        if !o.status.success() {
            let _ = app.kill();
            let out = app.wait_with_output_ref();
            panic!(
                "a11y {args:?} failed: {}\nberth-gui said: {out}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// Every name the window shows.
    fn names(&self, app: &mut Child) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&self.step(app, &["names"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn screenshot(&self, name: &str) {
        // The window is drawn, not blank.
        assert!(distinct_pixels(&self.x) > 8, "{name}: the screen is blank");
        let Some(dir) = std::env::var_os("BERTH_SCREENSHOTS").filter(|d| !d.is_empty()) else {
            return;
        };
        let out = Path::new(&dir).join(format!("{name}.png"));
        let st = self
            .cmd(Path::new("import"))
            .args(["-window", "root"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success(), "import failed for {name}");
    }

    fn berth_json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.env.ok(args)).unwrap()
    }
}

trait Reap {
    fn wait_with_output_ref(&mut self) -> String;
}

impl Reap for Child {
    /// What a window that was killed or ended printed.
    fn wait_with_output_ref(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut o) = self.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut s);
        }
        if let Some(mut e) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        let _ = self.wait();
        s
    }
}

/// Wait for the window to exit by itself; its status.
fn exits(app: &mut Child, within: Duration) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = app.try_wait().unwrap() {
            return st;
        }
        if t.elapsed() > within {
            let _ = app.kill();
            panic!("berth-gui did not exit: {}", app.wait_with_output_ref());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bundle(d: &Desktop, file: &str, name: &str, perms: &str, command: &str) -> PathBuf {
    let img = busybox_img(
        "example/editor:1",
        vec![file_entry(file)],
        &[
            ("org.berth.app.id", ID),
            ("org.berth.app.name", name),
            ("org.berth.app.command", command),
            ("org.berth.app.permissions", perms),
            (
                "org.berth.app.desktop",
                "[Desktop Entry]\\nType=Application\\nName=Example Editor\\nExec=/bin/sh\\n",
            ),
        ],
    );
    d.env.write(file, &img.oci_archive())
}

fn file_entry(tag: &str) -> E {
    file("etc/version", tag.as_bytes())
}

fn installed_ids(d: &Desktop) -> Vec<String> {
    d.berth_json(&["list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

fn permissions(d: &Desktop) -> Vec<(String, String)> {
    d.berth_json(&["permissions", ID, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["permission"].as_str().unwrap().to_owned(),
                p["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(15), "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn installer_reviews_installs_and_launches() {
    let Some(d) = desktop("installer_reviews_installs_and_launches") else {
        return;
    };
    let file = bundle(
        &d,
        "editor.berth",
        "Example Editor",
        "share=network;filesystem=host;socket=x11",
        "/bin/sleep 30",
    );
    let mut app = d.gui(&["install", file.to_str().unwrap()]);
    d.step(&mut app, &["wait", "Example Editor", "30"]);
    d.step(&mut app, &["wait", ID]);
    d.step(&mut app, &["wait", "It asks to:"]);
    // The highest risk first, in the CLI's words.
    d.step(&mut app, &["wait", "high risk"]);
    d.step(
        &mut app,
        &["wait", "Read and write all files on the computer"],
    );
    d.step(
        &mut app,
        &[
            "wait",
            "Summary: 2 high, 1 medium, 0 low; high: filesystem=host, socket=x11",
        ],
    );
    d.screenshot("installer");
    assert!(
        installed_ids(&d).is_empty(),
        "nothing is installed before Install"
    );

    d.step(&mut app, &["click", "Install"]);
    d.step(&mut app, &["wait", "Installed", "60"]);
    assert_eq!(installed_ids(&d), [ID]);
    let perms: Vec<String> = permissions(&d).into_iter().map(|(p, _)| p).collect();
    assert_eq!(perms.len(), 3, "{perms:?}");
    assert!(perms.contains(&"filesystem=host".to_owned()), "{perms:?}");
    d.step(&mut app, &["wait", "Example Editor is in your apps menu."]);
    d.screenshot("installer-done");

    // Launch starts the app in its sandbox and closes the window.
    d.step(&mut app, &["click", "Launch"]);
    let inst = wait_for_instance(&d.env);
    assert_eq!(inst["image"], ID, "{inst}");
    assert!(exits(&mut app, Duration::from_secs(10)).success());
    d.env.ok(&["kill", inst["id"].as_str().unwrap()]);
}

#[test]
fn installer_shows_hostile_bundles_as_errors() {
    let Some(d) = desktop("installer_shows_hostile_bundles_as_errors") else {
        return;
    };
    // A layer that writes outside its tree: refused, in plain words.
    let evil = Img::new(vec![(layer(&[file("../../../evil", b"x")]), Comp::Gzip)]).oci_archive();
    let path = d.env.write("evil.berth", &evil);
    let mut app = d.gui(&["install", path.to_str().unwrap()]);
    d.step(&mut app, &["wait", "Could not install", "30"]);
    let names = d.names(&mut app).join("\n");
    assert!(names.contains(".."), "the reason is shown: {names}");
    d.screenshot("installer-error");
    assert!(app.try_wait().unwrap().is_none(), "the window stays up");
    d.step(&mut app, &["click", "Close"]);
    assert!(exits(&mut app, Duration::from_secs(10)).success());

    // Not an archive at all.
    let junk = d
        .env
        .write("junk.berth", b"\x00\x01 definitely not a tar file");
    let mut app = d.gui(&["install", junk.to_str().unwrap()]);
    d.step(&mut app, &["wait", "Could not install", "30"]);
    d.step(&mut app, &["click", "Close"]);
    assert!(exits(&mut app, Duration::from_secs(10)).success());

    // A name that tries to draw over the review: shown escaped, with no
    // terminal or bidi control characters left in the window.
    let file = bundle(
        &d,
        "spoof.berth",
        "Nice\u{1b}[2J\u{202e}Tool\nlow risk",
        "filesystem=home",
        "/bin/true",
    );
    let mut app = d.gui(&["install", file.to_str().unwrap()]);
    d.step(&mut app, &["wait", "Could not install", "30"]);
    let names = d.names(&mut app);
    for n in &names {
        assert!(
            !n.chars().any(|c| c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)),
            "a raw control character reached the window: {n:?}"
        );
    }
    assert!(
        names
            .iter()
            .any(|n| n.contains("Nice\\u{1b}[2J\\u{202e}Tool")),
        "{names:?}"
    );
    d.step(&mut app, &["click", "Close"]);
    assert!(exits(&mut app, Duration::from_secs(10)).success());

    // Cancel on a good bundle installs nothing.
    let file = bundle(
        &d,
        "good.berth",
        "Example Editor",
        "filesystem=home",
        "/bin/true",
    );
    let mut app = d.gui(&["install", file.to_str().unwrap()]);
    d.step(&mut app, &["wait", "It asks to:", "30"]);
    d.step(&mut app, &["click", "Cancel"]);
    assert!(exits(&mut app, Duration::from_secs(10)).success());
    assert!(installed_ids(&d).is_empty(), "Cancel installs nothing");
}

#[test]
fn manager_switches_write_the_same_overrides_as_the_cli() {
    let Some(d) = desktop("manager_switches_write_the_same_overrides_as_the_cli") else {
        return;
    };
    let file = bundle(
        &d,
        "editor.tar",
        "Example Editor",
        "share=network;socket=x11",
        "/bin/true",
    );
    d.env.ok(&["install", file.to_str().unwrap(), "--yes"]);
    let mut app = d.gui(&["manage", ID]);
    d.step(&mut app, &["wait", "Example Editor", "30"]);
    d.step(&mut app, &["wait", "What it may do"]);
    assert_eq!(d.step(&mut app, &["state", "share=network"]), "on");
    d.screenshot("manager");

    let has = |p: &str| permissions(&d).iter().any(|(q, _)| q == p);
    d.step(&mut app, &["toggle", "share=network"]);
    until("the network switch revokes share=network", || {
        !has("share=network")
    });
    until("the switch shows it off", || {
        d.step(&mut app, &["state", "share=network"]) == "off"
    });
    d.step(
        &mut app,
        &["wait", "asked for by the app; turned off by you"],
    );
    d.screenshot("manager-revoked");
    d.step(&mut app, &["toggle", "share=network"]);
    until("switching it on again grants it", || has("share=network"));

    // A permission the app never asked for, typed in.
    d.step(
        &mut app,
        &["type", "New permission", "filesystem=xdg-music:ro"],
    );
    d.step(&mut app, &["click", "Grant"]);
    until("the grant is an override", || {
        permissions(&d).contains(&("filesystem=xdg-music:ro".into(), "override".into()))
    });
    d.step(&mut app, &["wait", "added by you"]);
    // Nonsense is refused in the window, and nothing is written.
    d.step(&mut app, &["type", "New permission", "share=everything"]);
    d.step(&mut app, &["click", "Grant"]);
    d.step(&mut app, &["wait-part", "everything"]);
    assert_eq!(permissions(&d).len(), 3);

    d.step(&mut app, &["click", "Reset permissions"]);
    until("reset drops every override", || {
        permissions(&d)
            == [
                ("share=network".to_owned(), "image".to_owned()),
                ("socket=x11".to_owned(), "image".to_owned()),
            ]
    });

    // Uninstall asks first; the dialog's own button confirms.
    d.step(&mut app, &["click", "Uninstall"]);
    d.step(&mut app, &["wait", "Uninstall Example Editor?"]);
    // The first is the page's button; the dialog's comes next (it keeps
    // one more, hidden, for a narrow layout).
    d.step(&mut app, &["click-part", "Uninstall", "1"]);
    until("uninstalled", || installed_ids(&d).is_empty());
    d.step(&mut app, &["wait", "No berth apps are installed"]);
    let _ = app.kill();
    let _ = app.wait();
}

#[test]
fn berth_files_open_in_the_installer() {
    let Some(d) = desktop("berth_files_open_in_the_installer") else {
        return;
    };
    // Any install registers the type; the entry calls berth-gui when it
    // sits beside berth (as cargo builds and `berth integrate` place it).
    let first = bundle(&d, "first.tar", "Example Editor", "", "/bin/true");
    d.env.ok(&["install", first.to_str().unwrap(), "--yes"]);
    let share = d.env.home().join("exports/share");
    let entry =
        std::fs::read_to_string(share.join("applications/org.berth.Installer.desktop")).unwrap();
    let gui_beside_berth = berth_bin().with_file_name("berth-gui").is_file();
    if gui_beside_berth {
        assert!(
            entry.contains("berth-gui install %f\nTerminal=false\n"),
            "{entry}"
        );
    }
    let data_dirs = format!("{}:/usr/share", share.display());
    let q = d
        .cmd(Path::new("xdg-mime"))
        .args(["query", "default", "application/vnd.berth.bundle"])
        .env("XDG_DATA_DIRS", &data_dirs)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&q.stdout).trim(),
        "org.berth.Installer.desktop"
    );
    if !gui_beside_berth {
        skip(
            "berth_files_open_in_the_installer",
            "berth-gui is not beside berth; gio open not tried",
        );
        return;
    }
    // Double-click, as a file manager does it.
    let file = bundle(
        &d,
        "opened.berth",
        "Opened By Click",
        "socket=x11",
        "/bin/true",
    );
    // The installer it starts inherits gio's output: no pipes to wait on.
    let st = d
        .cmd(Path::new("gio"))
        .arg("open")
        .arg(&file)
        .env("XDG_DATA_DIRS", &data_dirs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "gio open failed");
    // pid 0: the berth-gui on this session's accessibility bus.
    let o = d.a11y(0, &["wait", "Opened By Click", "30"]);
    assert!(
        o.status.success(),
        "the installer did not open: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = d.a11y(0, &["click", "Cancel"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn installer_update_asks_only_for_new_permissions() {
    let Some(d) = desktop("installer_update_asks_only_for_new_permissions") else {
        return;
    };
    let v1 = bundle(&d, "v1.tar", "Example Editor", "socket=x11", "/bin/true");
    d.env.ok(&["install", v1.to_str().unwrap(), "--yes"]);
    let v1_image = d.berth_json(&["info", ID, "--json"])["image"].clone();
    let v2 = bundle(
        &d,
        "v2.berth",
        "Example Editor",
        "socket=x11;share=network",
        "/bin/true",
    );
    let mut app = d.gui(&["install", v2.to_str().unwrap()]);
    d.step(&mut app, &["wait", "It asks for new permissions:", "30"]);
    d.step(&mut app, &["wait", "share=network"]);
    let names = d.names(&mut app);
    assert!(
        !names.iter().any(|n| n == "socket=x11"),
        "only the new permission is asked about: {names:?}"
    );
    d.step(&mut app, &["click", "Update"]);
    d.step(&mut app, &["wait", "Installed", "60"]);
    let info = d.berth_json(&["info", ID, "--json"]);
    assert_eq!(info["deployment"], 2, "{info}");
    assert!(permissions(&d).iter().any(|(p, _)| p == "share=network"));
    d.step(&mut app, &["click", "Close"]);
    assert!(exits(&mut app, Duration::from_secs(10)).success());

    // The manager rolls the update back.
    let mut app = d.gui(&["manage", ID]);
    d.step(&mut app, &["wait-part", "Deployment 2, from", "30"]);
    d.step(&mut app, &["click", "Roll back"]);
    until("rolled back to the first image", || {
        d.berth_json(&["info", ID, "--json"])["image"] == v1_image
    });
    d.step(&mut app, &["wait-part", "Rolled back from deployment 2"]);
    assert!(!permissions(&d).iter().any(|(p, _)| p == "share=network"));
    let _ = app.kill();
    let _ = app.wait();
}

/// Without a display the windows say so, in a line, instead of a GTK
/// warning.
#[test]
fn without_a_display_it_says_so() {
    let o = Command::new(gui_bin())
        .args(["install", "/nonexistent.berth"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no display") && err.contains("berth install FILE"),
        "{err}"
    );
}

/// kill -9 of the installer window at any moment, while it reads the
/// bundle or while it installs, leaves the store whole: the app is either
/// installed completely (it runs) or not at all, and fsck is clean.
#[test]
fn killing_the_installer_midway_leaves_the_store_whole() {
    let Some(d) = desktop("killing_the_installer_midway_leaves_the_store_whole") else {
        return;
    };
    // Big enough that reading and installing it take a while.
    let img = busybox_img(
        "example/editor:1",
        vec![file_entry("big"), file("opt/big", &noise(24 << 20, 7))],
        &[
            ("org.berth.app.id", ID),
            ("org.berth.app.name", "Example Editor"),
            ("org.berth.app.command", "/bin/echo ok"),
            ("org.berth.app.permissions", "share=network"),
        ],
    );
    let file = d.env.write("big.berth", &img.oci_archive());
    let mut outcomes = Vec::new();
    // (after Install was pressed, milliseconds until the kill): None kills
    // while the bundle is still being read.
    for (pressed, ms) in [
        (false, 0),
        (false, 200),
        (false, 600),
        (true, 0),
        (true, 40),
        (true, 150),
        (true, 500),
    ] {
        let mut app = d.gui(&["install", file.to_str().unwrap()]);
        if pressed {
            d.step(&mut app, &["wait", "It asks to:", "60"]);
            d.step(&mut app, &["click", "Install"]);
        }
        std::thread::sleep(Duration::from_millis(ms));
        app.kill().unwrap();
        app.wait().unwrap();
        d.env.assert_fsck_clean();
        let ids = installed_ids(&d);
        if ids.is_empty() {
            outcomes.push("not installed");
            continue;
        }
        assert_eq!(ids, [ID]);
        let o = d
            .env
            .cmd()
            .args(["run", ID])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "installed after a kill but does not run: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            d.env
                .home()
                .join(format!("exports/share/applications/{ID}.desktop"))
                .is_file(),
            "installed without its menu entry"
        );
        d.env.ok(&["uninstall", ID]);
        outcomes.push("installed");
    }
    eprintln!("after each kill: {outcomes:?}");
    assert!(outcomes.contains(&"not installed"), "{outcomes:?}");
    // Afterwards the bundle installs as if nothing had happened.
    let mut app = d.gui(&["install", file.to_str().unwrap()]);
    d.step(&mut app, &["wait", "It asks to:", "60"]);
    d.step(&mut app, &["click", "Install"]);
    d.step(&mut app, &["wait", "Installed", "60"]);
    assert_eq!(installed_ids(&d), [ID]);
    let _ = app.kill();
    let _ = app.wait();
}

/// The manager shows what the portals remember for the app and forgets it
/// on request, as `berth permissions --reset-portals` does.
#[test]
fn manager_shows_and_forgets_portal_permissions() {
    let Some(d) = desktop("manager_shows_and_forgets_portal_permissions") else {
        return;
    };
    if !have_tool("manager_shows_and_forgets_portal_permissions", "gdbus") {
        return;
    }
    let file = bundle(&d, "editor.tar", "Example Editor", "", "/bin/true");
    d.env.ok(&["install", file.to_str().unwrap(), "--yes"]);
    // The camera portal's answer, as the permission store keeps it.
    let o = d
        .cmd(Path::new("gdbus"))
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.impl.portal.PermissionStore",
            "--object-path",
            "/org/freedesktop/impl/portal/PermissionStore",
            "--method",
            "org.freedesktop.impl.portal.PermissionStore.SetPermission",
            "devices",
            "true",
            "camera",
            ID,
            "['yes']",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let remembered = || -> serde_json::Value {
        let o = d
            .cmd(&berth_bin())
            .args(["permissions", ID, "--portals", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    assert_eq!(remembered().as_array().unwrap().len(), 1);
    let mut app = d.gui(&["manage", ID]);
    d.step(&mut app, &["wait", "What the portals remember", "30"]);
    d.step(&mut app, &["wait", "camera: yes (devices)"]);
    d.screenshot("manager-portals");
    d.step(&mut app, &["click", "Forget portal permissions"]);
    until("the window forgets them", || {
        remembered().as_array().unwrap().is_empty()
    });
    d.step(&mut app, &["wait", "Forgot 1 portal permission(s)."]);
    let _ = app.kill();
    let _ = app.wait();
}
