//! Store integrity: completion markers, content-verified layers, repair,
//! running instances as gc roots, leftovers, verified export, batched
//! index updates, read-only stores and the small input checks.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const ID: &str = "org.example.Keep";

fn import(env: &Env, img: &Img, file: &str) -> String {
    let p = env.write(file, &img.oci_archive());
    env.ok(&["import", p.to_str().unwrap()]);
    p.to_str().unwrap().to_owned()
}

/// Import keeping every blob as it came: tests of what the store does
/// with its blobs.
fn import_keeping_blobs(env: &Env, img: &Img, file: &str) -> String {
    env.import_keeping_blobs(img, file)
        .to_str()
        .unwrap()
        .to_owned()
}

/// `store_with_a`, its blob kept.
fn store_with_a_and_its_blob() -> (Env, Img) {
    let env = Env::new();
    let img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]).named("a:1");
    import_keeping_blobs(&env, &img, "a.tar");
    (env, img)
}

/// A store holding one small image, `a:1` (imported from `a.tar`).
fn store_with_a() -> (Env, Img) {
    let env = Env::new();
    let img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]).named("a:1");
    import(&env, &img, "a.tar");
    (env, img)
}

/// The store path (`blobs/sha256/HEX`) of an image's first gzip layer.
fn gzip_layer_blob(img: &Img) -> String {
    let files = img.oci_files();
    files
        .iter()
        .find(|(k, v)| k.starts_with("blobs/") && v.starts_with(&[0x1f, 0x8b]))
        .map(|(k, _)| k.clone())
        .unwrap()
}

fn record(env: &Env, diff_id: &str) -> std::path::PathBuf {
    env.home()
        .join("layers")
        .join(format!("{}.content", diff_id.trim_start_matches("sha256:")))
}

fn fsck(env: &Env, args: &[&str]) -> (bool, String) {
    let mut a = vec!["fsck"];
    a.extend_from_slice(args);
    let o = env.run(&a);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (o.status.success(), text)
}

#[test]
fn every_layer_has_a_content_record_written_last() {
    let (env, img) = store_with_a();
    let rec = std::fs::read_to_string(record(&env, &img.diff_ids()[0])).unwrap();
    assert!(rec.starts_with("berth-content 1\n"), "{rec}");
    assert!(rec.contains("/etc/hello f "), "{rec}");
    assert!(
        rec.contains(&sha(b"hello a\n")[7..]),
        "file digest recorded: {rec}"
    );
}

/// What a gc or rmi killed in the middle of deleting a layer used to
/// leave: a partial tree under its final name. Without its record it is
/// never reused.
#[test]
fn a_half_deleted_layer_is_replaced_not_reused() {
    let (env, img) = store_with_a();
    let path = env.path("a.tar").to_str().unwrap().to_owned();
    let d = &img.diff_ids()[0];
    env.ok(&["rmi", "a:1"]);
    // Simulate the kill: the record went first (as removal does), then
    // part of the tree.
    import(&env, &img, "a.tar");
    std::fs::remove_file(record(&env, d)).unwrap();
    std::fs::remove_file(env.layer_dir(d).join("etc/hello")).unwrap();
    let (clean, text) = fsck(&env, &[]);
    assert!(!clean, "an incomplete layer is damage: {text}");
    assert!(text.contains("incomplete"), "{text}");
    // Running refuses it instead of starting with files missing.
    let err = env.fails(&["run", "a:1", "--", "/bin/tool"]);
    assert!(err.contains("fsck --repair"), "{err}");
    // A new import of the same image unpacks it again.
    let out = env.ok(&["import", &path]);
    assert!(out.contains("1 new"), "{out}");
    assert_eq!(
        std::fs::read_to_string(env.layer_dir(d).join("etc/hello")).unwrap(),
        "hello a\n"
    );
    env.assert_fsck_clean();
}

