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
    busybox_image(&env, "bb:1", vec![file("etc/motd", b"from the image\n")]);
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
        "mkdir -p /opt/work && echo notes > /opt/work/notes && echo changed > /etc/motd && rm /bin/hostname",
    );
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
    env.ok(&["kill", id]);
    let _ = first.wait();
    assert_eq!(v["parent"], c["digest"], "{v}");
    assert!(v["files"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["removed"], 1, "{v}");
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

    // gc keeps a container's image when its name goes.
    env.ok(&["rmi", "bb:1"]);
    env.ok(&["gc"]);
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
    let err = env.fails(&["commit", "nothing-here", "my/x:1"]);
    assert!(
        err.contains("no working container or running instance"),
        "{err}"
    );
}
