//! The author's side: `berth runtime create`, `berth build`, `berth bundle`
//! and installing bundles; Containerfile builds by buildah.
//!
//! The full workflow test builds a real Debian runtime and SDK with
//! mmdebstrap, compiles an Xlib program in the SDK, bundles it, installs it
//! from the bundle and sees its window on Xvfb. The other tests use a
//! busybox base so they are fast.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The example app, embedded: the rootless pass cannot read the checkout.
const HELLO_C: &str = include_str!("../../../examples/hello-x11/hello.c");
const HELLO_MAKEFILE: &str = include_str!("../../../examples/hello-x11/Makefile");
const HELLO_TOML: &str = include_str!("../../../examples/hello-x11/berth.toml");
const HELLO_PNG: &[u8] = include_bytes!("../../../examples/hello-x11/hello.png");

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (p, b) in files {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    }
}

/// A busybox "runtime" with the tools the small builds use.
fn busybox_runtime(env: &Env, name: &str) {
    let extra = ["mkdir", "cp", "chmod", "false", "rm", "printf"]
        .iter()
        .map(|a| symlink(&format!("bin/{a}"), "busybox"))
        .collect();
    busybox_image(env, name, extra);
}

const GREETER: &str = r#"
id = "org.example.Greeter"
name = "Greeter"
command = "/app/bin/greet"
permissions = ["share=ipc"]
runtime = "base/busybox:1"

[build]
source = "src"
steps = [
  "mkdir -p $BERTH_DEST/bin $BERTH_DEST/share",
  "cp greet.sh $BERTH_DEST/bin/greet && chmod 755 $BERTH_DEST/bin/greet",
  "printf '%s\n' \"$GREETING\" > $BERTH_DEST/share/greeting",
]
env = { GREETING = "hi there" }
"#;

fn greeter_project(env: &Env, dir: &str, body: &str) -> PathBuf {
    let root = env.path(dir);
    write_tree(
        &root,
        &[
            ("berth.toml", GREETER.as_bytes()),
            (
                "src/greet.sh",
                format!("#!/bin/sh\necho {body}; cat /app/share/greeting\n").as_bytes(),
            ),
        ],
    );
    root.join("berth.toml")
}

#[test]
fn build_is_reproducible_and_runs() {
    let env = Env::new();
    busybox_runtime(&env, "base/busybox:1");
    let m1 = greeter_project(&env, "p1", "greetings");
    let a = json(&env.ok(&["build", "--json", m1.to_str().unwrap()]));
    // Same files elsewhere, with other mtimes: the same app layer.
    std::thread::sleep(Duration::from_millis(1100));
    let m2 = greeter_project(&env, "p2", "greetings");
    let b = json(&env.ok(&[
        "build",
        "--json",
        "-t",
        "greeter:again",
        m2.to_str().unwrap(),
    ]));
    assert_eq!(a["app_layer"], b["app_layer"], "rebuild changed the layer");
    assert_eq!(a["app_diff_id"], b["app_diff_id"]);
    // A changed source changes it.
    let m3 = greeter_project(&env, "p3", "changed");
    let c = json(&env.ok(&[
        "build",
        "--json",
        "-t",
        "greeter:changed",
        m3.to_str().unwrap(),
    ]));
    assert_ne!(a["app_layer"], c["app_layer"]);

    // The image: the runtime's layer unchanged, one app layer, base
    // annotations, app labels.
    let rt = json(&env.ok(&["inspect", "--json", "base/busybox:1"]));
    let app = json(&env.ok(&["inspect", "--json", "org.example.greeter:latest"]));
    let layers = |v: &serde_json::Value| v["layers"].as_array().unwrap().clone();
    assert_eq!(layers(&app).len(), layers(&rt).len() + 1);
    assert_eq!(layers(&app)[0]["digest"], layers(&rt)[0]["digest"]);
    let ann = &app["annotations"];
    assert_eq!(ann["org.opencontainers.image.base.name"], "base/busybox:1");
    assert_eq!(ann["org.opencontainers.image.base.digest"], rt["digest"]);
    assert_eq!(app["labels"]["org.berth.app.id"], "org.example.Greeter");

    env.ok(&["install", "--yes", "org.example.greeter:latest"]);
    let out = env.ok(&["run", "org.example.Greeter"]);
    assert_eq!(out, "greetings\nhi there\n");
    env.assert_fsck_clean();
}

