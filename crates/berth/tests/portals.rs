//! Portals know a berth app by its ID. xdg-desktop-portal (1.16, Debian 12)
//! identifies a caller by `/proc/PID/root/.flatpak-info` of the bus peer it
//! sees: the app's bus proxy, which runs in a sandbox of its own holding
//! the app's `/.flatpak-info`. Real dbus-daemon, xdg-desktop-portal and
//! xdg-dbus-proxy; the portal's notification backend is the test's own
//! (tests/portal/backend.py) and writes down the app ID the
//! portal passes it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A file of the tests' portal helpers (tests/portal): CI copies them
/// elsewhere to run the tests rootless, and says where (`BERTH_PORTAL_DIR`).
fn portal_file(name: &str) -> PathBuf {
    std::env::var_os("BERTH_PORTAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/portal"))
        .join(name)
}

/// A private session bus for one test, on `$TEST/bus`: what it starts (the
/// permission store, the document portal, the accessibility bus) keeps its
/// files in the test's directory (`xdg-data`, `xdg-run`), not the user's.
/// Its address, and the daemon, stopped when dropped.
fn session_bus(env: &Env) -> (String, Killed) {
    let run = env.path("xdg-run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", env.path("bus").display()))
        .env("XDG_DATA_HOME", env.path("xdg-data"))
        .env("XDG_RUNTIME_DIR", &run)
        .env_remove("DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut address = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    (address.trim().to_owned(), Killed(vec![daemon]))
}

/// Every tool the test needs, or a skip (a failure in CI).
fn tools(test: &str, list: &[&str]) -> bool {
    list.iter().all(|t| have_tool(test, t))
}

