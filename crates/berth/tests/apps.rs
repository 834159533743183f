//! Apps: install with permission review and consent, deployments, menu
//! export, overrides, and running an app with exactly its permissions.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::*;

const ID: &str = "org.example.Tool";

fn app_archive(env: &Env, file: &str, perms: &str, extra_layer: &str) -> String {
    let img = busybox_img(
        &format!("example/tool:{file}"),
        vec![file_entry(extra_layer)],
        &[
            ("org.berth.app.id", ID),
            ("org.berth.app.name", "Example Tool"),
            ("org.berth.app.command", "/bin/sh -c"),
            ("org.berth.app.permissions", perms),
            (
                "org.berth.app.desktop",
                "[Desktop Entry]\\nType=Application\\nName=Example Tool\\nExec=/bin/tool %f\\nMimeType=text/plain;\\n",
            ),
        ],
    );
    env.write(&format!("{file}.tar"), &img.oci_archive())
        .to_str()
        .unwrap()
        .to_owned()
}

fn file_entry(tag: &str) -> E {
    file("etc/version", tag.as_bytes())
}

#[test]
fn icon_is_exported_and_removed() {
    let env = Env::new();
    let png = &png_header(128);
    let img = busybox_img(
        "example/icon:1",
        vec![
            dir("usr"),
            dir("usr/share"),
            file("usr/share/tool-128.png", png),
            dir("usr/share/mime"),
            dir("usr/share/mime/packages"),
            file(
                "usr/share/mime/packages/org.example.Icon.xml",
                br#"<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info"><mime-type type="application/x-berth-test-icon"><glob pattern="*.bticon"/></mime-type></mime-info>"#,
            ),
            file(
                "usr/share/mime/packages/org.other.Sneaky.xml",
                b"<mime-info/>",
            ),
            symlink("usr/share/evil.png", "/etc/shadow"),
        ],
        &[
            ("org.berth.app.id", "org.example.Icon"),
            ("org.berth.app.icon", "/usr/share/tool-128.png"),
        ],
    );
    let p = env.write("icon.tar", &img.oci_archive());
    assert!(install(&env, p.to_str().unwrap(), true).status.success());
    let exported = env
        .home()
        .join("exports/share/icons/hicolor/128x128/apps/org.example.Icon.png");
    assert_eq!(std::fs::read(&exported).unwrap(), *png);
    let mime = env.home().join("exports/share/mime/packages");
    assert!(mime.join("org.example.Icon.xml").exists());
    assert!(
        !mime.join("org.other.Sneaky.xml").exists(),
        "only files named after the app are exported"
    );
    env.ok(&["uninstall", "org.example.Icon"]);
    assert!(!exported.exists());
    assert!(!mime.join("org.example.Icon.xml").exists());
    // An icon that is a symlink out of the image is not followed.
    let evil = busybox_img(
        "example/evil:1",
        vec![
            dir("usr"),
            dir("usr/share"),
            symlink("usr/share/evil.png", "/etc/shadow"),
        ],
        &[
            ("org.berth.app.id", "org.example.Evil"),
            ("org.berth.app.icon", "/usr/share/evil.png"),
        ],
    );
    let p = env.write("evil.tar", &evil.oci_archive());
    let o = install(&env, p.to_str().unwrap(), true);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("no icon exported"), "{}", out(&o));
    assert!(
        !env.home()
            .join("exports/share/icons/hicolor/256x256/apps/org.example.Evil.png")
            .exists()
    );
}

/// Install non-interactively (stdin is not a terminal).
fn install(env: &Env, path: &str, yes: bool) -> std::process::Output {
    let mut args = vec!["install", path];
    if yes {
        args.push("--yes");
    }
    env.cmd().args(&args).stdin(Stdio::null()).output().unwrap()
}