#[test]
fn fsck_sees_inside_layers_and_repair_re_creates_them() {
    let env = Env::new();
    let img = Img::new(vec![
        (simple_layer("a"), Comp::Gzip),
        (
            layer(&[dir("data"), file("data/x", b"payload")]),
            Comp::Zstd,
        ),
    ])
    .named("a:1");
    import_keeping_blobs(&env, &img, "a.tar");
    let ids = img.diff_ids();
    // Emptied, deleted, re-moded, added.
    std::fs::write(env.layer_dir(&ids[0]).join("etc/hello"), "").unwrap();
    std::fs::remove_file(env.layer_dir(&ids[1]).join("data/x")).unwrap();
    std::fs::write(env.layer_dir(&ids[1]).join("data/new"), "x").unwrap();
    let (clean, text) = fsck(&env, &[]);
    assert!(!clean, "{text}");
    assert!(
        text.contains("/etc/hello changed (size, content)"),
        "{text}"
    );
    assert!(text.contains("/data/x is missing"), "{text}");
    assert!(text.contains("/data/new was added"), "{text}");
    assert!(
        text.contains("fsck --repair"),
        "the way out is named: {text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&env.run(&["fsck", "--json"]).stdout).unwrap();
    assert_eq!(
        json["damaged_layers"].as_array().unwrap().len(),
        2,
        "{json}"
    );

    let (clean, text) = fsck(&env, &["--repair"]);
    assert!(clean, "{text}");
    assert_eq!(
        text.matches("repaired: re-created layer").count(),
        2,
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(env.layer_dir(&ids[0]).join("etc/hello")).unwrap(),
        "hello a\n"
    );
    assert!(!env.layer_dir(&ids[1]).join("data/new").exists());
    env.assert_fsck_clean();
}

#[test]
fn repair_without_the_blob_says_what_is_missing() {
    let (env, img) = store_with_a();
    let path = env.path("a.tar").to_str().unwrap().to_owned();
    let d = &img.diff_ids()[0];
    // The layer re-creates its blob, so none is kept; its tree is damaged.
    assert!(!env.home().join(gzip_layer_blob(&img)).exists());
    std::fs::remove_file(env.layer_dir(d).join("etc/hello")).unwrap();
    let (clean, text) = fsck(&env, &["--repair"]);
    assert!(!clean, "{text}");
    assert!(text.contains("NOT REPAIRED"), "{text}");
    assert!(text.contains("no intact blob"), "{text}");
    assert!(text.contains("re-import"), "the way out is named: {text}");
    // The changed layer does not run.
    assert!(!env.layer_dir(d).exists());
    assert!(!env.run(&["run", "a:1", "--", "true"]).status.success());
    // Re-importing brings it back.
    env.ok(&["import", &path]);
    let (clean, text) = fsck(&env, &["--repair"]);
    assert!(clean, "{text}");
    assert!(env.layer_dir(d).join("etc/hello").exists());
}

#[test]
fn fsck_reports_unreferenced_blobs() {
    let (env, _) = store_with_a();
    let stray = sha(b"nobody uses me");
    std::fs::write(
        env.home().join("blobs/sha256").join(&stray[7..]),
        b"nobody uses me",
    )
    .unwrap();
    let (clean, text) = fsck(&env, &[]);
    assert!(clean, "{text}");
    assert!(text.contains("1 unreferenced blob(s)"), "{text}");
    assert!(text.contains(&stray[7..19]), "{text}");
    env.ok(&["gc"]);
    let (_, text) = fsck(&env, &[]);
    assert!(!text.contains("unreferenced blob"), "{text}");
}

#[test]
fn leftovers_of_dead_processes_are_removed_on_the_next_command() {
    let (env, _) = store_with_a();
    // What a killed import leaves: its half-unpacked layer and half-written
    // blob, named after a pid that no longer exists.
    let tmp = env.home().join("tmp");
    let dead = 4_000_000; // above pid_max's ceiling of 2^22
    std::fs::create_dir_all(tmp.join(format!("layer-{dead}-0-0000abcd/usr"))).unwrap();
    std::fs::write(
        tmp.join(format!("layer-{dead}-0-0000abcd/usr/big")),
        vec![7u8; 1 << 20],
    )
    .unwrap();
    std::fs::write(
        tmp.join(format!("blob-{dead}-1-0000abcd")),
        vec![1u8; 1 << 20],
    )
    .unwrap();
    // Something of a live process stays.
    let live = format!("blob-{}-0-0000abcd", std::process::id());
    std::fs::write(tmp.join(&live), b"busy").unwrap();
    env.ok(&["images"]);
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec![live], "only the live writer's file stays");
}

