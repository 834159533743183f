//! Working containers (`create`, `run --container`, `rm`) and `commit`:
//! a root that lasts across runs, and images made of what it changed.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::*;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn sh(env: &Env, args: &[&str], script: &str) -> String {
    let mut a: Vec<&str> = vec!["run"];
    a.extend(args);
    a.extend(["--", "/bin/sh", "-c", script]);
    env.ok(&a)
}

#[test]
fn a_container_keeps_its_root_and_commits_to_an_image() {
    let env = Env::new();
    busybox_image(
        &env,
        "bb:1",
        vec![
            file("etc/motd", b"from the image\n"),
            dir("srv"),
            file("srv/data", b"x\n").mode(0o666).owner(1234, 1234),
        ],
    );
    let c = json(&env.ok(&["create", "--name", "box", "bb:1", "--json"]));
    assert_eq!(c["name"], "box");
    let err = env.fails(&["create", "--name", "box", "bb:1"]);
    assert!(err.contains("exists already"), "{err}");
    let err = env.fails(&["create", "--name", "../x", "bb:1"]);
    assert!(err.contains("not a container name"), "{err}");

    // The root lasts across runs: a new file, a changed one, a removed one.
    sh(
        &env,
        &["--container", "box"],
        "mkdir -p /opt/work && echo notes > /opt/work/notes && echo changed > /etc/motd && rm /bin/hostname && touch /opt/.wh.notes",
    );
    // Rootless, every file of the image is the user's in the sandbox;
    // root's sandbox maps only root, so a file of another owner cannot be
    // copied up (EOVERFLOW).
    if !is_root() {
        sh(&env, &["--container", "box"], "echo y >> /srv/data");
    }
    let out = sh(
        &env,
        &["--container", "box"],
        "cat /opt/work/notes /etc/motd; ls /bin/hostname 2>/dev/null || echo gone",
    );
    assert_eq!(out, "notes\nchanged\ngone\n");
    // Runs of the image itself stay read-only and untouched.
    let out = sh(
        &env,
        &["bb:1"],
        "cat /etc/motd; touch /x 2>/dev/null || echo read-only",
    );
    assert_eq!(out, "from the image\nread-only\n");

    // One run at a time: a second run of the same container is refused.
    let mut first = env
        .cmd()
        .args(["run", "--container", "box", "--", "/bin/sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let err = env.fails(&["run", "--container", "box", "--", "/bin/true"]);
    assert!(err.contains("in use by a running instance"), "{err}");
    let err = env.fails(&["rm", "box"]);
    assert!(err.contains("in use"), "{err}");
    // Committed while it runs (frozen meanwhile where there is a freezer).
    let v = json(&env.ok(&["commit", "box", "my/box:1", "--json"]));
    let id = inst["id"].as_str().unwrap();
    let status = |env: &Env| json(&env.ok(&["ps", "--json"]))[0]["status"].clone();
    assert_eq!(status(&env), "running", "thawed after the commit");
    // One the user paused stays paused.
    env.ok(&["pause", id]);
    env.ok(&["commit", "box", "my/box:paused"]);
    assert_eq!(status(&env), "paused");
    env.ok(&["resume", id]);
    // A commit killed while it froze the instance: the next listing thaws
    // it (the user's own pause stays, as above).
    if !inst["cgroup"].is_null() {
        env.ok(&["pause", id]);
        let state = env
            .runtime_dir()
            .join("instances")
            .join(id)
            .join("state.json");
        let mut s = json(&std::fs::read_to_string(&state).unwrap());
        s["frozen_by"] = serde_json::json!([4_000_000, 1]);
        std::fs::write(&state, s.to_string()).unwrap();
        assert_eq!(status(&env), "running");
        let out = env.ok(&["enter", id, "--", "/bin/echo", "thawed"]);
        assert_eq!(out, "thawed\n");
    }
    env.ok(&["kill", id]);
    let _ = first.wait();
    assert_eq!(v["parent"], c["digest"], "{v}");
    assert!(v["files"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["removed"], 1, "{v}");
    // A file named as a whiteout would remove the image's file: left out.
    assert!(
        v["skipped"][0].as_str().unwrap().contains(".wh.notes"),
        "{v}"
    );
    let out = sh(
        &env,
        &["my/box:1"],
        "cat /opt/work/notes /etc/motd; ls /bin/hostname 2>/dev/null || echo gone",
    );
    assert_eq!(out, "notes\nchanged\ngone\n");
    let img = json(&env.ok(&["inspect", "--json", "my/box:1"]));
    let base = json(&env.ok(&["inspect", "--json", "bb:1"]));
    assert_eq!(
        img["labels"]["org.berth.commit.parent"], c["digest"],
        "{img}"
    );
    assert_eq!(
        img["layers"].as_array().unwrap().len(),
        base["layers"].as_array().unwrap().len() + 1
    );
    // A changed file keeps the owner the image gave it (rootless too,
    // where the store records it in an xattr).
    let top = img["layers"].as_array().unwrap().last().unwrap()["diff_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = env.layer_dir(&top).join("srv/data");
    if !is_root() {
        assert_eq!(std::fs::read(&data).unwrap(), b"x\ny\n");
        let mut buf = [0u8; 32];
        let n = rustix::fs::getxattr(&data, "user.berth.owner", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"1234:1234");
    }

    // gc keeps a container's image when its name goes.
    env.ok(&["rmi", "bb:1"]);
    env.ok(&["gc"]);
    // ... listed unnamed, named by its ID, and not removable by it.
    let digest = c["digest"].as_str().unwrap();
    let hex = &digest["sha256:".len()..];
    assert!(env.ok(&["containers"]).contains("<none>"));
    assert!(env.ok(&["images"]).contains(&hex[..12]));
    let img = json(&env.ok(&["inspect", "--json", &hex[..12]]));
    assert!(img.to_string().contains(hex), "{img}");
    let err = env.fails(&["rmi", &hex[..12]]);
    assert!(err.contains("working container box"), "{err}");
    assert_eq!(
        sh(&env, &["--container", "box"], "cat /opt/work/notes"),
        "notes\n"
    );
    env.assert_fsck_clean();
    // What a `berth rm` killed midway leaves goes with the next gc.
    let killed = env.home().join("containers/.rm-old-4000000/root/upper");
    std::fs::create_dir_all(&killed).unwrap();
    std::fs::write(killed.join("big"), vec![0u8; 4096]).unwrap();
    env.ok(&["gc"]);
    assert!(!env.home().join("containers/.rm-old-4000000").exists());
    env.ok(&["rm", "box"]);
    // Its image, listed only for it, is gone from the list with it.
    assert!(!env.ok(&["images"]).contains(&hex[..12]));
    assert!(
        json(&env.ok(&["containers", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    let err = env.fails(&["run", "--container", "box", "--", "/bin/true"]);
    assert!(err.contains("no container"), "{err}");
    assert!(
        std::fs::read_dir(env.home().join("containers"))
            .unwrap()
            .next()
            .is_none(),
        "the container's root is gone"
    );
}

#[test]
fn a_writable_run_commits_and_leaves_nothing() {
    let env = Env::new();
    busybox_image(&env, "bb:1", vec![]);
    let mut child = env
        .cmd()
        .args([
            "run",
            "--writable",
            "bb:1",
            "--",
            "/bin/sh",
            "-c",
            "echo made > /made; sleep 30",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let id = inst["id"].as_str().unwrap().to_owned();
    // The file is written as soon as the shell starts.
    let mut v = serde_json::Value::Null;
    for _ in 0..100 {
        v = json(&env.ok(&["commit", &id, "my/w:1", "--json"]));
        if v["files"].as_u64() == Some(1) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(v["files"], 1, "{v}");
    // A refused --with-data (no app) leaves the instance running.
    let err = env.fails(&["commit", &id, "my/w:2", "--with-data"]);
    assert!(err.contains("is no app"), "{err}");
    let ps = json(&env.ok(&["ps", "--json"]));
    assert_eq!(ps[0]["status"], "running", "{ps}");
    env.ok(&["kill", &id]);
    let _ = child.wait();
    assert_eq!(sh(&env, &["my/w:1"], "cat /made"), "made\n");
    // Its temporary root went with it.
    let left: Vec<_> = std::fs::read_dir(env.home().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // An instance on a read-only root has nothing to commit.
    let mut child = env
        .cmd()
        .args(["run", "bb:1", "--", "/bin/sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let id = inst["id"].as_str().unwrap().to_owned();
    let err = env.fails(&["commit", &id, "my/ro:1"]);
    assert!(err.contains("read-only root"), "{err}");
    env.ok(&["kill", &id]);
    let _ = child.wait();
    let err = env.fails(&["commit", "nothing-here"]);
    assert!(
        err.contains("no working container or running instance"),
        "{err}"
    );
    let err = env.fails(&["commit", "nothing-here", "my/x:1"]);
    assert!(
        err.contains("no working container or running instance"),
        "{err}"
    );
}

#[test]
fn an_app_commits_its_private_data_and_a_container_its_own_name() {
    let env = Env::new();
    let img = busybox_img(
        "test/notes:1",
        vec![],
        &[
            ("org.berth.app.id", "org.example.Notes"),
            ("org.berth.app.command", "/bin/sleep 30"),
        ],
    );
    let p = env.write("notes.tar", &img.oci_archive());
    env.ok(&["install", "--yes", p.to_str().unwrap()]);
    // The app runs on a read-only root and keeps its notes in its home.
    let mut child = env
        .cmd()
        .args([
            "run",
            "org.example.Notes",
            "--command",
            "/bin/sh",
            "--",
            "-c",
            "echo kept > \"$HOME/notes\"; echo $HOME > /dev/null; sleep 30",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&env);
    let id = inst["id"].as_str().unwrap().to_owned();
    let err = env.fails(&["commit", &id, "my/notes:2"]);
    assert!(err.contains("--with-data"), "{err}");
    let err = env.fails(&["commit", &id, "--with-data"]);
    assert!(err.contains("name the new image"), "{err}");
    let mut v = serde_json::Value::Null;
    for _ in 0..100 {
        v = json(&env.ok(&["snapshot", &id, "my/notes:2", "--with-data", "--json"]));
        if v["data_files"].as_u64() == Some(1) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    env.ok(&["kill", &id]);
    let _ = child.wait();
    assert!(
        v["layer"].is_null(),
        "no root layer of a read-only root: {v}"
    );
    assert!(v["data_layer"].is_string(), "{v}");
    // The new image carries the home as it was.
    let out = sh(&env, &["my/notes:2"], "cat \"$HOME/notes\"");
    assert_eq!(out, "kept\n");

    // ... and a run of it may change it, for that run only.
    let out = sh(
        &env,
        &["my/notes:2"],
        "echo more >> \"$HOME/notes\"; cat \"$HOME/notes\"",
    );
    assert_eq!(out, "kept\nmore\n");
    let out = sh(
        &env,
        &["my/notes:2"],
        "cat \"$HOME/notes\"; touch /x && echo writable",
    );
    assert_eq!(out, "kept\nwritable\n");

    // Installed as the app, on a machine without its data: the first run
    // starts with the home the image carries, later ones keep their own.
    env.ok(&["uninstall", "org.example.Notes", "--delete-data"]);
    env.ok(&["install", "--yes", "my/notes:2"]);
    let app = |script: &str| {
        env.ok(&[
            "run",
            "org.example.Notes",
            "--command",
            "/bin/sh",
            "--",
            "-c",
            script,
        ])
    };
    assert_eq!(
        app("cat \"$HOME/notes\"; echo new > \"$HOME/notes\""),
        "kept\n"
    );
    assert_eq!(app("cat \"$HOME/notes\""), "new\n");

    // A container keeps its home across runs, and its commit carries it;
    // its image takes the container's name by default.
    busybox_image(&env, "bb:1", vec![]);
    env.ok(&["create", "--name", "scratch", "bb:1"]);
    sh(
        &env,
        &["--container", "scratch"],
        "echo hi > /hi; echo draft > \"$HOME/draft\"",
    );
    assert_eq!(
        sh(&env, &["--container", "scratch"], "cat \"$HOME/draft\""),
        "draft\n"
    );
    let err = env.fails(&["commit", "scratch", "--with-data"]);
    assert!(err.contains("part of its root"), "{err}");
    let v = json(&env.ok(&["commit", "scratch", "--json"]));
    assert_eq!(v["image"], "scratch:latest", "{v}");
    assert_eq!(
        sh(&env, &["scratch"], "cat /hi \"$HOME/draft\""),
        "hi\ndraft\n"
    );
    // An image that carries no home still runs read-only, on an empty one.
    assert_eq!(
        sh(
            &env,
            &["bb:1"],
            "ls -A \"$HOME\"; touch /x 2>/dev/null || echo read-only"
        ),
        "read-only\n"
    );
}
