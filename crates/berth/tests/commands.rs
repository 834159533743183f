//! images, inspect, tag, rmi, export, gc, fsck, help and user errors.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn imported(env: &Env, name: &str, tag: &str) -> Img {
    let img = Img::new(vec![(simple_layer(tag), Comp::Gzip)]).named(name);
    env.ok(&[
        "import",
        env.write(&format!("{tag}.tar"), &img.oci_archive())
            .to_str()
            .unwrap(),
    ]);
    img
}

#[test]
fn images_and_inspect_json() {
    let env = Env::new();
    let mut img = Img::new(vec![(simple_layer("i"), Comp::Gzip)]).named("app/x:1");
    img.labels
        .insert("org.berth.app.id".into(), "org.example.X".into());
    env.ok(&[
        "import",
        env.write("i.tar", &img.oci_archive()).to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["images", "--json"])).unwrap();
    assert_eq!(v[0]["names"][0], "app/x:1");
    assert_eq!(v[0]["digest"], img.manifest_digest());
    let table = env.ok(&["images"]);
    assert!(
        table.contains("app/x") && table.contains(&img.manifest_digest()[7..19]),
        "{table}"
    );
    let i: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "app/x:1", "--json"])).unwrap();
    assert_eq!(i["labels"]["org.berth.app.id"], "org.example.X");
    assert_eq!(i["layers"][0]["diff_id"], img.diff_ids()[0]);
    assert!(i["size"].as_u64().unwrap() > 0);
    // By ID prefix too.
    let by_id = env.ok(&["inspect", &img.manifest_digest()[7..15]]);
    assert!(by_id.contains("org.berth.app.id=org.example.X"));
}

#[test]
fn tag_adds_and_moves_names() {
    let env = Env::new();
    imported(&env, "t/a:1", "a");
    env.ok(&["tag", "t/a:1", "t/a:stable"]);
    let err = env.fails(&["tag", "t/a", "other"]); // `t/a` means t/a:latest: not there
    assert!(err.contains("t/a"), "{err}");
    assert_eq!(env.image_names(), vec!["t/a:1", "t/a:stable"]);
    // A name moves to the newer image.
    imported(&env, "t/b:1", "b");
    env.ok(&["tag", "t/b:1", "t/a:stable"]);
    assert_eq!(env.image_names(), vec!["t/a:1", "t/a:stable", "t/b:1"]);
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "t/a:stable", "--json"])).unwrap();
    assert!(v["names"].as_array().unwrap().iter().any(|n| n == "t/b:1"));
}

#[test]
fn tag_missing_image_is_a_clear_error() {
    let env = Env::new();
    let err = env.fails(&["tag", "nope:1", "x:1"]);
    assert!(err.contains("no image named \"nope:1\""), "{err}");
    let err = env.fails(&["tag", "x", "BAD NAME"]);
    assert!(err.contains("invalid image name"), "{err}");
}