/// Install with `--yes`, the user's home being `home` (the store inside it).
fn install_with_home(env: &Env, path: &str, home: &std::path::Path) {
    let o = env
        .cmd()
        .args(["install", path, "--yes"])
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn install_reviews_asks_consent_and_exports_to_the_menu() {
    let env = Env::new();
    let v1 = app_archive(
        &env,
        "v1",
        "socket=wayland;filesystem=home;share=network",
        "1",
    );
    // Without a terminal and without --yes: refused, nothing installed.
    let o = install(&env, &v1, false);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Installing Example Tool (org.example.Tool)"),
        "{text}"
    );
    let home = text.find("Read and write your whole home folder").unwrap();
    let net = text.find("Use the internet").unwrap();
    let way = text.find("Show windows on your display (Wayland)").unwrap();
    assert!(home < net && net < way, "ranked by risk: {text}");
    assert!(
        text.contains("high risk") && text.contains("rerun with --yes"),
        "{text}"
    );
    assert_eq!(env.ok(&["list", "--json"]).trim(), "[]");

    let o = install(&env, &v1, true);
    assert!(o.status.success(), "{}", out(&o));
    let list: serde_json::Value = serde_json::from_str(&env.ok(&["list", "--json"])).unwrap();
    assert_eq!(list[0]["id"], ID);
    assert_eq!(list[0]["deployment"], 1);
    let desktop = std::fs::read_to_string(
        env.home()
            .join(format!("exports/share/applications/{ID}.desktop")),
    )
    .unwrap();
    assert!(
        desktop.contains(&format!("run {ID} -- @@ %f @@")),
        "{desktop}"
    );
    assert!(desktop.contains("MimeType=text/plain;"), "{desktop}");
    assert!(
        !desktop.contains("/bin/tool"),
        "the image's program is not on the host: {desktop}"
    );

    // Same permissions again: no question. New ones: only those are shown.
    let o = install(&env, &v1, false);
    assert!(
        o.status.success() && out(&o).contains("No new permissions."),
        "{}",
        out(&o)
    );
    let v2 = app_archive(
        &env,
        "v2",
        "socket=wayland;filesystem=home;share=network;device=dri",
        "2",
    );
    let o = install(&env, &v2, false);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Updating")
            && text.contains("new permissions")
            && text.contains("Use the graphics card"),
        "{text}"
    );
    assert!(
        !text.contains("whole home folder"),
        "already granted, not asked again: {text}"
    );
    let o = install(&env, &v2, true);
    assert!(o.status.success());
    let info: serde_json::Value = serde_json::from_str(&env.ok(&["info", ID, "--json"])).unwrap();
    assert_eq!(info["deployment"], 3);

    let o = env.run(&["uninstall", ID]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        !env.home()
            .join(format!("exports/share/applications/{ID}.desktop"))
            .exists()
    );
    assert_eq!(env.ok(&["list", "--json"]).trim(), "[]");
    let err = env.fails(&["info", ID]);
    assert!(
        err.contains("not installed") || err.contains("no app"),
        "{err}"
    );
}

#[test]
fn images_without_app_labels_are_refused() {
    let env = Env::new();
    let img = busybox_img("plain:1", vec![], &[]);
    let p = env.write("plain.tar", &img.oci_archive());
    let err = env.fails(&["install", p.to_str().unwrap(), "--yes"]);
    assert!(err.contains("declares no app"), "{err}");
    let bad = busybox_img(
        "bad:1",
        vec![],
        &[
            ("org.berth.app.id", "org.example.Bad"),
            ("org.berth.app.permissions", "device=everything"),
        ],
    );
    let p = env.write("bad.tar", &bad.oci_archive());
    let err = env.fails(&["install", p.to_str().unwrap(), "--yes"]);
    assert!(
        err.contains("invalid permission \"device=everything\""),
        "{err}"
    );
}