#[test]
fn export_verifies_what_it_streams() {
    let (env, img) = store_with_a_and_its_blob();
    let blob = gzip_layer_blob(&img);
    let p = env.home().join(blob);
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();
    let out = env.path("out.tar");
    let err = env.fails(&["export", "a:1", out.to_str().unwrap()]);
    assert!(err.contains("damaged"), "{err}");
    assert!(!out.exists(), "no archive from damaged blobs");
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("out.tar")
        })
        .collect();
    assert!(left.is_empty(), "no temp archive left");
}

#[test]
fn ten_thousand_names_import_in_one_index_write() {
    let env = Env::new();
    let img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    let mut files = img.oci_files();
    let idx: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let desc = idx["manifests"][0].clone();
    let manifests: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            let mut d = desc.clone();
            d["annotations"] =
                serde_json::json!({"org.opencontainers.image.ref.name": format!("many/n{i}:1")});
            d
        })
        .collect();
    files.insert(
        "index.json".into(),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap(),
    );
    let p = env.write("many.tar", &tar_of(&files));
    let t = Instant::now();
    let o = env
        .cmd()
        .args(["import", "--json", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A hang guard, not a benchmark: one rewrite per name took minutes.
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(env.image_names().len(), 10_000);
    assert_eq!(env.image_count(), 1);
}

#[test]
fn a_read_only_store_can_still_be_read() {
    let (env, img) = store_with_a();
    let home = env.home();
    let berth = berth_bin();
    let reads = format!(
        "for c in images 'inspect a:1' fsck; do {b} $c >/dev/null || {{ echo \"FAILED: $c\"; exit 1; }}; done; {b} images",
        b = berth.display()
    );
    let check = |o: std::process::Output| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{text}");
        assert!(text.contains(&img.manifest_digest()[7..19]), "{text}");
    };
    // A read-only mount (EROFS), in a private mount namespace; rootless in
    // a user namespace of our own.
    let mut c = std::process::Command::new("unshare");
    if !is_root() {
        c.arg("-r");
    }
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "set -e; mount --bind {h} {h}; mount -o remount,bind,ro {h}; {reads}",
            h = home.display()
        ))
        .env("BERTH_HOME", &home)
        .env("BERTH_RUNTIME_DIR", env.runtime_dir());
    check(c.output().unwrap());
    // Another user's store (EACCES): only the unpacked layers stay as they
    // are, since their modes are part of their content. Root ignores modes.
    if !is_root() {
        let fixed = [
            "",
            "locks",
            "tmp",
            "blobs",
            "blobs/sha256",
            "index.json",
            "oci-layout",
        ];
        let mut paths: Vec<std::path::PathBuf> = fixed.iter().map(|p| home.join(p)).collect();
        for e in std::fs::read_dir(home.join("locks")).unwrap() {
            paths.push(e.unwrap().path());
        }
        let chmod = |mode: &str| {
            let st = std::process::Command::new("chmod")
                .arg(mode)
                .args(&paths)
                .status()
                .unwrap();
            assert!(st.success());
        };
        chmod("a-w");
        let o = env.cmd_raw("sh").args(["-c", &reads]).output().unwrap();
        chmod("u+w");
        check(o);
    }
}

