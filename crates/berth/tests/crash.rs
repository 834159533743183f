//! Crash safety (kill -9 mid-import) and concurrent berth processes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

/// An image big enough that importing it takes a while: incompressible
/// data in several files over a few layers.
fn big_image(seed: u32, name: &str) -> Img {
    let mut layers = vec![];
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    for l in 0..3 {
        let mut entries = vec![dir("data")];
        for f in 0..40 {
            let mut data = vec![0u8; 256 << 10];
            for b in data.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            entries.push(file(&format!("data/l{l}-f{f}"), &data));
        }
        layers.push((layer(&entries), Comp::Gzip));
    }
    Img::new(layers).named(name)
}

#[test]
fn kill_9_during_import_leaves_a_clean_store() {
    let env = Env::new();
    // A previously imported image must survive every crash intact.
    let keep = Img::new(vec![(simple_layer("keep"), Comp::Gzip)]).named("keep:1");
    env.ok(&[
        "import",
        env.write("keep.tar", &keep.oci_archive()).to_str().unwrap(),
    ]);
    let big = env.write("big.tar", &big_image(7, "big:1").oci_archive());

    // Time one full import to spread the kills across it.
    let t = Instant::now();
    env.ok(&["import", big.to_str().unwrap()]);
    let full = t.elapsed();
    env.ok(&["rmi", "big:1"]);

    let mut killed_midway = 0;
    for i in 1..=8u32 {
        let delay = full.mul_f64(f64::from(i) / 10.0);
        let mut child = env
            .cmd()
            .args(["import", big.to_str().unwrap()])
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed_midway += 1;
        }
        env.assert_fsck_clean();
        assert!(
            env.image_names().contains(&"keep:1".to_owned()),
            "earlier image lost"
        );
        let d = env.layer_dir(&keep.diff_ids()[0]);
        assert_eq!(
            std::fs::read_to_string(d.join("etc/hello")).unwrap(),
            "hello keep\n"
        );
        // The killed import can simply be run again.
        if status.code().is_none() {
            env.ok(&["import", big.to_str().unwrap()]);
            env.assert_fsck_clean();
            env.ok(&["rmi", "big:1"]);
        }
    }
    assert!(
        killed_midway >= 3,
        "only {killed_midway} of 8 imports were killed mid-way; test is not testing"
    );
    // gc clears whatever the kills left behind.
    env.ok(&["gc"]);
    assert_eq!(
        std::fs::read_dir(env.home().join("tmp")).unwrap().count(),
        0
    );
    env.assert_fsck_clean();
}

#[test]
fn concurrent_imports_lose_no_update() {
    let env = Env::new();
    let n = 6;
    let shared = (simple_layer("shared"), Comp::Gzip);
    let paths: Vec<_> = (0..n)
        .map(|i| {
            let img = Img::new(vec![
                shared.clone(),
                (simple_layer(&format!("own{i}")), Comp::Gzip),
            ])
            .named(&format!("c{i}:1"));
            env.write(&format!("c{i}.tar"), &img.oci_archive())
        })
        .collect();
    let children: Vec<_> = paths
        .iter()
        .map(|p| {
            env.cmd()
                .args(["import", p.to_str().unwrap()])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let want: Vec<String> = (0..n).map(|i| format!("c{i}:1")).collect();
    assert_eq!(env.image_names(), want);
    // The shared layer is unpacked exactly once.
    assert_eq!(
        std::fs::read_dir(env.home().join("layers"))
            .unwrap()
            .count(),
        n + 1
    );
    env.assert_fsck_clean();
}

#[test]
fn gc_waits_for_a_running_import() {
    let env = Env::new();
    let big = env.write("big.tar", &big_image(3, "big:2").oci_archive());
    let mut imp = env
        .cmd()
        .args(["import", big.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let gc = env.run(&["gc"]);
    assert!(gc.status.success());
    assert!(imp.wait().unwrap().success());
    // Whatever the interleaving, the import's blobs survived gc.
    assert_eq!(env.image_names(), vec!["big:2"]);
    env.assert_fsck_clean();
}