#[test]
fn runs_with_exactly_its_permissions() {
    let env = Env::new();
    let v1 = app_archive(&env, "v1", "", "1");
    assert!(install(&env, &v1, true).status.success());
    let run = |script: &str| {
        env.cmd()
            .args(["run", ID, "--", script])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // A private, persistent home.
    let o = run("echo kept > $HOME/note; cat /etc/version");
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1");
    let o = run("cat $HOME/note");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "kept");
    assert_eq!(
        std::fs::read_to_string(env.home().join(format!("data/{ID}/note"))).unwrap(),
        "kept\n"
    );

    // Native look: host fonts under /run/host/fonts, and fontconfig told.
    let o = run(
        "cat /etc/fonts/conf.d/50-berth-host-fonts.conf; ls /run/host/fonts >/dev/null && echo fonts-visible; echo $XDG_DATA_DIRS",
    );
    let text = out(&o);
    assert!(
        text.contains("<dir>/run/host/fonts</dir>") && text.contains("/run/host/share"),
        "{text}"
    );
    if std::path::Path::new("/usr/share/fonts").is_dir() {
        assert!(text.contains("fonts-visible"), "{text}");
    }

    // A folder granted read-only through an override.
    let shared = env.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("in.txt"), b"granted\n").unwrap();
    let grant = format!("filesystem={}:ro", shared.display());
    let script = format!(
        "cat {0}/in.txt; echo x > {0}/out.txt 2>&1 || echo write-refused",
        shared.display()
    );
    let o = run(&script);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("No such file")
            || !String::from_utf8_lossy(&o.stdout).contains("granted"),
        "not granted yet: {}",
        out(&o)
    );
    env.ok(&["override", ID, "--grant", &grant]);
    let perms: serde_json::Value =
        serde_json::from_str(&env.ok(&["permissions", ID, "--json"])).unwrap();
    assert_eq!(perms[0]["permission"], grant);
    assert_eq!(perms[0]["source"], "override");
    let o = run(&script);
    let text = out(&o);
    assert!(
        text.contains("granted") && text.contains("Read-only file system"),
        "{text}"
    );
    assert!(!shared.join("out.txt").exists());
    env.ok(&["override", ID, "--reset"]);
    assert_eq!(env.ok(&["permissions", ID, "--json"]).trim(), "[]");

    // The host's loopback services: not with share=network (the app's
    // own network, through pasta), only with share=host-network.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let net = format!("echo hi | nc -w 2 127.0.0.1 {port} && echo connected || echo refused");
    assert!(String::from_utf8_lossy(&run(&net).stdout).contains("refused"));
    if have_tool("runs_with_exactly_its_permissions", "pasta") {
        env.ok(&["override", ID, "--grant", "share=network"]);
        let o = run(&net);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("refused"),
            "{}",
            out(&o)
        );
        env.ok(&["override", ID, "--reset"]);
    }
    env.ok(&["override", ID, "--grant", "share=host-network"]);
    let accept = std::thread::spawn(move || l.accept().is_ok());
    assert!(String::from_utf8_lossy(&run(&net).stdout).contains("connected"));
    assert!(accept.join().unwrap());
}