/// Wait until `name` has an owner on the bus at `address`.
fn wait_for_name(address: &str, name: &str) {
    let t = Instant::now();
    while !Command::new("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.GetNameOwner",
            name,
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{name} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A session bus with xdg-desktop-portal on it, its notifications going to
/// the test's backend. Returns the bus address, the file the backend writes
/// and the processes to stop.
fn portal_session(env: &Env) -> (String, PathBuf, Killed) {
    let (address, mut procs) = session_bus(env);
    let heard = env.path("heard");
    // What the user picks when an app asks (FileChooser).
    let files = env.path("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("picked.txt"), "picked by the user\n").unwrap();
    std::fs::write(files.join("beside.txt"), "not picked\n").unwrap();
    let mut backend = Command::new("/usr/bin/python3")
        .arg(portal_file("backend.py"))
        .arg(&heard)
        .arg(files.join("picked.txt"))
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufReader::new(backend.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(
        ready.trim(),
        "ready",
        "the test's portal backend did not start"
    );
    procs.0.push(backend);
    let dir = env.path("portals");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("berthtest.portal"),
        "[portal]\nDBusName=org.freedesktop.impl.portal.desktop.berthtest\n\
         Interfaces=org.freedesktop.impl.portal.Notification;org.freedesktop.impl.portal.AppChooser;\
         org.freedesktop.impl.portal.Access;org.freedesktop.impl.portal.FileChooser;\n\
         UseIn=berthtest\n",
    )
    .unwrap();
    // The host's web browser, as far as the portal knows: a stub that
    // writes down what it was asked to open.
    let apps = env.path("xdg-data/applications");
    std::fs::create_dir_all(&apps).unwrap();
    let stub = env.path("stub-browser");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\n",
            env.path("opened").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        apps.join("stub-browser.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=Stub Browser\nExec={} %u\n\
             MimeType=x-scheme-handler/https;x-scheme-handler/http;\n",
            stub.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("xdg-config")).unwrap();
    std::fs::write(
        env.path("xdg-config/mimeapps.list"),
        "[Default Applications]\nx-scheme-handler/https=stub-browser.desktop\n",
    )
    .unwrap();
    procs.0.push(start_portal(env, &address, &dir));
    (address, heard, procs)
}

/// xdg-desktop-portal on the bus at `address`, its backends the `.portal`
/// files in `dir` that name the desktop "berthtest"; its debug log in
/// `portal.log`. Returns once it owns its name.
fn start_portal(env: &Env, address: &str, dir: &Path) -> Child {
    let portal = Command::new("/usr/libexec/xdg-desktop-portal")
        .arg("--replace")
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .env("XDG_DESKTOP_PORTAL_DIR", dir)
        .env("XDG_CURRENT_DESKTOP", "berthtest")
        .env("XDG_RUNTIME_DIR", env.path("xdg-run"))
        .env("XDG_DATA_HOME", env.path("xdg-data"))
        .env("XDG_DATA_DIRS", env.path("xdg-data"))
        .env("XDG_CONFIG_HOME", env.path("xdg-config"))
        .env("G_MESSAGES_DEBUG", "all")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("portal.log")).unwrap())
        .spawn()
        .unwrap();
    wait_for_name(address, "org.freedesktop.portal.Desktop");
    portal
}

/// Send a notification through the portal from inside `app`.
fn notify(env: &Env, bus: &str, app: &str, id: &str) -> std::process::Output {
    let script = format!(
        "gdbus call --session --dest org.freedesktop.portal.Desktop \
         --object-path /org/freedesktop/portal/desktop \
         --method org.freedesktop.portal.Notification.AddNotification {id} \"{{'title': <'hello'>}}\""
    );
    env.cmd()
        .args(["run", app, "--", &script])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// What the backend heard: (app ID, notification ID) per notification.
fn heard(path: &Path, want: usize) -> Vec<(String, String)> {
    let t = Instant::now();
    loop {
        let lines: Vec<(String, String)> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("notification\t"))
            .map(|l| {
                let mut f = l.split('\t');
                (
                    f.next().unwrap_or("").to_owned(),
                    f.next().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if lines.len() >= want || t.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn portals_know_the_app_by_its_id() {
    if !tools(
        "portals_know_the_app_by_its_id",
        &[
            "dbus-daemon",
            "xdg-dbus-proxy",
            "gdbus",
            "ldd",
            "/usr/bin/python3",
            "/usr/libexec/xdg-desktop-portal",
        ],
    ) {
        return;
    }
    let env = Env::new();
    let (bus, heard_file, _procs) = portal_session(&env);
    for id in ["org.example.Notifier", "org.example.Other"] {
        install_host_app(&env, id, "/usr/bin/gdbus", "/bin/sh -c", "", vec![]);
    }
    let o = notify(&env, &bus, "org.example.Notifier", "n1");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = notify(&env, &bus, "org.example.Other", "n2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = heard(&heard_file, 2);
    assert_eq!(
        got,
        [
            ("org.example.Notifier".to_owned(), "n1".to_owned()),
            ("org.example.Other".to_owned(), "n2".to_owned())
        ],
        "the portal did not know the apps by their IDs"
    );

    // The app reads its identity, in Flatpak's format, and cannot change
    // it: not by writing, not by mounting, not from a namespace of its own.
    let o = env
        .cmd()
        .args([
            "run",
            "org.example.Notifier",
            "--",
            "cat /.flatpak-info; echo x > /.flatpak-info && echo WROTE; \
             busybox mount -t tmpfs none / && echo MOUNTED; \
             busybox mount --bind /etc/hostname /.flatpak-info && echo MOUNTED; \
             busybox unshare -U -m -r /bin/sh -c 'echo NESTED'; true",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    // Each attempt was made, and refused.
    assert!(err.contains("unshare:"), "{err}");
    assert!(err.matches("mount:").count() >= 2, "{err}");
    assert!(
        out.starts_with("[Application]\nname=org.example.Notifier\n"),
        "{out}"
    );
    assert!(out.contains("[Instance]\ninstance-id="), "{out}");
    for bad in ["WROTE", "MOUNTED", "NESTED"] {
        assert!(!out.contains(bad), "{bad}: {out}");
    }
    // OpenURI reaches the host's handler for the link.
    let o = env
        .cmd()
        .args([
            "run",
            "org.example.Notifier",
            "--",
            "gdbus call --session --dest org.freedesktop.portal.Desktop \
             --object-path /org/freedesktop/portal/desktop \
             --method org.freedesktop.portal.OpenURI.OpenURI '' \
             'https://example.invalid/from-the-app' '{}'",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = Instant::now();
    let opened = loop {
        let o = std::fs::read_to_string(env.path("opened")).unwrap_or_default();
        if !o.is_empty() || t.elapsed() > Duration::from_secs(10) {
            break o;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        opened,
        "https://example.invalid/from-the-app\n",
        "{}",
        std::fs::read_to_string(&heard_file).unwrap_or_default()
    );
    // A host caller is still the host (app ID "").
    let o = Command::new("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.portal.Desktop",
            "--object-path",
            "/org/freedesktop/portal/desktop",
            "--method",
            "org.freedesktop.portal.Notification.AddNotification",
            "h1",
            "{'title': <'host'>}",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(heard(&heard_file, 3)[2], (String::new(), "h1".to_owned()));
    // No proxy outlives its app.
    let ps = Command::new("pgrep")
        .args([
            "-f",
            &format!("xdg-dbus-proxy.*{}", env.dir.path().display()),
        ])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "a proxy outlived its app");
}

/// An app opened from its menu entry with a file (as a file manager's
/// "Open with" does, through `gio launch`) reads that file, by a path the
/// document portal gives it, and nothing beside it; without a document
/// portal, berth binds that one file.
#[test]
fn files_opened_from_the_menu_reach_the_app_alone() {
    if !tools(
        "files_opened_from_the_menu_reach_the_app_alone",
        &[
            "dbus-daemon",
            "xdg-dbus-proxy",
            "gio",
            "/usr/libexec/xdg-document-portal",
        ],
    ) {
        return;
    }
    let env = Env::new();
    let run = env.path("xdg-run");
    let files = env.path("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("letter.txt"), "dear reader\n").unwrap();
    std::fs::write(files.join("neighbour.txt"), "not yours\n").unwrap();
    let id = "org.example.Reader";
    let script = format!(
        "#!/bin/sh\n{{ echo \"arg=$1\"; cat \"$1\" && echo READ; \
         echo changed >> \"$1\" && echo WROTE; \
         cat \"$(dirname \"$1\")/neighbour.txt\" && echo NEIGHBOUR; \
         cat {} && echo HOSTNEIGHBOUR; }} > \"$HOME/result.tmp\" 2>&1; \
         mv \"$HOME/result.tmp\" \"$HOME/result\"\n",
        files.join("neighbour.txt").display()
    );
    let img = busybox_img(
        "test/reader:1",
        vec![
            dir("usr"),
            file("bin/reader", script.as_bytes()).mode(0o755),
            symlink("bin/mv", "busybox"),
            symlink("bin/dirname", "busybox"),
        ],
        &[
            ("org.berth.app.id", id),
            ("org.berth.app.command", "/bin/reader"),
            (
                "org.berth.app.desktop",
                "[Desktop Entry]\\nType=Application\\nName=Reader\\nExec=/bin/reader %f\\nMimeType=text/plain;\\n",
            ),
        ],
    );
    let p = env.write("reader.tar", &img.oci_archive());
    env.ok(&["install", "--yes", p.to_str().unwrap()]);
    let entry = env
        .home()
        .join(format!("exports/share/applications/{id}.desktop"));
    let result = env.home().join(format!("data/{id}/result"));
    let open = |bus: Option<&str>| -> String {
        let _ = std::fs::remove_file(&result);
        let mut c = env.cmd_raw("gio");
        c.args(["launch"])
            .arg(&entry)
            .arg(files.join("letter.txt"))
            .env("XDG_RUNTIME_DIR", &run)
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        if let Some(b) = bus {
            c.env("DBUS_SESSION_BUS_ADDRESS", b);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let t = Instant::now();
        while !result.exists() {
            if t.elapsed() > Duration::from_secs(20) {
                let mut c = env.cmd();
                c.args(["run", id, "--", "@@"])
                    .arg(files.join("letter.txt"))
                    .arg("@@")
                    .env("XDG_RUNTIME_DIR", &run)
                    .env_remove("DBUS_SESSION_BUS_ADDRESS");
                if let Some(b) = bus {
                    c.env("DBUS_SESSION_BUS_ADDRESS", b);
                }
                let o = c.output().unwrap();
                panic!(
                    "the app never wrote its result; by hand: {}{}\n{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr),
                    std::fs::read_to_string(&entry).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(&result).unwrap()
    };

    // With the document portal: a path of its own, the file, nothing else.
    let (address, procs) = session_bus(&env);
    let out = open(Some(&address));
    let uid = rustix::process::getuid().as_raw();
    assert!(
        out.starts_with(&format!("arg=/run/user/{uid}/doc/")) && out.contains("/letter.txt\n"),
        "{out}"
    );
    assert!(out.contains("dear reader\nREAD\n"), "{out}");
    assert!(
        !out.contains("NEIGHBOUR") && !out.contains("not yours"),
        "{out}"
    );
    // Read-only: the app declares no `edit=` for text.
    assert!(!out.contains("WROTE"), "{out}");
    assert_eq!(
        std::fs::read_to_string(files.join("letter.txt")).unwrap(),
        "dear reader\n"
    );
    // `edit=text/*` (the user's override here; an app declares it in its
    // image): the same file, now writable, and still nothing beside it.
    env.ok(&["override", id, "--grant", "edit=text/*"]);
    let out = open(Some(&address));
    assert!(out.contains("dear reader\nREAD\nWROTE\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(files.join("letter.txt")).unwrap(),
        "dear reader\nchanged\n"
    );
    assert!(!out.contains("NEIGHBOUR"), "{out}");
    // A type it does not edit stays read-only.
    env.ok(&["override", id, "--reset"]);
    env.ok(&["override", id, "--grant", "edit=image/png"]);
    std::fs::write(files.join("letter.txt"), "dear reader\n").unwrap();
    let out = open(Some(&address));
    assert!(out.contains("READ\n") && !out.contains("WROTE"), "{out}");
    env.ok(&["override", id, "--reset"]);
    // Stop the bus and the document portal it started (it unmounts).
    drop(procs);
    let _ = Command::new("fusermount3")
        .arg("-u")
        .arg(run.join("doc"))
        .stderr(Stdio::null())
        .status();

    // Without one: that file alone, where it is; read-only unless edited.
    let out = open(None);
    assert!(
        out.starts_with(&format!("arg={}\n", files.join("letter.txt").display())),
        "{out}"
    );
    assert!(out.contains("dear reader\nREAD\n"), "{out}");
    assert!(!out.contains("WROTE"), "{out}");
    assert!(
        !out.contains("NEIGHBOUR") && !out.contains("not yours"),
        "{out}"
    );
    env.ok(&["override", id, "--grant", "edit=text/plain"]);
    let out = open(None);
    assert!(out.contains("dear reader\nREAD\nWROTE\n"), "{out}");
    assert!(!out.contains("NEIGHBOUR"), "{out}");
}

/// `berth permissions` shows what the portals' permission store holds for
/// the app, and `--reset-portals` removes it, and nothing of other apps'.
#[test]
fn portal_permissions_are_shown_and_forgotten() {
    if !tools(
        "portal_permissions_are_shown_and_forgotten",
        &["dbus-daemon", "gdbus", "/usr/libexec/xdg-permission-store"],
    ) {
        return;
    }
    let env = Env::new();
    let (bus, _procs) = session_bus(&env);
    let store = |args: &[&str]| -> String {
        let o = Command::new("gdbus")
            .args([
                "call",
                "--session",
                "--dest",
                "org.freedesktop.impl.portal.PermissionStore",
                "--object-path",
                "/org/freedesktop/impl/portal/PermissionStore",
                "--method",
            ])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let id = "org.example.Cam";
    install_host_app(&env, id, "/bin/true", "/bin/true", "", vec![]);
    let set = "org.freedesktop.impl.portal.PermissionStore.SetPermission";
    store(&[set, "devices", "true", "camera", id, "['yes']"]);
    store(&[
        set,
        "devices",
        "true",
        "camera",
        "org.example.Other",
        "['no']",
    ]);
    store(&[set, "notifications", "true", "notification", id, "['yes']"]);

    let berth = |args: &[&str]| -> String {
        let o = env
            .cmd()
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let v: serde_json::Value =
        serde_json::from_str(&berth(&["permissions", id, "--portals", "--json"])).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"table": "devices", "id": "camera", "permissions": ["yes"]},
            {"table": "notifications", "id": "notification", "permissions": ["yes"]},
        ])
    );
    let text = berth(&["permissions", id]);
    assert!(text.contains("What the portals remember"), "{text}");
    assert!(
        text.contains("devices") && text.contains("camera"),
        "{text}"
    );
    // The effective permissions' JSON stays what it was.
    assert_eq!(berth(&["permissions", id, "--json"]).trim(), "[]");

    let out = berth(&["permissions", "--reset-portals", id]);
    assert!(out.contains("Removed 2 portal permission(s)"), "{out}");
    let left = store(&[
        "org.freedesktop.impl.portal.PermissionStore.Lookup",
        "devices",
        "camera",
    ]);
    assert!(
        left.contains("org.example.Other") && !left.contains(id),
        "{left}"
    );
    assert_eq!(
        berth(&["permissions", id, "--portals", "--json"]).trim(),
        "[]"
    );
}

/// The app reaches the accessibility bus (screen readers) through its own
/// filter: embedding itself in the registry works, other calls do not.
#[test]
fn the_accessibility_bus_is_filtered() {
    if !tools(
        "the_accessibility_bus_is_filtered",
        &[
            "dbus-daemon",
            "xdg-dbus-proxy",
            "gdbus",
            "/usr/libexec/at-spi-bus-launcher",
        ],
    ) {
        return;
    }
    let env = Env::new();
    let run = env.path("xdg-run");
    // A session bus that starts the accessibility bus when asked, as a
    // desktop's does.
    let (bus, _procs) = session_bus(&env);
    let id = "org.example.Reader";
    install_host_app(&env, id, "/usr/bin/gdbus", "/bin/sh -c", "", vec![]);
    let registry = |method: &str| {
        format!(
            "gdbus call --address \"$AT_SPI_BUS_ADDRESS\" --dest org.a11y.atspi.Registry \
             --object-path /org/a11y/atspi/registry --method {method} >/dev/null 2>&1 \
             && echo {method}=ok || echo {method}=refused"
        )
    };
    let script = format!(
        "echo \"address=$AT_SPI_BUS_ADDRESS\"; {}; {}",
        registry("org.a11y.atspi.Registry.GetRegisteredEvents"),
        registry("org.freedesktop.DBus.Introspectable.Introspect"),
    );
    let o = env
        .cmd()
        .args(["run", id, "--", &script])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .env("XDG_RUNTIME_DIR", &run)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("address=unix:path=/run/flatpak/at-spi-bus\n"),
        "{out}"
    );
    assert!(out.contains("GetRegisteredEvents=ok"), "{out}");
    assert!(out.contains("Introspect=refused"), "{out}");
    let _ = Command::new("pkill")
        .args(["-f", &format!("at-spi.*{}", run.display())])
        .status();
}

/// The test's portal client (tests/portal/request.c), compiled here.
fn request_client(env: &Env) -> PathBuf {
    let src = portal_file("request.c");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "gio-2.0"])
        .output()
        .unwrap();
    assert!(
        flags.status.success(),
        "pkg-config gio-2.0: libglib2.0-dev is needed"
    );
    let out = env.path("request");
    let o = Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .args(String::from_utf8_lossy(&flags.stdout).split_whitespace())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// An app with the test's portal client at /bin/request, no permissions,
/// and `extra` entries. gdbus brings the libraries the client needs (GIO);
/// the client goes to /bin (the sandbox's /tmp, where it is built, is its
/// own).
fn install_client_app(env: &Env, id: &str, mut extra: Vec<E>) {
    let client = std::fs::read(request_client(env)).unwrap();
    extra.push(file("bin/request", &client).mode(0o755));
    install_host_app(env, id, "/usr/bin/gdbus", "/bin/sh -c", "", extra);
}

/// An app without `device=camera` asks for the camera through the Camera
/// portal: the portal asks the user (here the test's backend, which
/// grants), its answer reaches the app, and the grant shows in the app's
/// portal permissions. (No camera or PipeWire here: what is tested is the
/// way there and back.)
#[test]
fn the_camera_is_asked_for_through_the_portal() {
    if !tools(
        "the_camera_is_asked_for_through_the_portal",
        &[
            "dbus-daemon",
            "xdg-dbus-proxy",
            "gcc",
            "pkg-config",
            "ldd",
            "/usr/bin/python3",
            "/usr/libexec/xdg-desktop-portal",
        ],
    ) {
        return;
    }
    let env = Env::new();
    let (bus, heard_file, _procs) = portal_session(&env);
    let id = "org.example.Camera";
    install_client_app(&env, id, vec![]);
    let o = env
        .cmd()
        .args([
            "run",
            id,
            "--",
            "/bin/request org.freedesktop.portal.Camera AccessCamera",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out,
        "response 0\n",
        "the portal's answer did not reach the app: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let asked = std::fs::read_to_string(&heard_file).unwrap_or_default();
    assert!(
        asked.contains(&format!("access\t{id}\t")),
        "{asked}{}",
        std::fs::read_to_string(env.path("portal.log")).unwrap_or_default()
    );
    let o = env
        .cmd()
        .args(["permissions", id, "--portals", "--json"])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"table": "devices", "id": "camera", "permissions": ["yes"]}]),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An app asks the user for a file (FileChooser.OpenFile): the portal
/// hands it the picked file through the document portal, and the app reads
/// it there, without a filesystem grant, and nothing beside it.
#[test]
fn a_file_the_user_picks_reaches_the_app() {
    if !tools(
        "a_file_the_user_picks_reaches_the_app",
        &[
            "dbus-daemon",
            "xdg-dbus-proxy",
            "gcc",
            "pkg-config",
            "ldd",
            "/usr/bin/python3",
            "/usr/libexec/xdg-desktop-portal",
            "/usr/libexec/xdg-document-portal",
        ],
    ) {
        return;
    }
    let env = Env::new();
    let run = env.path("xdg-run");
    let (bus, heard_file, _procs) = portal_session(&env);
    let id = "org.example.Picker";
    install_client_app(
        &env,
        id,
        vec![
            symlink("bin/sed", "busybox"),
            symlink("bin/dirname", "busybox"),
        ],
    );
    let script = format!(
        "uri=$(/bin/request org.freedesktop.portal.FileChooser OpenFile 'Open a text' | sed -n 's/^uri //p'); \
         path=${{uri#file://}}; echo \"path=$path\"; cat \"$path\" && echo READ; \
         cat \"$(dirname \"$path\")/beside.txt\" && echo BESIDE; \
         cat {} && echo HOSTBESIDE; true",
        env.path("files/beside.txt").display()
    );
    let o = env
        .cmd()
        .args(["run", id, "--", &script])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .env("XDG_RUNTIME_DIR", &run)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("picked by the user\nREAD\n"), "{out}{err}");
    assert!(
        out.contains("/doc/") && out.contains("/picked.txt"),
        "{out}"
    );
    assert!(
        !out.contains("BESIDE") && !out.contains("not picked"),
        "{out}"
    );
    let heard = std::fs::read_to_string(&heard_file).unwrap_or_default();
    assert!(
        heard.contains(&format!("open-file\t{id}\tOpen a text")),
        "{heard}"
    );
    let _ = Command::new("fusermount3")
        .arg("-u")
        .arg(run.join("doc"))
        .stderr(Stdio::null())
        .status();
}

/// A session bus with xdg-desktop-portal and its GTK backend,
/// xdg-desktop-portal-gtk, whose real dialogs show on `x`; and a
/// notification daemon (tests/portal/notifyd.py). Returns the bus address,
/// the file the daemon writes and the processes to stop.
fn gtk_portal_session(env: &Env, x: &Xvfb) -> (String, PathBuf, Killed) {
    let (address, mut procs) = session_bus(env);
    let notes = env.path("notifications");
    let mut notifyd = Command::new("/usr/bin/python3")
        .arg(portal_file("notifyd.py"))
        .arg(&notes)
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufReader::new(notifyd.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(
        ready.trim(),
        "ready",
        "the notification daemon did not start"
    );
    procs.0.push(notifyd);
    // Debian's gtk.portal says it is for GNOME; this desktop is "berthtest".
    let dir = env.path("portals");
    std::fs::create_dir_all(&dir).unwrap();
    let gtk = std::fs::read_to_string("/usr/share/xdg-desktop-portal/portals/gtk.portal").unwrap();
    let gtk: String = gtk
        .lines()
        .map(|l| {
            if l.starts_with("UseIn=") {
                "UseIn=berthtest"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("gtk.portal"), gtk + "\n").unwrap();
    let backend = Command::new("/usr/libexec/xdg-desktop-portal-gtk")
        .arg("--replace")
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_CURRENT_DESKTOP", "berthtest")
        .env("XDG_RUNTIME_DIR", env.path("xdg-run"))
        .env("XDG_DATA_HOME", env.path("xdg-data"))
        .env("XDG_CONFIG_HOME", env.path("xdg-config"))
        .env("GSETTINGS_BACKEND", "memory")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("portal-gtk.log")).unwrap())
        .spawn()
        .unwrap();
    procs.0.push(backend);
    wait_for_name(&address, "org.freedesktop.impl.portal.desktop.gtk");
    procs.0.push(start_portal(env, &address, &dir));
    (address, notes, procs)
}

/// xdotool on display `x`; its output.
fn xdotool(x: &Xvfb, args: &[&str]) -> String {
    let o = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first visible window whose name matches `name` (a regex) and, if
/// given, whose WM_CLASS instance name matches `class`, waiting for it up
/// to `secs`.
fn find_window(x: &Xvfb, name: &str, class: Option<&str>, secs: u64) -> Option<String> {
    // `xdotool search --name|--classname PATTERN` lists the windows whose
    // name (or class) matches one pattern.
    let search = |field: &str, pattern: &str| -> Vec<String> {
        let o = Command::new("xdotool")
            .args(["search", "--onlyvisible", field, pattern])
            .env("DISPLAY", format!(":{}", x.display))
            .env("XAUTHORITY", &x.auth)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let t = Instant::now();
    loop {
        let mut found = search("--name", name);
        if let Some(cl) = class {
            let of_class = search("--classname", cl);
            found.retain(|w| of_class.contains(w));
        }
        if let Some(w) = found.into_iter().next() {
            return Some(w);
        }
        if t.elapsed() > Duration::from_secs(secs) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A screenshot of `x` as PNG in the test's directory (ImageMagick), for
/// a failing test's message.
fn screenshot(env: &Env, x: &Xvfb, name: &str) -> PathBuf {
    let p = env.path(name);
    let _ = Command::new("import")
        .args(["-window", "root", "-display", &format!(":{}", x.display)])
        .arg(&p)
        .env("XAUTHORITY", &x.auth)
        .status();
    p
}

/// An unmodified Debian GTK app (GNOME Text Editor, GTK 4, from
/// bookworm's packages), installed with no filesystem grant: Ctrl+O makes
/// GTK ask the FileChooser portal (it sees `/.flatpak-info`), the real
/// dialog of xdg-desktop-portal-gtk opens on the host and is answered
/// with the keyboard (xdotool), and the app shows the file's text, read
/// through the document portal (checked through the accessibility bus, as
/// a screen reader reads it). The file beside it stays out of reach. A
/// notification from an app reaches the notification daemon through the
/// GTK backend.
#[test]
fn a_debian_gtk_app_opens_a_file_through_the_portal_dialog() {
    const T: &str = "a_debian_gtk_app_opens_a_file_through_the_portal_dialog";
    if !tools(
        T,
        &[
            "dbus-daemon",
            "xdg-dbus-proxy",
            "Xvfb",
            "xauth",
            "xwininfo",
            "xdotool",
            "import",
            "gdbus",
            "/usr/bin/python3",
            "/usr/libexec/xdg-desktop-portal",
            "/usr/libexec/xdg-desktop-portal-gtk",
            "/usr/libexec/xdg-document-portal",
            "/usr/libexec/at-spi-bus-launcher",
        ],
    ) {
        return;
    }
    let Some(rootfs) = debian_rootfs(
        T,
        "text-editor",
        &["gnome-text-editor", "gsettings-desktop-schemas"],
    ) else {
        return;
    };
    let env = Env::new();
    let id = "org.gnome.TextEditor";
    let mut img = Img::new(vec![(std::fs::read(&rootfs).unwrap(), Comp::None)])
        .named("debian/text-editor:bookworm");
    for (k, v) in [
        ("org.berth.app.id", id),
        ("org.berth.app.name", "Text Editor (Debian)"),
        ("org.berth.app.command", "/usr/bin/gnome-text-editor"),
        ("org.berth.app.permissions", "socket=x11"),
    ] {
        img.labels.insert(k.into(), v.into());
    }
    let archive = env.write("text-editor.tar", &img.oci_archive());
    drop(img);
    env.ok(&["install", "--yes", archive.to_str().unwrap()]);
    let files = env.path("files");
    std::fs::create_dir_all(&files).unwrap();
    let chosen = files.join("chosen.txt");
    std::fs::write(&chosen, "hello from a file the user picked\n").unwrap();
    std::fs::write(files.join("beside.txt"), "not picked\n").unwrap();

    let x = start_xvfb_sized(env.dir.path(), "1024x768x24");
    let (bus, notes, procs) = gtk_portal_session(&env, &x);
    let run = env.path("xdg-run");
    let mut app = env
        .cmd()
        .args(["run", id])
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus)
        .env("XDG_RUNTIME_DIR", &run)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_window(&x, &mut app, "Text Editor", Duration::from_secs(60));
    let editor = find_window(&x, "Text Editor", None, 10).unwrap();
    let inst = wait_for_instance(&env);
    let inst = inst["id"].as_str().unwrap().to_owned();

    // Ctrl+O: the portal's dialog, drawn by xdg-desktop-portal-gtk on the
    // host (not by the app).
    let mut dialog = None;
    for _ in 0..3 {
        xdotool(&x, &["windowfocus", "--sync", &editor]);
        std::thread::sleep(Duration::from_millis(300));
        xdotool(&x, &["key", "ctrl+o"]);
        dialog = find_window(&x, "^Open File$", Some("xdg-desktop-portal-gtk"), 10);
        if dialog.is_some() {
            break;
        }
    }
    let Some(dialog) = dialog else {
        panic!(
            "no portal dialog; windows: {}\nportal: {}\nscreenshot: {}",
            window_names(&x),
            std::fs::read_to_string(env.path("portal.log")).unwrap_or_default(),
            screenshot(&env, &x, "no-dialog.png").display()
        );
    };
    assert!(
        !window_names(&x).contains("(\"gnome-text-editor\" \"gnome-text-editor\")  1096x"),
        "the app drew its own file chooser"
    );
    // The user types the file's path and presses Enter.
    xdotool(&x, &["windowfocus", "--sync", &dialog]);
    std::thread::sleep(Duration::from_millis(300));
    xdotool(&x, &["key", "ctrl+l"]);
    std::thread::sleep(Duration::from_millis(300));
    xdotool(&x, &["type", "--delay", "20", chosen.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(300));
    xdotool(&x, &["key", "Return"]);

    // The editor opens it from the document portal: its title says where.
    let opened = find_window(&x, "^chosen\\.txt .*/doc/.* - Text Editor$", None, 20);
    assert!(
        opened.is_some(),
        "the app did not open the picked file; windows: {}\nscreenshot: {}",
        window_names(&x),
        screenshot(&env, &x, "not-opened.png").display()
    );
    // Its text, as a screen reader reads it.
    let t = Instant::now();
    let text = loop {
        let o = Command::new("/usr/bin/python3")
            .arg(portal_file("a11y_text.py"))
            .arg("gnome-text-editor")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("DISPLAY", format!(":{}", x.display))
            .env("XAUTHORITY", &x.auth)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        if text.contains("hello from a file the user picked")
            || t.elapsed() > Duration::from_secs(15)
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        text.contains("hello from a file the user picked"),
        "the editor does not show the file's text: {text:?}\nscreenshot: {}",
        screenshot(&env, &x, "no-text.png").display()
    );
    screenshot(&env, &x, "opened.png");
    // The app holds that one file: not the one beside it, not the host path.
    for p in [files.join("beside.txt"), chosen.clone()] {
        let o = env
            .cmd()
            .args(["enter", &inst, "--", "/bin/cat"])
            .arg(&p)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("picked"),
            "the app reads {}",
            p.display()
        );
    }
    env.ok(&["kill", &inst]);
    let _ = app.wait();

    // A notification through the portal reaches the notification daemon,
    // by way of xdg-desktop-portal-gtk.
    let notifier = "org.example.Notifier";
    install_host_app(&env, notifier, "/usr/bin/gdbus", "/bin/sh -c", "", vec![]);
    let o = notify(&env, &bus, notifier, "n1");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = Instant::now();
    let heard = loop {
        let h = std::fs::read_to_string(&notes).unwrap_or_default();
        if h.contains("\thello\t") || t.elapsed() > Duration::from_secs(10) {
            break h;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // notify, app name, summary, body, desktop-entry: the portal's app ID.
    assert!(
        heard.lines().any(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            f.len() == 5 && f[0] == "notify" && f[2] == "hello" && f[4] == notifier
        }),
        "the daemon heard: {heard:?}\n{}",
        std::fs::read_to_string(env.path("portal-gtk.log")).unwrap_or_default()
    );
    drop(procs);
    let _ = Command::new("pkill")
        .args(["-f", &format!("at-spi.*{}", run.display())])
        .status();
    let _ = Command::new("fusermount3")
        .arg("-u")
        .arg(run.join("doc"))
        .stderr(Stdio::null())
        .status();
}