#[test]
fn rmi_by_name_then_by_id_and_gc() {
    let env = Env::new();
    let a = imported(&env, "r/a:1", "a");
    env.ok(&["tag", "r/a:1", "r/a:2"]);
    let id = &a.manifest_digest()[7..19];
    let err = env.fails(&["rmi", id]);
    assert!(err.contains("--force"), "{err}");
    env.ok(&["rmi", "r/a:2"]);
    assert_eq!(env.image_names(), vec!["r/a:1"]);
    assert!(env.layer_dir(&a.diff_ids()[0]).is_dir(), "still referenced");
    let out = env.ok(&["rmi", id]);
    assert!(out.contains("Removed"), "{out}");
    assert_eq!(env.image_count(), 0);
    // rmi reclaimed the space at once.
    assert!(!env.layer_dir(&a.diff_ids()[0]).exists());
    assert_eq!(
        std::fs::read_dir(env.home().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    env.assert_fsck_clean();
}

#[test]
fn image_commands_print_json() {
    let env = Env::new();
    let a = imported(&env, "j/a:1", "a");
    let json = |args: &[&str]| -> serde_json::Value {
        let out = env.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let v = json(&["tag", "--json", "j/a:1", "j/a:2"]);
    assert_eq!(v["name"], "j/a:2");
    assert_eq!(v["image"], a.manifest_digest());
    let file = env.path("a.tar");
    let v = json(&["export", "--json", "j/a:2", file.to_str().unwrap()]);
    assert_eq!(v["name"], "j/a:2");
    assert_eq!(
        v["bytes"].as_u64(),
        std::fs::metadata(&file).ok().map(|m| m.len())
    );
    let v = json(&["rmi", "--json", "j/a:2"]);
    assert_eq!(v["untagged"][0], "j/a:2", "{v}");
    assert_eq!(v["removed"].as_array().map(Vec::len), Some(0), "{v}");
    let v = json(&["rmi", "--json", &a.manifest_digest()[7..19]]);
    assert_eq!(v["removed"][0], a.manifest_digest(), "{v}");
    assert!(v["bytes_freed"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(env.image_count(), 0);
}

#[test]
fn gc_removes_only_unreferenced_content() {
    let env = Env::new();
    let a = imported(&env, "g/a:1", "a");
    // Plant garbage: a stray blob, a stray layer dir, a temp file.
    let stray = sha(b"stray");
    std::fs::write(env.home().join("blobs/sha256").join(&stray[7..]), b"stray").unwrap();
    std::fs::create_dir_all(env.home().join("layers").join(&stray[7..]).join("x")).unwrap();
    std::fs::write(env.home().join("tmp/blob-1-2-3"), b"partial").unwrap();
    let r: serde_json::Value = serde_json::from_str(&env.ok(&["gc", "--json"])).unwrap();
    assert_eq!(r["blobs_removed"], 1);
    assert_eq!(r["layers_removed"], 1);
    assert_eq!(r["temp_removed"], 1);
    assert!(env.layer_dir(&a.diff_ids()[0]).is_dir());
    assert_eq!(env.image_names(), vec!["g/a:1"]);
    env.assert_fsck_clean();
}

#[test]
fn fsck_reports_corruption() {
    let env = Env::new();
    // Blobs kept as they came (by default a layer re-creates its blob;
    // import::layer_blobs_are_recreated_from_their_layers damages that).
    let a = Img::new(vec![(simple_layer("a"), Comp::Gzip)]).named("f/a:1");
    env.import_keeping_blobs(&a, "a.tar");
    let blobs = env.home().join("blobs/sha256");
    // Flip a byte in the layer blob.
    let layer_blob = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]))
        .unwrap();
    let mut b = std::fs::read(&layer_blob).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    std::fs::write(&layer_blob, b).unwrap();
    // And remove the unpacked layer.
    berth_rm(&env.layer_dir(&a.diff_ids()[0]));
    let o = env.run(&["fsck"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("is corrupt"), "{out}");
    assert!(out.contains("unpacked layer"), "{out}");
    let v: serde_json::Value =
        serde_json::from_slice(&env.run(&["fsck", "--json"]).stdout).unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), 2);
}

fn berth_rm(p: &std::path::Path) {
    std::fs::remove_dir_all(p).unwrap();
}

/// Bit for bit: layers berth compressed or left uncompressed (re-created
/// from their layers as they were), and any layer with BERTH_KEEP_BLOBS=1.
#[test]
fn export_round_trips_bit_for_bit() {
    round_trip(Comp::Berth, false);
    round_trip(Comp::Zstd, true);
}

fn round_trip(comp: Comp, keep: bool) {
    let env = Env::new();
    let img = Img::new(vec![
        (simple_layer("e"), comp),
        (simple_layer("f"), Comp::None),
    ])
    .named("e/x:1");
    if keep {
        env.import_keeping_blobs(&img, "e.tar");
    } else {
        env.ok(&[
            "import",
            env.write("e.tar", &img.oci_archive()).to_str().unwrap(),
        ]);
    }
    let out = env.path("out.tar");
    env.ok(&["export", "e/x:1", out.to_str().unwrap()]);
    let env2 = Env::new();
    let o = env2.ok(&["import", out.to_str().unwrap()]);
    assert!(o.contains("Imported e/x:1"), "{o}");
    let v: serde_json::Value = serde_json::from_str(&env2.ok(&["images", "--json"])).unwrap();
    assert_eq!(
        v[0]["digest"],
        img.manifest_digest(),
        "same manifest digest after a round trip"
    );
    // No temp file left next to the output.
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().contains("tmp")),
        "{left:?}"
    );
}

#[test]
fn export_to_unwritable_place_fails_cleanly() {
    let env = Env::new();
    imported(&env, "e/y:1", "y");
    let err = env.fails(&["export", "e/y:1", "/nonexistent-dir/out.tar"]);
    assert!(err.contains("/nonexistent-dir"), "{err}");
}

#[test]
fn user_errors_are_one_line_and_helpful() {
    let env = Env::new();
    let err = env.fails(&["import", "/no/such/file.tar"]);
    assert!(
        err.contains("cannot read /no/such/file.tar") && err.contains("No such file"),
        "{err}"
    );
    let err = env.fails(&["inspect", "ghost"]);
    assert!(err.contains("see `berth images`"), "{err}");
    let err = env.fails(&["import", env.write("empty.tar", b"").to_str().unwrap()]);
    assert!(err.contains("not a readable tar archive"), "{err}");
    let err = env.fails(&["import", "/etc/hostname", "--tag", "Bad:Tag:x"]);
    assert!(err.contains("invalid image name"), "{err}");
}

#[test]
fn every_command_has_help() {
    let env = Env::new();
    for c in [
        "import", "export", "images", "inspect", "tag", "rmi", "gc", "fsck",
    ] {
        let out = env.ok(&[c, "--help"]);
        assert!(out.contains("Usage: berth"), "{c}: {out}");
    }
    let out = env.ok(&["import", "--help"]);
    assert!(out.contains("Docker archive") && out.contains("zstd"));
}

