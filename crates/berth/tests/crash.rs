//! Crash safety (kill -9 mid-import) and concurrent berth processes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

/// An image big enough that importing it takes a while: incompressible
/// data in several files over a few layers.
fn big_image(seed: u32, name: &str) -> Img {
    let mut layers = vec![];
    for l in 0..3u64 {
        let mut entries = vec![dir("data")];
        for f in 0..40u64 {
            let data = noise(256 << 10, u64::from(seed) * 1_000_003 + l * 101 + f + 1);
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
    // The shared layer is unpacked exactly once, each with its record.
    let entries: Vec<_> = std::fs::read_dir(env.home().join("layers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.iter().filter(|p| p.is_dir()).count(), n + 1);
    assert_eq!(
        entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "content"))
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

// ---- kills at the N-th mutating syscall of each command ----

/// The syscalls that change the store; a kill lands before the N-th one.
const MUTATIONS: &str = "write,pwrite64,openat,rename,renameat,renameat2,unlink,unlinkat,\
mkdir,mkdirat,rmdir,fsync,fdatasync,syncfs,symlinkat,linkat,fchmod,fchmodat,fchown,fchownat,\
fsetxattr,ftruncate,flock";

/// How often each mutating syscall runs in one thread of `berth ARGS`
/// (the most of any thread).
fn count_mutations(env: &Env, args: &[&str]) -> Vec<(String, usize)> {
    let log = env.path("count.strace");
    let st = env
        .cmd_raw("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args(["-e", &format!("trace={MUTATIONS},execve"), "--"])
        .arg(berth_bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    // Programs berth starts (desktop database tools, pasta) do not count:
    // how much they write depends on the host.
    let me = berth_bin().to_string_lossy().into_owned();
    let others: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| l.contains("execve(") && !l.contains(me.as_str()))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // strace counts `when=N` per thread and per syscall.
    let mut per = std::collections::HashMap::<(&str, &str), usize>::new();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        if let (Some(pid), Some(call)) = (w.next(), w.next()) {
            let name = call.split('(').next().unwrap_or(call);
            if !others.contains(pid)
                && name != "execve"
                && !name.starts_with('<')
                && !name.starts_with("+++")
            {
                *per.entry((pid, name)).or_default() += 1;
            }
        }
    }
    let mut by_call = std::collections::BTreeMap::<String, usize>::new();
    for ((_, call), n) in per {
        let e = by_call.entry(call.to_owned()).or_default();
        *e = (*e).max(n);
    }
    by_call.into_iter().collect()
}

/// Run `berth ARGS`, SIGKILLed at the `n`-th call of `syscall`; true if
/// the kill landed.
fn kill_at(env: &Env, args: &[&str], (syscall, n): &(String, usize)) -> bool {
    let log = env.path("kill.strace");
    let _ = env
        .cmd_raw("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args([
            "-e",
            &format!("trace={syscall}"),
            "-e",
            &format!("inject={syscall}:signal=KILL:when={n}"),
            "--",
        ])
        .arg(berth_bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("killed by SIGKILL")
}

/// After a kill: fsck is clean, or `--repair` makes it clean; the app
/// installed before still runs and sees its files.
fn recovered(env: &Env, what: &str) {
    if !env.run(&["fsck"]).status.success() {
        let o = env.run(&["fsck", "--repair"]);
        assert!(
            o.status.success(),
            "{what}: fsck --repair did not make the store clean:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = env
        .cmd()
        .args(["run", KEEP, "--", "cat /etc/keep /data/keep"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "kept\nkept data\n",
        "{what}: the app installed before lost files: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const KEEP: &str = "org.example.Keep";
const TOOL: &str = "org.example.Tool";

fn app(id: &str, name: &str, tag: &str, files: Vec<E>) -> Img {
    busybox_img(
        name,
        files,
        &[
            ("org.berth.app.id", id),
            ("org.berth.app.command", "/bin/sh -c"),
            ("org.berth.app.version", tag),
        ],
    )
}

/// 22 kill points (a syscall and its call number) spread over every call
/// of every mutating syscall a command makes.
fn points(counts: Vec<(String, usize)>) -> Vec<(String, usize)> {
    let all: Vec<(String, usize)> = counts
        .into_iter()
        .flat_map(|(call, n)| (1..=n).map(move |k| (call.clone(), k)))
        .collect();
    if all.len() <= 22 {
        return all;
    }
    (0..22).map(|i| all[i * all.len() / 22].clone()).collect()
}

#[test]
fn every_command_survives_a_kill_at_any_point() {
    const T: &str = "every_command_survives_a_kill_at_any_point";
    for t in ["strace", "docker-registry"] {
        if !have_tool(T, t) {
            return;
        }
    }
    let env = Env::new();
    let keep = app(
        KEEP,
        "example/keep:1",
        "1",
        vec![
            file("etc/keep", b"kept\n"),
            dir("data"),
            file("data/keep", b"kept data\n"),
        ],
    );
    let keep_tar = env.write("keep.tar", &keep.oci_archive());
    env.ok(&["install", "--yes", keep_tar.to_str().unwrap()]);
    let big = env.write("big.tar", &big_image(3, "big:1").oci_archive());
    let tool_version = |tag: &str, text: &[u8]| {
        let img = app(
            TOOL,
            &format!("example/tool:{tag}"),
            tag,
            vec![file("etc/tool", text)],
        );
        env.write(&format!("tool{tag}.tar"), &img.oci_archive())
    };
    let tool_tar = tool_version("1", b"tool\n");
    let big_s = big.to_str().unwrap();
    let tool_s = tool_tar.to_str().unwrap();
    let mut landed = std::collections::BTreeMap::<&str, usize>::new();

    // import
    let n = count_mutations(&env, &["import", big_s]);
    env.ok(&["rmi", "big:1"]);
    for k in points(n) {
        if kill_at(&env, &["import", big_s], &k) {
            *landed.entry("import").or_default() += 1;
        }
        recovered(&env, &format!("import killed at {k:?}"));
        env.ok(&["import", big_s]);
        env.assert_fsck_clean();
        env.ok(&["rmi", "big:1"]);
    }

    // rmi (which also collects what it freed)
    env.ok(&["import", big_s]);
    let n = count_mutations(&env, &["rmi", "big:1"]);
    for k in points(n) {
        env.ok(&["import", big_s]);
        if kill_at(&env, &["rmi", "big:1"], &k) {
            *landed.entry("rmi").or_default() += 1;
        }
        recovered(&env, &format!("rmi killed at {k:?}"));
        if env.image_names().contains(&"big:1".to_owned()) {
            env.ok(&["rmi", "big:1"]);
        }
        env.ok(&["gc"]);
        env.assert_fsck_clean();
        assert!(!env.image_names().contains(&"big:1".to_owned()));
    }

    // gc with garbage to remove: an imported image made unreferenced.
    let unname = |env: &Env| {
        let p = env.home().join("index.json");
        let mut idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        idx["manifests"]
            .as_array_mut()
            .unwrap()
            .retain(|d| d["annotations"]["org.opencontainers.image.ref.name"] != "big:1");
        std::fs::write(&p, serde_json::to_vec(&idx).unwrap()).unwrap();
    };
    env.ok(&["import", big_s]);
    unname(&env);
    let n = count_mutations(&env, &["gc"]);
    for k in points(n) {
        env.ok(&["import", big_s]);
        unname(&env);
        if kill_at(&env, &["gc"], &k) {
            *landed.entry("gc").or_default() += 1;
        }
        recovered(&env, &format!("gc killed at {k:?}"));
        env.ok(&["gc"]);
        env.assert_fsck_clean();
    }

    // install, then uninstall
    let n = count_mutations(&env, &["install", "--yes", tool_s]);
    for k in points(n) {
        if kill_at(&env, &["install", "--yes", tool_s], &k) {
            *landed.entry("install").or_default() += 1;
        }
        recovered(&env, &format!("install killed at {k:?}"));
        env.ok(&["install", "--yes", tool_s]);
        env.assert_fsck_clean();
        assert_eq!(
            env.ok(&["run", TOOL, "--", "cat /etc/tool"]),
            "tool\n",
            "retried install works"
        );
        // Back to the state the count was taken in.
        env.ok(&["uninstall", TOOL]);
        env.ok(&["rmi", "example/tool:1"]);
        env.ok(&["gc"]);
    }
    // The runs above left the app's data dir; every round starts without.
    env.ok(&["install", "--yes", tool_s]);
    env.ok(&["uninstall", TOOL, "--delete-data"]);
    env.ok(&["install", "--yes", tool_s]);
    let n = count_mutations(&env, &["uninstall", TOOL, "--delete-data"]);
    for k in points(n) {
        env.ok(&["install", "--yes", tool_s]);
        if kill_at(&env, &["uninstall", TOOL, "--delete-data"], &k) {
            *landed.entry("uninstall").or_default() += 1;
        }
        recovered(&env, &format!("uninstall killed at {k:?}"));
        if env.ok(&["list"]).contains(TOOL) {
            env.ok(&["uninstall", TOOL, "--delete-data"]);
        }
        env.assert_fsck_clean();
        assert!(!env.ok(&["list"]).contains(TOOL));
        assert!(
            !env.home().join("apps").join(TOOL).exists(),
            "no invisible half-removed app"
        );
    }

    // update from a registry: the tag moves between two versions, and each
    // round updates the installed app to the other one.
    let reg = start_registry(env.dir.path(), None);
    let r = format!("localhost:{}/apps/tool:stable", reg.port);
    env.ok(&["import", tool_s]);
    let t2 = tool_version("2", b"tool 2\n");
    env.ok(&["import", t2.to_str().unwrap()]);
    env.ok(&["push", "example/tool:1", &r]);
    env.ok(&["install", "--yes", &r]);
    env.ok(&["push", "example/tool:2", &r]);
    let n = count_mutations(&env, &["update", "--yes"]);
    for (i, k) in points(n).into_iter().enumerate() {
        let (next, want) = if i % 2 == 0 {
            ("example/tool:1", "tool\n")
        } else {
            ("example/tool:2", "tool 2\n")
        };
        env.ok(&["push", next, &r]);
        if kill_at(&env, &["update", "--yes"], &k) {
            *landed.entry("update").or_default() += 1;
        }
        recovered(&env, &format!("update killed at {k:?}"));
        env.ok(&["update", "--yes"]);
        env.assert_fsck_clean();
        assert_eq!(env.ok(&["run", TOOL, "--", "cat /etc/tool"]), want);
    }
    drop(reg);
    for cmd in ["import", "rmi", "gc", "install", "uninstall", "update"] {
        let n = landed.get(cmd).copied().unwrap_or(0);
        assert!(n >= 20, "only {n} kills of {cmd} landed: {landed:?}");
    }
}
