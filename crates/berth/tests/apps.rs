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
    let png = b"\x89PNG\r\n\x1a\nfake icon bytes";
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
                b"<mime-info/>",
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
        .join("exports/share/icons/hicolor/256x256/apps/org.example.Icon.png");
    assert_eq!(std::fs::read(&exported).unwrap(), png);
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
    let net = text.find("Full network access").unwrap();
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
    assert!(desktop.contains(&format!("run {ID} -- %f")), "{desktop}");
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

    // Network only when granted.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let net = format!("echo hi | nc -w 2 127.0.0.1 {port} && echo connected || echo refused");
    assert!(String::from_utf8_lossy(&run(&net).stdout).contains("refused"));
    env.ok(&["override", ID, "--grant", "share=network"]);
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
    assert!(r["blobs_removed"].as_u64().unwrap() >= 3, "{r}");
    assert!(!env.home().join(format!("data/{ID}")).exists());
}