#[test]
fn quiet_without_terminal() {
    // No progress bar escape codes when stderr is not a terminal.
    let env = Env::new();
    let img = Img::new(vec![(simple_layer("q"), Comp::Gzip)]).named("q:1");
    let o = env.run(&[
        "import",
        env.write("q.tar", &img.oci_archive()).to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn inspect_shows_the_app_and_its_permission_review() {
    let env = Env::new();
    let mut img = Img::new(vec![(simple_layer("p"), Comp::Gzip)]).named("app/viewer:1");
    img.labels
        .insert("org.berth.app.id".into(), "org.example.Viewer".into());
    img.labels
        .insert("org.berth.app.name".into(), "Viewer".into());
    img.labels.insert(
        "org.berth.app.permissions".into(),
        "socket=wayland;share=network;filesystem=home;socket=pulseaudio".into(),
    );
    env.ok(&[
        "import",
        env.write("v.tar", &img.oci_archive()).to_str().unwrap(),
    ]);
    let out = env.ok(&["inspect", "app/viewer:1"]);
    assert!(
        out.contains("App:          Viewer (org.example.Viewer)"),
        "{out}"
    );
    let home = out.find("Read and write your whole home folder").unwrap();
    let net = out.find("Use the internet").unwrap();
    let wayland = out.find("Show windows on your display (Wayland)").unwrap();
    assert!(home < net && net < wayland, "ranked by risk: {out}");
    assert!(out.contains("Use your microphone and speakers"));
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "app/viewer:1", "--json"])).unwrap();
    assert_eq!(v["app"]["id"], "org.example.Viewer");

    // A bad label is reported, not fatal.
    let mut bad = Img::new(vec![(simple_layer("q"), Comp::Gzip)]).named("app/bad:1");
    bad.labels
        .insert("org.berth.app.id".into(), "org.example.Bad".into());
    bad.labels.insert(
        "org.berth.app.permissions".into(),
        "socket=everything".into(),
    );
    env.ok(&[
        "import",
        env.write("b.tar", &bad.oci_archive()).to_str().unwrap(),
    ]);
    let out = env.ok(&["inspect", "app/bad:1"]);
    assert!(out.contains("App:          invalid: label org.berth.app.permissions: invalid permission \"socket=everything\""), "{out}");
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // `berth inspect X | head -0`: the reader is gone before berth writes.
    let env = Env::new();
    imported(&env, "pipe/x:1", "x");
    let mut c = env
        .cmd()
        .args(["inspect", "pipe/x:1", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stdout.take());
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn completions_and_man_pages_come_from_the_cli_definition() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "_berth()"),
        ("zsh", "#compdef berth"),
        ("fish", "complete -c berth"),
    ] {
        let out = env.ok(&["completions", shell]);
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(200)]
        );
        assert!(
            out.contains("install") && out.contains("fsck"),
            "{shell} lists the commands"
        );
    }
    let dir = env.path("man");
    let out = env.ok(&["man", dir.to_str().unwrap()]);
    assert!(out.contains("man pages"), "{out}");
    let page = std::fs::read_to_string(dir.join("berth-fsck.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("repair"), "the long help is in the page");
    assert!(dir.join("berth.1").exists() && dir.join("berth-runtime-create.1").exists());
}

#[test]
fn mistyped_names_get_a_suggestion() {
    let env = Env::new();
    busybox_image(&env, "example/tool:1", vec![]);
    let o = env.run(&["run", "example/tol:1", "--", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("berth: error: no image named"), "{err}");
    assert!(err.contains("did you mean example/tool:1?"), "{err}");
    // Nothing close: no guess.
    let o = env.run(&["run", "something/else", "--", "true"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("did you mean"));
}

#[test]
fn ps_quiet_and_update_with_nothing_to_do() {
    let env = Env::new();
    assert_eq!(env.ok(&["ps", "-q"]), "");
    assert!(env.ok(&["update"]).contains("Nothing to do"));
    busybox_image(&env, "example/sleep:1", vec![]);
    let mut child = env
        .cmd()
        .args(["run", "example/sleep:1", "--", "sleep", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    assert_eq!(
        env.ok(&["ps", "-q"]).trim(),
        inst["id"].as_str().unwrap(),
        "just the ID"
    );
    env.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = child.wait();
}

/// The progress bar counts in the units the summaries use (kB, MB: powers
/// of 1000), never KiB/MiB.
#[test]
fn progress_uses_the_summaries_units() {
    let env = Env::new();
    let data = noise(16 << 20, 0x1234_5678);
    let img = Img::new(vec![(layer(&[file("big", &data)]), Comp::Gzip)]).named("big:1");
    let p = env.write("big.tar", &img.oci_archive());
    // TERM as a desktop terminal sets it (the rootless pass has none).
    let (out, code) = env.in_terminal(&format!(
        "TERM=xterm {} import {}",
        berth_bin().display(),
        p.display()
    ));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("importing"), "a bar was drawn: {out}");
    assert!(out.contains(" MB"), "{out}");
    assert!(!out.contains("MiB") && !out.contains("KiB"), "{out}");
}