#[test]
fn gc_keeps_installed_apps() {
    let env = Env::new();
    let v1 = app_archive(&env, "v1", "", "1");
    assert!(install(&env, &v1, true).status.success());
    env.ok(&["rmi", "example/tool:v1"]);
    env.ok(&["gc"]);
    let o = env
        .cmd()
        .args(["run", ID, "--", "cat /etc/version"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1", "{}", out(&o));
    env.assert_fsck_clean();
    env.ok(&["uninstall", ID, "--delete-data"]);
    let r: serde_json::Value = serde_json::from_str(&env.ok(&["gc", "--json"])).unwrap();
    // Its manifest and config; its layer (whose blob it re-creates) too.
    assert!(r["blobs_removed"].as_u64().unwrap() >= 2, "{r}");
    assert!(r["layers_removed"].as_u64().unwrap() >= 1, "{r}");
    assert!(!env.home().join(format!("data/{ID}")).exists());
}

/// A PNG header (signature and IHDR) for an n x n image.
fn png_header(n: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&n.to_be_bytes());
    png.extend_from_slice(&n.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png
}

fn labelled_app(env: &Env, file: &str, id: &str, labels: &[(&str, &str)], extra: Vec<E>) -> String {
    let mut all = vec![
        ("org.berth.app.id", id),
        ("org.berth.app.command", "/bin/sh -c"),
    ];
    all.extend_from_slice(labels);
    let img = busybox_img(&format!("example/{file}:1"), extra, &all);
    env.write(&format!("{file}.tar"), &img.oci_archive())
        .to_str()
        .unwrap()
        .to_owned()
}

/// What GLib, which launches menu entries, reads from an exported file:
/// the command line, and the keys of [Desktop Entry].
fn glib_view(path: &std::path::Path) -> (String, Vec<String>) {
    let script = r#"
import sys, gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
kf = GLib.KeyFile()
kf.load_from_file(sys.argv[1], GLib.KeyFileFlags.NONE)
keys, _ = kf.get_keys("Desktop Entry")
info = Gio.DesktopAppInfo.new_from_filename(sys.argv[1])
cmds = [info.get_commandline() if info else "NONE"]
for g in kf.get_groups()[0]:
    if g.startswith("Desktop Action "):
        cmds.append(kf.get_string(g, "Exec"))
# Each command as GLib splits it into argv.
print("\x1e".join("\x1f".join(GLib.shell_parse_argv(c)[1]) for c in cmds))
print("\x1e".join(keys))
"#;
    let o = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "GLib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut lines = text.lines();
    let cmd = lines.next().unwrap_or("").to_owned();
    let keys = lines
        .next()
        .unwrap_or("")
        .split('\x1e')
        .map(str::to_owned)
        .collect();
    (cmd, keys)
}

#[test]
fn exported_entries_run_only_berth() {
    if !have_tool("exported_entries_run_only_berth", "/usr/bin/python3")
        || std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import gi; gi.require_version('Gio', '2.0')"])
            .status()
            .map_or(true, |s| !s.success())
    {
        assert!(
            std::env::var_os("BERTH_TEST_REQUIRE_TOOLS").is_none(),
            "python3-gi is needed (apt-get install python3-gi gir1.2-glib-2.0)"
        );
        skip("exported_entries_run_only_berth", "python3-gi is missing");
        return;
    }
    let env = Env::new();
    let berth = berth_bin();
    for (n, entry) in [
        "[Desktop Entry]\\nType=Application\\nName=A\\nExec =sh -c 'touch /tmp/pwned-a'\\n",
        "[Desktop Entry]\\nType=Application\\nName=A\\nExec\t=sh -c 'touch /tmp/pwned-b'\\n",
        "[Desktop Entry]\\nType=Application\\nName=A\\nExec=/bin/tool %U\\nDBusActivatable=true\\nX-GNOME-Autostart-enabled=true\\nX-GNOME-Autostart-Phase=Initialization\\nActions=x;\\n\\n[Desktop Action x]\\nName=X\\nExec = sh -c evil\\n",
        "[Desktop Entry]\\nType=Application\\nName=A\\nExec=/bin/tool \"$(touch /tmp/pwned-c)\" %k %c\\nTryExec=/bin/sh\\n",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("org.example.Entry{n}");
        let p = labelled_app(&env, &format!("entry{n}"), &id, &[("org.berth.app.desktop", entry)], vec![]);
        let o = install(&env, &p, true);
        assert!(o.status.success(), "{}", out(&o));
        let path = env.home().join(format!("exports/share/applications/{id}.desktop"));
        let (cmds, keys) = glib_view(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        // berth is the program; what follows `--` goes to the app, inside.
        for c in cmds.split('\x1e') {
            let argv: Vec<&str> = c.split('\x1f').collect();
            let berth = berth.display().to_string();
            assert_eq!(&argv[..3], [berth.as_str(), "run", id.as_str()], "GLib would run {argv:?} from\n{text}");
            assert!(argv.len() == 3 || argv[3] == "--", "{argv:?}");
        }
        for k in &keys {
            assert!(
                ["Type", "Name", "Exec", "Icon", "Actions", "X-Berth-App", "MimeType"].contains(&k.as_str()),
                "key {k} exported:\n{text}"
            );
        }
    }
    // Labels that would add lines or rewrite the review are refused.
    for (n, (k, v)) in [
        ("org.berth.app.name", "Fine\nExec=sh -c evil"),
        ("org.berth.app.name", "Fine\u{1b}[1A\u{1b}[2K"),
        (
            "org.berth.app.desktop",
            "[Desktop Entry]\\nType=Link\\nName=A\\nURL=file:///etc/shadow\\n",
        ),
        (
            "org.berth.app.desktop",
            "[Desktop Entry]\\nName=A\\nName=B\\nExec=x\\n",
        ),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("org.example.Bad{n}");
        let p = labelled_app(&env, &format!("bad{n}"), &id, &[(*k, *v)], vec![]);
        let o = install(&env, &p, true);
        assert!(!o.status.success(), "{k}={v:?} was accepted: {}", out(&o));
        assert!(
            env.run(&["info", &id]).status.code() != Some(0),
            "{id} installed"
        );
        assert!(!out(&o).contains('\u{1b}'), "raw escape in {}", out(&o));
    }
    // Host names are not for apps: reserved namespaces and host entries.
    let p = labelled_app(&env, "shell", "org.gnome.Shell", &[], vec![]);
    let o = install(&env, &p, true);
    assert!(
        !o.status.success() && out(&o).contains("namespace"),
        "{}",
        out(&o)
    );
    let data = env.path("xdg");
    std::fs::create_dir_all(data.join("applications")).unwrap();
    std::fs::write(
        data.join("applications/org.example.HostApp.desktop"),
        b"[Desktop Entry]\n",
    )
    .unwrap();
    let p = labelled_app(&env, "hostapp", "org.example.HostApp", &[], vec![]);
    let o = env
        .cmd()
        .args(["install", &p, "--yes"])
        .env("XDG_DATA_DIRS", &data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !o.status.success() && out(&o).contains("already used"),
        "{}",
        out(&o)
    );
    // Icons by content: an XPM named .png is not exported as a PNG.
    let p = labelled_app(
        &env,
        "xpm",
        "org.example.Xpm",
        &[("org.berth.app.icon", "/icon.png")],
        vec![file(
            "icon.png",
            b"/* XPM */\nstatic char *x[] = {\"1 1 1 1\"};\n",
        )],
    );
    let o = install(&env, &p, true);
    assert!(
        o.status.success() && out(&o).contains("no icon exported"),
        "{}",
        out(&o)
    );
    assert!(
        !env.home()
            .join("exports/share/icons")
            .join("hicolor/256x256/apps/org.example.Xpm.png")
            .exists()
    );
}

#[test]
fn review_shows_control_characters_escaped() {
    let env = Env::new();
    let p = labelled_app(
        &env,
        "spoof",
        "org.example.Spoof",
        &[(
            "org.berth.app.permissions",
            "filesystem=/.;filesystem=~/.;filesystem=//;filesystem=~/.bashrc;share=network",
        )],
        vec![],
    );
    let o = install(&env, &p, true);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw control in {text:?}"
    );
    // Every spelling of the root and the home is reviewed as what it is.
    assert!(
        text.contains("all files on the computer") && text.contains("(filesystem=host)"),
        "{text}"
    );
    assert!(
        text.contains("your whole home folder") && text.contains("(filesystem=home)"),
        "{text}"
    );
    assert_eq!(text.matches("high risk").count(), 3, "{text}");
    assert!(
        !text.contains("Read and write  ") && !text.contains("Read and write /."),
        "{text}"
    );
    // What is stored and applied is what was reviewed.
    let perms: serde_json::Value =
        serde_json::from_str(&env.ok(&["permissions", "org.example.Spoof", "--json"])).unwrap();
    let got: Vec<&str> = perms
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["permission"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            "filesystem=host",
            "filesystem=home",
            "filesystem=~/.bashrc",
            "share=network"
        ]
    );
    // A permission the user types with escapes is refused before it is written.
    let o = env.run(&[
        "override",
        "org.example.Spoof",
        "--grant",
        "env=A=\u{1b}]0;x\u{7}",
    ]);
    assert!(!o.status.success());
    assert!(!out(&o).contains('\u{1b}'), "{:?}", out(&o));
    assert!(
        !env.home()
            .join("apps/org.example.Spoof/overrides.toml")
            .exists()
    );
    env.ok(&["override", "org.example.Spoof", "--grant", "filesystem=//"]);
    assert!(
        env.ok(&["permissions", "org.example.Spoof"])
            .contains("filesystem=host")
    );
}

#[test]
fn grants_never_reach_berths_own_state() {
    let env = Env::new();
    let id = "org.example.SelfGrant";
    let p = labelled_app(
        &env,
        "selfgrant",
        id,
        &[("org.berth.app.permissions", "filesystem=home")],
        vec![],
    );
    // The store sits in the user's home, as ~/.local/share/berth does.
    let home = env.dir.path();
    install_with_home(&env, &p, home);
    let store = env.home();
    let overrides = store.join(format!("apps/{id}/overrides.toml"));
    let script = format!(
        "printf 'grant = [\\\"filesystem=host\\\"]\\n' > {ov} && echo wrote-overrides; \
         echo '[Desktop Entry]' > {st}/exports/share/applications/evil.desktop && echo wrote-export; \
         ls {st} >/dev/null 2>&1 && ls {st} | grep -q apps && echo saw-store; \
         mv {st} {home}/moved && echo moved-store; \
         echo x > {home}/ok-file && echo wrote-home",
        ov = overrides.display(),
        st = store.display(),
        home = home.display()
    );
    let o = env
        .cmd()
        .args(["run", id, "--", &script])
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = out(&o);
    assert!(text.contains("wrote-home"), "the home grant works: {text}");
    for bad in [
        "wrote-overrides",
        "wrote-export",
        "saw-store",
        "moved-store",
    ] {
        assert!(!text.contains(bad), "{bad}: {text}");
    }
    assert!(!overrides.exists());
    assert!(
        !store
            .join("exports/share/applications/evil.desktop")
            .exists()
    );
    assert_eq!(
        env.ok(&["permissions", id, "--json"])
            .matches("filesystem=host")
            .count(),
        0
    );
}

#[test]
fn a_symlink_does_not_widen_a_grant() {
    let env = Env::new();
    let id = "org.example.Widen";
    let home = env.dir.path();
    let p = labelled_app(
        &env,
        "widen",
        id,
        &[(
            "org.berth.app.permissions",
            "filesystem=~/Downloads/x:ro;filesystem=~/Downloads/ok:ro",
        )],
        vec![],
    );
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_test"), b"secret key").unwrap();
    std::fs::create_dir_all(home.join("Downloads/real")).unwrap();
    std::fs::write(home.join("Downloads/real/file"), b"plain file").unwrap();
    // As an app granted ~/Downloads could plant them.
    std::os::unix::fs::symlink("../.ssh", home.join("Downloads/x")).unwrap();
    std::os::unix::fs::symlink("real", home.join("Downloads/ok")).unwrap();
    let run = |script: &str| {
        env.cmd()
            .args(["run", id, "--", script])
            .env("HOME", home)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    install_with_home(&env, &p, home);
    let o = run(&format!(
        "cat {0}/Downloads/x/id_test {0}/.ssh/id_test 2>/dev/null; cat {0}/Downloads/ok/file",
        home.display()
    ));
    let text = out(&o);
    assert!(!text.contains("secret key"), "{text}");
    assert!(text.contains("more than was granted"), "{text}");
    // A symlink to a place of the same risk still works.
    assert!(text.contains("plain file"), "{text}");
}

/// A link the app plants in its own (persistent) home never leads a
/// grant's mount point onto the host: the launch is refused instead.
#[test]
fn a_link_planted_in_the_apps_home_does_not_steer_a_grant() {
    let env = Env::new();
    let id = "org.example.Plant";
    let home = env.dir.path();
    let p = labelled_app(&env, "plant", id, &[], vec![]);
    std::fs::create_dir_all(home.join("Docs/sub")).unwrap();
    let outside = env.path("outside");
    let run = |script: &str| {
        env.cmd()
            .args(["run", id, "--", script])
            .env("HOME", home)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    install_with_home(&env, &p, home);
    // Without the grant, the app plants a link where the grant will go.
    let o = run(&format!(
        "ln -s {} \"$HOME/Docs\" && echo planted",
        outside.display()
    ));
    assert!(out(&o).contains("planted"), "{}", out(&o));
    env.ok(&["override", id, "--grant", "filesystem=~/Docs/sub:ro"]);
    let o = run("echo ran");
    let text = out(&o);
    assert!(
        !o.status.success() && text.contains("symbolic link"),
        "{:?}: {text}",
        o.status
    );
    assert!(!outside.exists(), "a mount point was made on the host");
}

/// `--command` runs another program with the app's permissions, instead
/// of appending to the app's own command.
#[test]
fn command_replaces_the_apps_command() {
    let env = Env::new();
    let v1 = app_archive(&env, "v1", "", "1");
    assert!(install(&env, &v1, true).status.success());
    // The app's command is `/bin/sh -c`: arguments are its script.
    assert_eq!(env.ok(&["run", ID, "--", "echo via-app"]), "via-app\n");
    assert_eq!(
        env.ok(&["run", ID, "--command", "/bin/echo", "--", "hello", "there"]),
        "hello there\n"
    );
    assert_eq!(
        env.ok(&["run", ID, "--command", "/bin/cat", "--", "/etc/version"]),
        "1"
    );
}

/// Scripts get the engine's typed results: install, override and
/// uninstall print one JSON document on stdout and nothing else there.
#[test]
fn lifecycle_commands_print_json() {
    let env = Env::new();
    let v1 = app_archive(&env, "v1", "share=network", "1");
    let json = |args: &[&str]| -> serde_json::Value {
        let o = env.cmd().args(args).stdin(Stdio::null()).output().unwrap();
        assert!(o.status.success(), "{}", out(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", out(&o)))
    };
    // Consent is still needed: --json does not ask, it refuses.
    let o = env
        .cmd()
        .args(["install", "--json", &v1])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !o.status.success() && out(&o).contains("--yes"),
        "{}",
        out(&o)
    );
    let i = json(&["install", "--json", "--yes", &v1]);
    assert_eq!(i["id"], ID, "{i}");
    assert_eq!(i["deployment"], 1, "{i}");
    let p = json(&["override", "--json", ID, "--revoke", "share=network"]);
    assert_eq!(p.as_array().map(Vec::len), Some(0), "{p}");
    let p = json(&["override", "--json", ID, "--grant", "socket=x11"]);
    assert_eq!(p[0]["permission"], "socket=x11", "{p}");
    assert_eq!(p[0]["source"], "override", "{p}");
    let u = json(&["uninstall", "--json", ID, "--delete-data"]);
    assert_eq!(u["id"], ID, "{u}");
    assert_eq!(json(&["list", "--json"]).as_array().map(Vec::len), Some(0));
}

/// Software centres list berth apps: each gets a metainfo file generated
/// from the image's own (never copied) and a catalog entry, both valid
/// AppStream; uninstall takes them away.
#[test]
fn appstream_metainfo_and_catalog_are_exported() {
    let test = "appstream_metainfo_and_catalog_are_exported";
    if !have_tool(test, "appstreamcli") {
        return;
    }
    let env = Env::new();
    let metainfo = r#"<?xml version="1.0" encoding="UTF-8"?>
<component type="desktop-application">
  <id>org.upstream.Other</id>
  <metadata_license>CC0-1.0</metadata_license>
  <project_license>MIT</project_license>
  <name>Upstream Name</name>
  <summary>Edit text with care</summary>
  <description><p>A small text editor that opens files quickly and keeps your work safe.</p></description>
  <url type="homepage">https://example.org/tool</url>
  <launchable type="desktop-id">evil.desktop</launchable>
  <content_rating type="oars-1.1"/>
</component>
"#;
    let with = labelled_app(
        &env,
        "with.tar",
        ID,
        &[("org.berth.app.name", "Example Tool")],
        vec![
            dir("usr"),
            dir("usr/share"),
            dir("usr/share/metainfo"),
            file(
                "usr/share/metainfo/org.example.Tool.metainfo.xml",
                metainfo.as_bytes(),
            ),
        ],
    );
    env.ok(&["install", &with, "--yes"]);
    let without = labelled_app(
        &env,
        "without.tar",
        "org.example.Plain",
        &[("org.berth.app.name", "Plain")],
        vec![],
    );
    env.ok(&["install", &without, "--yes"]);

    let share = env.home().join("exports/share");
    let validate = |p: &std::path::Path| {
        let o = std::process::Command::new("appstreamcli")
            .args(["validate", "--no-net"])
            .arg(p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}: {}", p.display(), out(&o));
    };
    let mine = share.join("metainfo/org.example.Tool.metainfo.xml");
    validate(&mine);
    validate(&share.join("metainfo/org.example.Plain.metainfo.xml"));
    let text = std::fs::read_to_string(&mine).unwrap();
    assert!(text.contains("<id>org.example.Tool</id>"), "{text}");
    assert!(
        text.contains("<name>Example Tool</name>"),
        "the reviewed name: {text}"
    );
    assert!(
        text.contains("<summary>Edit text with care</summary>"),
        "{text}"
    );
    assert!(
        text.contains("org.example.Tool.desktop</launchable>"),
        "{text}"
    );
    assert!(
        !text.contains("evil") && !text.contains("Upstream"),
        "{text}"
    );

    let catalog = share.join("swcatalog/xml/berth.xml");
    let c = std::fs::read_to_string(&catalog).unwrap();
    assert!(c.contains("<id>org.example.Tool</id>") && c.contains("<id>org.example.Plain</id>"));
    // appstreamcli reads the catalog (converting it to YAML).
    let yml = env.path("catalog.yml");
    let o = std::process::Command::new("appstreamcli")
        .arg("convert")
        .arg(&catalog)
        .arg(&yml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        std::fs::read_to_string(&yml)
            .unwrap()
            .contains("org.example.Plain")
    );

    env.ok(&["uninstall", "org.example.Plain"]);
    assert!(
        !share
            .join("metainfo/org.example.Plain.metainfo.xml")
            .exists()
    );
    let c = std::fs::read_to_string(&catalog).unwrap();
    assert!(!c.contains("org.example.Plain") && c.contains("org.example.Tool"));
}