#[test]
fn a_truncated_index_is_named_as_damage() {
    let (env, _) = store_with_a();
    let p = env.home().join("index.json");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let err = env.fails(&["run", "a:1", "--", "/bin/tool"]);
    assert!(err.contains("damaged or truncated"), "{err}");
    assert!(!err.contains("reinstall"), "{err}");
    let (clean, text) = fsck(&env, &[]);
    assert!(!clean && text.contains("index.json"), "{text}");
}

#[test]
fn a_layer_labelled_gzip_must_be_gzip() {
    let env = Env::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::None)]).named("a:1");
    img.label_as = Some(Comp::Gzip);
    let p = env.write("a.tar", &img.oci_archive());
    let err = env.fails(&["import", p.to_str().unwrap()]);
    assert!(
        err.contains("media type says gzip but its bytes are an uncompressed tar"),
        "{err}"
    );
    assert_eq!(env.image_count(), 0);
    env.assert_fsck_clean();
}

#[test]
fn an_image_for_another_cpu_is_warned_about_and_not_installed() {
    let env = Env::new();
    let mut img = busybox_img(
        "example/arm:1",
        vec![],
        &[
            ("org.berth.app.id", "org.example.Arm"),
            ("org.berth.app.command", "/bin/sh -c"),
        ],
    );
    img.arch = Some("arm64".into());
    let p = env.write("arm.tar", &img.oci_archive());
    let o = env.run(&["import", p.to_str().unwrap()]);
    assert!(o.status.success());
    let warn = String::from_utf8_lossy(&o.stderr);
    assert!(
        warn.contains("linux/arm64") && warn.contains("linux/amd64"),
        "{warn}"
    );
    let err = env.fails(&["install", "example/arm:1", "--yes"]);
    assert!(err.contains("built for linux/arm64"), "{err}");
    let err = env.fails(&["run", "example/arm:1", "--", "true"]);
    assert!(err.contains("built for linux/arm64"), "{err}");
}

#[test]
fn pax_sparse_entries_are_refused_plainly() {
    let env = Env::new();
    // A PAX header announcing a GNU sparse file (format 1.0), as GNU tar
    // --sparse --format=posix writes.
    let mut b = tar::Builder::new(Vec::new());
    let pax: Vec<(&str, &[u8])> = vec![
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"big"),
        ("GNU.sparse.realsize", b"1048576"),
    ];
    b.append_pax_extensions(pax).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("GNUSparseFile.0/big").unwrap();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &b"1\n0\n"[..]).unwrap();
    let tarball = b.into_inner().unwrap();
    let img = Img::new(vec![(tarball, Comp::Gzip)]).named("sparse:1");
    let p = env.write("s.tar", &img.oci_archive());
    let err = env.fails(&["import", p.to_str().unwrap()]);
    assert!(err.contains("PAX sparse"), "{err}");
    env.assert_fsck_clean();
}