#[test]
fn failed_step_shows_output_and_leaves_no_image() {
    let env = Env::new();
    busybox_runtime(&env, "base/busybox:1");
    let m = greeter_project(&env, "p", "x");
    let text = std::fs::read_to_string(&m).unwrap().replace(
        "\"mkdir -p $BERTH_DEST/bin $BERTH_DEST/share\",",
        "\"mkdir -p $BERTH_DEST/bin $BERTH_DEST/share\", \"echo compiler-says-no >&2; exit 3\",",
    );
    std::fs::write(&m, text).unwrap();
    let before = env.image_names();
    let o = env.run(&["build", m.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("compiler-says-no"),
        "step output not shown: {err}"
    );
    assert!(
        err.contains("build step 2/4 failed (exit status 3)"),
        "{err}"
    );
    assert_eq!(env.image_names(), before, "a failed build left an image");
    let tmp: Vec<_> = std::fs::read_dir(env.home().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "build left files in tmp/: {tmp:?}");

    // Mistakes in the manifest are explained before anything runs.
    std::fs::write(
        &m,
        GREETER.replace("[build]", "[build]\ninstall-dir = \"/usr\""),
    )
    .unwrap();
    assert!(
        env.fails(&["build", m.to_str().unwrap()])
            .contains("system directory")
    );
    std::fs::write(&m, GREETER.replace("base/busybox:1", "no/such:1")).unwrap();
    assert!(
        env.fails(&["build", m.to_str().unwrap()])
            .contains("not in the store")
    );
    // Without network in the manifest the steps have none.
    std::fs::write(
        &m,
        GREETER.replace(
            "\"mkdir -p",
            "\"! ls /sys/class/net | grep -qv lo\", \"mkdir -p",
        ),
    )
    .unwrap();
    env.ok(&["build", m.to_str().unwrap()]);
}

#[test]
fn bundles_full_and_thin() {
    let env = Env::new();
    busybox_runtime(&env, "base/busybox:1");
    let m = greeter_project(&env, "p", "bundled");
    env.ok(&["build", m.to_str().unwrap()]);
    let full = env.path("greeter.berth");
    let thin = env.path("greeter-thin.berth");
    env.ok(&[
        "bundle",
        "org.example.greeter:latest",
        full.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&[
        "bundle",
        "--thin",
        "--json",
        "org.example.greeter:latest",
        thin.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["id"], "org.example.Greeter", "{v}");
    assert_eq!(v["thin"], true, "{v}");
    assert_eq!(v["runtime_layers_left_out"], 1, "{v}");
    assert_eq!(
        v["bytes"].as_u64(),
        std::fs::metadata(&thin).ok().map(|m| m.len()),
        "{v}"
    );
    let (fs, ts) = (
        std::fs::metadata(&full).unwrap().len(),
        std::fs::metadata(&thin).unwrap().len(),
    );
    assert!(
        ts * 10 < fs,
        "thin bundle ({ts}) not much smaller than full ({fs})"
    );

    // A fresh machine: the thin bundle refuses clearly, the full one installs.
    let user = Env::new();
    let err = user.fails(&["install", "--yes", "/no/such/app.berth"]);
    assert!(err.contains("no such file"), "{err}");
    let err = user.fails(&["install", "--yes", thin.to_str().unwrap()]);
    assert!(
        err.contains("thin bundle") && err.contains("base/busybox:1"),
        "{err}"
    );
    assert!(user.image_names().is_empty());
    user.ok(&["install", "--yes", full.to_str().unwrap()]);
    assert_eq!(
        user.ok(&["run", "org.example.Greeter"]),
        "bundled\nhi there\n"
    );

    // With the runtime already there, the thin bundle is enough.
    let other = Env::new();
    let rt = env.path("rt.tar");
    env.ok(&["export", "base/busybox:1", rt.to_str().unwrap()]);
    other.ok(&["import", rt.to_str().unwrap()]);
    other.ok(&["install", "--yes", thin.to_str().unwrap()]);
    assert_eq!(
        other.ok(&["run", "org.example.Greeter"]),
        "bundled\nhi there\n"
    );

    // --thin needs a base to leave out.
    busybox_image(&env, "plain/app:1", vec![]);
    let err = env.fails(&[
        "bundle",
        "--thin",
        "plain/app:1",
        env.path("x.berth").to_str().unwrap(),
    ]);
    assert!(err.contains("not an app"), "{err}");

    // Inside, a plain OCI archive: skopeo reads and copies it.
    if have_tool("bundles_full_and_thin", "skopeo") {
        let o = Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci-archive:{}", full.display()))
            .arg(format!("dir:{}", env.path("copied").display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Where berth-gui is not installed, a .berth file opens `berth install`
/// in a terminal (crates/gui/tests has the window).
#[test]
fn berth_files_open_in_the_installer() {
    let env = Env::new();
    // A berth with no berth-gui beside it.
    let solo = env.path("solo");
    std::fs::create_dir_all(&solo).unwrap();
    std::fs::copy(berth_bin(), solo.join("berth")).unwrap();
    let o = env
        .cmd_raw(solo.join("berth").to_str().unwrap())
        .arg("integrate")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let share = env.home().join("exports/share");
    let entry = share.join("applications/org.berth.Installer.desktop");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(
        text.contains("MimeType=application/vnd.berth.bundle;"),
        "{text}"
    );
    assert!(text.contains("Terminal=true"), "{text}");
    let xml = std::fs::read_to_string(share.join("mime/packages/org.berth.Bundle.xml")).unwrap();
    assert!(xml.contains("<glob pattern=\"*.berth\"/>"));
    if have_tool("berth_files_open_in_the_installer", "desktop-file-validate") {
        let o = Command::new("desktop-file-validate")
            .arg(&entry)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
    if have_tool("berth_files_open_in_the_installer", "update-mime-database") {
        let globs = std::fs::read_to_string(share.join("mime/globs2")).unwrap();
        assert!(
            globs.contains("application/vnd.berth.bundle:*.berth"),
            "{globs}"
        );
    }
    let defaults = std::fs::read_to_string(share.join("applications/mimeapps.list")).unwrap();
    assert!(defaults.contains("application/vnd.berth.bundle=org.berth.Installer.desktop"));

    // What a file manager does: run Exec with %f, in a terminal. The
    // review appears and the answer decides.
    let author = Env::new();
    busybox_runtime(&author, "base/busybox:1");
    let m = greeter_project(&author, "p", "opened");
    author.ok(&["build", m.to_str().unwrap()]);
    let bundle = author.path("g.berth");
    author.ok(&[
        "bundle",
        "org.example.greeter:latest",
        bundle.to_str().unwrap(),
    ]);
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .unwrap()
        .replace("%f", bundle.to_str().unwrap());
    if !have_tool("berth_files_open_in_the_installer", "script") {
        return;
    }
    let open = |answer: &str| {
        let mut c = env
            .cmd_raw("script")
            .args(["-qec", &exec, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let o = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = open("n\n");
    assert!(
        out.contains("Share memory with other programs"),
        "no review: {out}"
    );
    assert!(out.contains("Not installed"), "{out}");
    assert!(!env.ok(&["list"]).contains("org.example.Greeter"));
    let out = open("y\n");
    assert!(out.contains("Installed org.example.Greeter"), "{out}");
    assert_eq!(
        env.ok(&["run", "org.example.Greeter"]),
        "opened\nhi there\n"
    );
}

/// Menu entries call a berth that lasts: when the binary they call is
/// gone (`cargo clean`), the next berth command rewrites them, and
/// `integrate` installs a launcher they call from then on.
#[test]
fn menu_entries_follow_a_moved_berth() {
    let env = Env::new();
    busybox_runtime(&env, "base/busybox:1");
    let m = greeter_project(&env, "p", "moved");
    env.ok(&["build", m.to_str().unwrap()]);
    // A build of berth somewhere that will go away.
    let old = env.path("old/berth");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::copy(berth_bin(), &old).unwrap();
    let o = env
        .cmd_raw(old.to_str().unwrap())
        .env("BERTH_LAUNCHER", env.path("bin/berth"))
        .args(["install", "--yes", "org.example.greeter:latest"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let entry = env
        .home()
        .join("exports/share/applications/org.example.Greeter.desktop");
    let exec = |text: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix("Exec="))
            .unwrap_or_else(|| panic!("no Exec in {text}"))
            .to_owned()
    };
    let before = exec(&std::fs::read_to_string(&entry).unwrap());
    assert!(before.starts_with(old.to_str().unwrap()), "{before}");

    std::fs::remove_file(&old).unwrap();
    let o = env.cmd().args(["list"]).output().unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("now call"), "{err}");
    let after = exec(&std::fs::read_to_string(&entry).unwrap());
    let me = berth_bin();
    assert!(after.starts_with(me.to_str().unwrap()), "{after}");

    let out = env.ok(&["integrate", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let launcher = env.path("bin/berth");
    assert_eq!(v["launcher"], launcher.to_str().unwrap(), "{v}");
    assert_eq!(v["installed"], true, "{v}");
    assert_eq!(v["apps_exported"], 1, "{v}");
    let text = std::fs::read_to_string(&entry).unwrap();
    let integrated = exec(&text);
    assert!(
        integrated.starts_with(launcher.to_str().unwrap()),
        "{integrated}"
    );
    let installer = std::fs::read_to_string(
        env.home()
            .join("exports/share/applications/org.berth.Installer.desktop"),
    )
    .unwrap();
    assert!(exec(&installer).starts_with(launcher.to_str().unwrap()));
    // The entry's command runs the app through the launcher.
    let argv: Vec<&str> = integrated
        .split(' ')
        .filter(|a| !a.starts_with('%'))
        .collect();
    let o = env.cmd_raw(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "moved\nhi there\n");
    // Again: nothing to install, the same launcher.
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["integrate", "--json"])).unwrap();
    assert_eq!(v["installed"], false, "{v}");
}

#[test]
fn containerfile_app_built_by_buildah() {
    const T: &str = "containerfile_app_built_by_buildah";
    if !have_tool(T, "buildah") {
        return;
    }
    let env = Env::new();
    let base = busybox_img("base/busybox:1", vec![], &[]);
    env.write("base.tar", &base.oci_archive());
    write_tree(
        env.dir.path(),
        &[
            ("greet.sh", b"#!/bin/sh\necho hello from a Containerfile\n"),
            (
                "Containerfile",
                b"FROM oci-archive:base.tar\n\
                  COPY --chmod=755 greet.sh /app/bin/greet\n\
                  LABEL org.berth.app.id=\"org.example.Containerfile\" \\\n\
                  \x20     org.berth.app.name=\"From a Containerfile\" \\\n\
                  \x20     org.berth.app.command=\"/app/bin/greet\" \\\n\
                  \x20     org.berth.app.permissions=\"share=ipc\"\n",
            ),
        ],
    );
    let buildah = |args: &[&str]| buildah(&env, args);
    buildah(&[
        "build",
        "--quiet",
        "-f",
        "Containerfile",
        "-t",
        "localhost/cf:1",
        ".",
    ]);
    let out = env.path("cf.tar");
    buildah(&[
        "push",
        "--quiet",
        "localhost/cf:1",
        &format!("oci-archive:{}", out.display()),
    ]);
    // The runtime is in the store first, as on a user's machine.
    env.ok(&["import", env.path("base.tar").to_str().unwrap()]);
    let imported = json(&env.ok(&["import", "--json", out.to_str().unwrap()]));
    let app_id = imported[0]["id"].as_str().unwrap().to_owned();
    let o = env.ok(&["install", "--yes", out.to_str().unwrap()]);
    assert!(o.contains("Share memory with other programs"), "{o}");
    // The review counts the runtime's layer as shared, by content.
    assert!(
        o.contains("shared with installed runtimes and apps") && o.contains("new on disk"),
        "{o}"
    );
    assert_eq!(
        env.ok(&["run", "org.example.Containerfile"]),
        "hello from a Containerfile\n"
    );

    // buildah recompressed the runtime's layer: another blob, the same
    // content (diff-id). The store keeps that content once.
    let rt = json(&env.ok(&["inspect", "--json", "base/busybox:1"]));
    let app = json(&env.ok(&["inspect", "--json", &app_id]));
    let layer =
        |v: &serde_json::Value, i: usize, k: &str| v["layers"][i][k].as_str().unwrap().to_owned();
    assert_eq!(layer(&app, 0, "diff_id"), layer(&rt, 0, "diff_id"));
    assert_ne!(
        layer(&app, 0, "digest"),
        layer(&rt, 0, "digest"),
        "buildah kept the runtime's blob; this test needs a recompressed one"
    );
    let blob = |d: &str| env.home().join("blobs/sha256").join(&d[7..]);
    // Neither blob is kept: the layer re-creates them (tar record).
    assert!(
        !blob(&layer(&app, 0, "digest")).exists(),
        "the recompressed runtime layer is stored a second time"
    );
    assert!(!blob(&layer(&rt, 0, "digest")).exists());
    let id = layer(&rt, 0, "diff_id");
    assert!(
        env.home()
            .join(format!("layers/{}.tar-split", &id[7..]))
            .is_file()
    );
    assert!(env.ok(&["fsck"]).contains(": clean ("), "fsck");

    // A thin bundle leaves the runtime's layer out, matched by content.
    let thin = env.path("cf-thin.berth");
    let o = env.ok(&[
        "bundle",
        "--thin",
        "org.example.Containerfile",
        thin.to_str().unwrap(),
    ]);
    assert!(o.contains("thin bundle"), "{o}");
    let full = env.path("cf-full.berth");
    let o = env.ok(&[
        "bundle",
        "org.example.Containerfile",
        full.to_str().unwrap(),
    ]);
    assert!(o.contains("another compression of the same content"), "{o}");
    assert!(
        std::fs::metadata(&thin).unwrap().len() * 4 < std::fs::metadata(&full).unwrap().len(),
        "the thin bundle holds the runtime"
    );
    // Elsewhere, over the same runtime: installs and runs.
    let user = Env::new();
    user.ok(&["import", env.path("base.tar").to_str().unwrap()]);
    user.ok(&["install", "--yes", thin.to_str().unwrap()]);
    assert_eq!(
        user.ok(&["run", "org.example.Containerfile"]),
        "hello from a Containerfile\n"
    );
    assert!(user.ok(&["fsck"]).contains(": clean ("), "fsck");
    // Without it: refused, naming what is missing.
    let bare = Env::new();
    let err = bare.fails(&["install", "--yes", thin.to_str().unwrap()]);
    assert!(err.contains("thin bundle"), "{err}");
    // The full bundle works anywhere.
    bare.ok(&["install", "--yes", full.to_str().unwrap()]);
    assert_eq!(
        bare.ok(&["run", "org.example.Containerfile"]),
        "hello from a Containerfile\n"
    );
    // The runtime's layers inside an app do not make a runtime: an app's
    // layers are its own, and a thin bundle cannot lean on them.
    let lone = Env::new();
    lone.ok(&["install", "--yes", full.to_str().unwrap()]);
    let err = lone.fails(&["install", "--yes", thin.to_str().unwrap()]);
    assert!(err.contains("thin bundle"), "{err}");

    // Rebase onto a patched runtime, matched by content as well.
    let patched = busybox_img("base/busybox:2", vec![file("etc/patched", b"yes\n")], &[]);
    let p = user.write("base2.tar", &patched.oci_archive());
    user.ok(&["import", p.to_str().unwrap()]);
    let o = user.ok(&[
        "rebase",
        "org.example.Containerfile",
        "--onto",
        "base/busybox:2",
    ]);
    assert!(o.contains("1 runtime layer(s) replaced"), "{o}");
    assert_eq!(
        user.ok(&[
            "run",
            "org.example.Containerfile",
            "--command",
            "/bin/cat",
            "--",
            "/etc/patched"
        ]),
        "yes\n"
    );
    // gc keeps what the elided blob stands on.
    env.ok(&["gc"]);
    assert!(env.ok(&["fsck"]).contains(": clean ("), "fsck after gc");
    let again = env.path("cf-again.berth");
    env.ok(&[
        "bundle",
        "org.example.Containerfile",
        again.to_str().unwrap(),
    ]);
}

/// Layers the test's runtime is split into (`runtime create --chunks`).
const CHUNKS: &str = "12";

/// The README's author workflow with a real Debian runtime and SDK, the
/// runtime split by package.
#[test]
fn author_workflow_debian_runtime_to_window() {
    const T: &str = "author_workflow_debian_runtime_to_window";
    for t in ["mmdebstrap", "Xvfb", "xwininfo", "xauth"] {
        if !have_tool(T, t) {
            return;
        }
    }
    if !is_root() && std::fs::read_to_string("/etc/subuid").map_or(true, |s| s.trim().is_empty()) {
        skip(
            T,
            "mmdebstrap's unshare mode needs an /etc/subuid entry for this user",
        );
        return;
    }
    let author = Env::new();
    let o = author.run(&[
        "runtime",
        "create",
        "example/runtime:bookworm",
        "--from",
        "debian:bookworm",
        "--packages",
        "libx11-6",
        "--sdk-packages",
        "gcc,libc6-dev,libx11-dev,make",
        "--chunks",
        CHUNKS,
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        // No Debian mirror: CI requires one.
        assert!(
            std::env::var("BERTH_TEST_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "runtime create failed: {stderr}"
        );
        skip(T, &format!("runtime create failed: {stderr}"));
        return;
    }
    // The runtime is split by package; the SDK shares its layers and adds
    // one; both list packages.
    let rt = json(&author.ok(&["inspect", "--json", "example/runtime:bookworm"]));
    let sdk = json(&author.ok(&["inspect", "--json", "example/runtime-sdk:bookworm"]));
    let layers = |v: &serde_json::Value| v["layers"].as_array().unwrap().clone();
    let n = layers(&rt).len();
    assert!(n > 4, "{n} layers");
    assert_eq!(layers(&sdk).len(), n + 1);
    assert_eq!(layers(&sdk)[..n], layers(&rt)[..]);
    let pkgs = |img: &str| -> Vec<String> {
        json(&author.ok(&["runtime", "packages", "--json", img]))
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (rp, sp) = (
        pkgs("example/runtime:bookworm"),
        pkgs("example/runtime-sdk:bookworm"),
    );
    assert!(rp.contains(&"libx11-6".into()) && !rp.contains(&"gcc".into()));
    assert!(sp.contains(&"libx11-dev".into()) && sp.contains(&"gcc".into()));

    // Build the example twice: the same app layer.
    let proj = author.path("hello-x11");
    write_tree(
        &proj,
        &[
            ("hello.c", HELLO_C.as_bytes()),
            ("Makefile", HELLO_MAKEFILE.as_bytes()),
            ("berth.toml", HELLO_TOML.as_bytes()),
            ("hello.png", HELLO_PNG),
        ],
    );
    let manifest = proj.join("berth.toml");
    let a = json(&author.ok(&["build", "--json", manifest.to_str().unwrap()]));
    let b = json(&author.ok(&["build", "--json", manifest.to_str().unwrap()]));
    assert_eq!(a["app_layer"], b["app_layer"]);
    assert_eq!(a["base_name"], "example/runtime:bookworm");

    let bundle = author.path("hello.berth");
    author.ok(&["bundle", "example/hello-x11:1.0", bundle.to_str().unwrap()]);

    // The user's machine: install from the file, with the review.
    let user = Env::new();
    let out = user.ok(&["install", "--yes", bundle.to_str().unwrap()]);
    assert!(out.contains("Show windows with X11"), "{out}");
    let icon = user
        .home()
        .join("exports/share/icons/hicolor/48x48/apps/org.berth.examples.HelloX11.png");
    assert_eq!(std::fs::read(icon).unwrap(), HELLO_PNG);
    let x = start_xvfb(user.dir.path());
    let mut app = user
        .cmd()
        .args(["run", "org.berth.examples.HelloX11"])
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_window(&x, &mut app, "Hello from berth", Duration::from_secs(20));
    let inst = wait_for_instance(&user);
    user.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = app.wait();

    runtime_update_of_one_package(&author, &proj);
}

/// A security update: the runtime is rebuilt with one Debian package
/// changed (hostname, rebuilt with a bumped version), the app is rebuilt on
/// it and pushed; `berth update` fetches the new layers only and the app
/// runs on the patched runtime.
fn runtime_update_of_one_package(author: &Env, proj: &Path) {
    const T: &str = "author_workflow_debian_runtime_to_window (update)";
    for t in ["docker-registry", "htpasswd", "apt-get", "dpkg-deb"] {
        if !have_tool(T, t) {
            return;
        }
    }
    let reg = start_registry(author.dir.path(), None);
    let r = format!("localhost:{}/apps/hello-x11:stable", reg.port);
    author.ok(&["push", "example/hello-x11:1.0", &r]);
    let user = Env::new();
    user.ok(&["install", "--yes", &r]);

    // The patched package.
    let debs = author.path("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let sh = |cmd: &str| {
        let o = Command::new("sh")
            .args(["-ec", cmd])
            .current_dir(&debs)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    sh(
        "apt-get download -qq hostname && dpkg-deb -R hostname_*.deb pkg \
        && sed -i 's/^Version: .*/&+sec1/' pkg/DEBIAN/control && rm -f pkg/DEBIAN/md5sums \
        && echo patched >> pkg/usr/share/doc/hostname/copyright \
        && dpkg-deb -b pkg hostname-sec1.deb >/dev/null",
    );
    let deb = debs.join("hostname-sec1.deb");
    author.ok(&[
        "runtime",
        "create",
        "example/runtime:bookworm",
        "--from",
        "debian:bookworm",
        "--packages",
        &format!("libx11-6,{}", deb.display()),
        "--sdk-packages",
        "gcc,libc6-dev,libx11-dev,make",
        "--chunks",
        CHUNKS,
    ]);
    let pkgs = author.ok(&["runtime", "packages", "example/runtime:bookworm"]);
    assert!(
        pkgs.lines()
            .any(|l| l.starts_with("hostname ") && l.contains("+sec1")),
        "{pkgs}"
    );
    author.ok(&["build", proj.join("berth.toml").to_str().unwrap()]);
    author.ok(&["push", "example/hello-x11:1.0", &r]);

    let dry = user.ok(&["update", "--dry-run"]);
    assert!(dry.contains("would update"), "{dry}");
    // One package changed: its layer, the top one and the app's are
    // fetched, not the runtime.
    let rt: u64 = json(&author.ok(&["inspect", "--json", "example/runtime:bookworm"]))["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    let fetch: u64 = dry
        .lines()
        .find_map(|l| l.strip_prefix("Total: "))
        .and_then(|l| l.trim_end_matches(" bytes to download").parse().ok())
        .unwrap_or_else(|| panic!("{dry}"));
    assert!(fetch * 3 < rt, "{fetch} of the runtime's {rt} bytes: {dry}");
    let out = user.ok(&["update", "--yes"]);
    assert!(out.contains("No new permissions"), "{out}");
    let info = json(&user.ok(&["info", "--json", "org.berth.examples.HelloX11"]));
    let img = info["image"].as_str().unwrap().to_owned();
    let pkgs = json(&user.ok(&["runtime", "packages", "--json", &img]));
    let hostname = pkgs
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hostname")
        .unwrap();
    assert!(
        hostname["version"].as_str().unwrap().ends_with("+sec1"),
        "{hostname}"
    );
    // The binary and libX11 still load on the patched runtime (no display
    // here: the window itself was checked above).
    let o = user
        .cmd()
        .args(["run", "org.berth.examples.HelloX11"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("hello-x11: cannot open display"), "{err}");
    user.ok(&["rollback", "org.berth.examples.HelloX11"]);
}

/// `berth integrate` puts berth-gui beside the launcher when it was built
/// beside berth, and `.berth` files then open in the window, not in a
/// terminal; without it they open `berth install` in a terminal.
#[test]
fn integrate_installs_the_installer_window() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let installer = env
        .home()
        .join("exports/share/applications/org.berth.Installer.desktop");
    for (with_gui, dir) in [(true, "a"), (false, "b")] {
        let src = env.path(&format!("{dir}/build"));
        std::fs::create_dir_all(&src).unwrap();
        let berth = src.join("berth");
        std::fs::copy(berth_bin(), &berth).unwrap();
        if with_gui {
            let gui = src.join("berth-gui");
            std::fs::write(&gui, "#!/bin/sh\necho gui \"$@\"\n").unwrap();
            std::fs::set_permissions(&gui, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let launcher = env.path(&format!("{dir}/bin/berth"));
        let o = env
            .cmd_raw(berth.to_str().unwrap())
            .env("BERTH_LAUNCHER", &launcher)
            .args(["integrate", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let entry = std::fs::read_to_string(&installer).unwrap();
        if with_gui {
            let gui = env.path("a/bin/berth-gui");
            assert_eq!(v["gui"], gui.to_str().unwrap(), "{v}");
            let o = std::process::Command::new(&gui).arg("x").output().unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout), "gui x\n");
            assert!(
                entry.contains(&format!(
                    "Exec={} install %f\nTerminal=false\n",
                    gui.display()
                )),
                "{entry}"
            );
        } else {
            assert!(v["gui"].is_null(), "{v}");
            assert!(
                !installer
                    .with_file_name("org.berth.Permissions.desktop")
                    .exists()
            );
            assert!(
                entry.contains(&format!(
                    "Exec={} install %f\nTerminal=true\n",
                    launcher.display()
                )),
                "{entry}"
            );
        }
        assert_eq!(v["gui_from_earlier"], false, "{v}");
    }
    // A later build without the window keeps the one installed before,
    // and says it may be older.
    let src = env.path("c/build");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(berth_bin(), src.join("berth")).unwrap();
    let o = env
        .cmd_raw(src.join("berth").to_str().unwrap())
        .env("BERTH_LAUNCHER", env.path("a/bin/berth"))
        .args(["integrate"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("installed earlier, not from this build"),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(&installer)
            .unwrap()
            .contains("berth-gui install %f\nTerminal=false\n")
    );
}