#[test]
fn a_full_disk_says_how_much_is_needed_and_suggests_gc() {
    if !is_root()
        && !have_tool(
            "a_full_disk_says_how_much_is_needed_and_suggests_gc",
            "unshare",
        )
    {
        return;
    }
    let env = Env::new();
    let big = env.write(
        "big.tar",
        &Img::new(vec![(
            layer(&[file("blob", &noise(4 << 20, 0x9e37_79b9))]),
            Comp::Gzip,
        )])
        .named("big:1")
        .oci_archive(),
    );
    let home = env.path("small");
    std::fs::create_dir_all(&home).unwrap();
    // A 2 MiB tmpfs as the store, in a private mount namespace (rootless:
    // in a user namespace of our own).
    let script = format!(
        "mount -t tmpfs -o size=2m tmpfs {h} && {b} import {big}",
        h = home.display(),
        b = berth_bin().display(),
        big = big.display()
    );
    let mut c = std::process::Command::new("unshare");
    if !is_root() {
        c.arg("-r");
    }
    c.args(["-m", "sh", "-c", &script])
        .env("BERTH_HOME", &home)
        .env("BERTH_RUNTIME_DIR", env.runtime_dir());
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("not enough space"), "{err}");
    assert!(err.contains("berth gc"), "{err}");
    assert!(err.contains("MB"), "sizes are given: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_app_dir_without_current_pins_nothing_and_repair_removes_it() {
    let (env, img) = store_with_a();
    // What an install killed before `current` was written leaves behind.
    let dir = env.home().join("apps/org.example.Half/deployments");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("1.json"),
        serde_json::to_vec(&serde_json::json!({
            "serial": 1, "app_id": "org.example.Half", "name": "Half",
            "image": img.manifest_digest(), "origin": "a.tar",
            "command": [], "granted": "", "installed_unix": 0
        }))
        .unwrap(),
    )
    .unwrap();
    assert!(!env.ok(&["list"]).contains("org.example.Half"));
    env.ok(&["rmi", "a:1"]);
    env.ok(&["gc"]);
    assert!(
        !env.layer_dir(&img.diff_ids()[0]).exists(),
        "the half-installed app pins nothing"
    );
    let (clean, text) = fsck(&env, &["--repair"]);
    assert!(clean, "{text}");
    assert!(text.contains("without a current deployment"), "{text}");
    assert!(!env.home().join("apps/org.example.Half").exists());
}

fn install(env: &Env, archive: &str) {
    let o = env
        .cmd()
        .args(["install", archive, "--yes"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn app_img(tag: &str) -> Img {
    busybox_img(
        &format!("example/keep:{tag}"),
        vec![
            file("etc/keep", b"still here\n"),
            dir("data"),
            file("data/x", b"x\n"),
        ],
        &[
            ("org.berth.app.id", ID),
            ("org.berth.app.command", "/bin/sh -c"),
        ],
    )
}

/// A running app keeps every file through gc, rmi and uninstall of its
/// image: running instances are gc roots.
#[test]
fn a_running_app_keeps_its_files_through_gc_rmi_and_uninstall() {
    let env = Env::new();
    let p = import(&env, &app_img("1"), "keep.tar");
    install(&env, &p);
    let child = env
        .cmd()
        .args([
            "run",
            ID,
            "--",
            "while [ ! -e /tmp/go ]; do sleep 0.1; done; cat /etc/keep /data/x; ls /bin/busybox",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    env.ok(&["rmi", "--force", "example/keep:1"]);
    env.ok(&["uninstall", ID]);
    // A gc that does not see this session's runtime dir (cron, ssh) still
    // sees the app's pin in the store.
    let o = env
        .cmd()
        .env("BERTH_RUNTIME_DIR", env.path("elsewhere"))
        .arg("gc")
        .output()
        .unwrap();
    let gc = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && gc.contains("running apps"),
        "gc says what it kept: {gc}"
    );
    env.assert_fsck_clean();
    // Let the app go on: it must still see everything.
    let id = inst["id"].as_str().unwrap().to_owned();
    env.ok(&["enter", &id, "--", "/bin/touch", "/tmp/go"]);
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out, "still here\nx\n/bin/busybox\n");
    // After it ended, gc removes what it kept.
    let r: serde_json::Value = serde_json::from_str(&env.ok(&["gc", "--json"])).unwrap();
    assert!(r["layers_removed"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["kept_for_running"].as_u64().unwrap(), 0, "{r}");
    env.assert_fsck_clean();
}

#[test]
fn uninstall_with_delete_data_waits_for_the_app_to_end() {
    let env = Env::new();
    let p = import(&env, &app_img("1"), "keep.tar");
    install(&env, &p);
    let mut child = env
        .cmd()
        .args(["run", ID, "--", "sleep 30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let err = env.fails(&["uninstall", ID, "--delete-data"]);
    assert!(err.contains("is running"), "{err}");
    assert!(env.ok(&["list"]).contains(ID), "still installed");
    env.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = child.wait();
    env.ok(&["uninstall", ID, "--delete-data"]);
}

#[test]
fn gnu_sparse_files_are_stored_in_full_with_a_warning() {
    let env = Env::new();
    let src = env.path("sparse-src");
    std::fs::create_dir_all(&src).unwrap();
    let f = std::fs::File::create(src.join("holes")).unwrap();
    f.set_len(1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"end", (1 << 20) - 3).unwrap();
    drop(f);
    let tarball = env.path("sparse.tar");
    let st = std::process::Command::new("tar")
        .args(["--sparse", "--format=gnu", "-cf"])
        .arg(&tarball)
        .args(["-C", src.to_str().unwrap(), "holes"])
        .status()
        .unwrap();
    assert!(st.success());
    let layer_bytes = std::fs::read(&tarball).unwrap();
    assert_eq!(layer_bytes[156], b'S', "GNU tar wrote a sparse entry");
    let img = Img::new(vec![(layer_bytes, Comp::Gzip)]).named("sparse:1");
    let p = env.write("s.tar", &img.oci_archive());
    let o = env.run(&["import", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("sparse file(s) stored in full"), "{err}");
    let data = std::fs::read(env.layer_dir(&img.diff_ids()[0]).join("holes")).unwrap();
    assert_eq!(data.len(), 1 << 20);
    assert!(data.ends_with(b"end") && data[..1000].iter().all(|b| *b == 0));
    env.assert_fsck_clean();
}

/// Blobs lost from the store come back from the registry the app was
/// installed from, by digest.
#[test]
fn repair_refetches_lost_blobs_from_the_origin_registry() {
    const T: &str = "repair_refetches_lost_blobs_from_the_origin_registry";
    if !have_tool(T, "docker-registry") {
        return;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    let r = format!("localhost:{}/apps/keep:1", reg.port);
    import(&author, &app_img("1"), "keep.tar");
    author.ok(&["push", "example/keep:1", &r]);
    let env = Env::new();
    env.ok(&["install", "--yes", &r]);
    let img = app_img("1");
    let d = &img.diff_ids()[0];
    // The layer blob is not kept (the layer re-creates it) and the tree
    // is damaged: nothing local can re-create it.
    let blob = gzip_layer_blob(&img);
    assert!(!env.home().join(blob).exists());
    std::fs::remove_file(env.layer_dir(d).join("etc/keep")).unwrap();
    let (clean, text) = fsck(&env, &[]);
    assert!(!clean, "{text}");
    let (clean, text) = fsck(&env, &["--repair"]);
    assert!(clean, "{text}");
    assert!(text.contains("refetched"), "{text}");
    assert_eq!(env.ok(&["run", ID, "--", "cat /etc/keep"]), "still here\n");
    drop(reg);
}

/// A store from before content records: its layers are recorded once, as
/// they are, and keep working.
#[test]
fn a_store_without_content_records_is_upgraded_once() {
    let (env, img) = store_with_a();
    let d = &img.diff_ids()[0];
    std::fs::remove_file(record(&env, d)).unwrap();
    std::fs::remove_file(env.home().join("berth-store")).unwrap();
    env.ok(&["images"]);
    assert!(record(&env, d).exists(), "recorded on first use");
    assert_eq!(
        std::fs::read_to_string(env.home().join("berth-store")).unwrap(),
        "2"
    );
    env.assert_fsck_clean();
    // After the upgrade, a tree without a record is never trusted again.
    std::fs::remove_file(record(&env, d)).unwrap();
    env.ok(&["images"]);
    assert!(!record(&env, d).exists());
    let (clean, _) = fsck(&env, &[]);
    assert!(!clean);
}
