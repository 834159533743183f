//! Real Debian GUI apps (X11: xcalc from x11-apps, GTK: mousepad, Qt:
//! FeatherPad), each
//! packaged twice on one cached mmdebstrap runtime: by a five-line berth
//! manifest with `packages = [...]`, and by a buildah Containerfile with
//! `RUN apt-get install`. Each opens a window under Xvfb; both routes make
//! thin bundles that install over the same runtime elsewhere and rebase
//! onto a patched runtime; the runtime's content is stored once.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;

use common::*;

const T: &str = "debian_apps_from_packages_and_containerfiles";

/// (app ID, Debian package, command, a word of its window's name).
const APPS: &[(&str, &str, &str, &str)] = &[
    (
        "org.debian.Xcalc",
        "x11-apps",
        "/usr/bin/xcalc",
        "Calculator",
    ),
    (
        "org.xfce.mousepad",
        "mousepad",
        "/usr/bin/mousepad",
        "Mousepad",
    ),
    (
        "io.github.tsujan.FeatherPad",
        "featherpad",
        "/usr/bin/featherpad",
        "FeatherPad",
    ),
];

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn debian_apps_from_packages_and_containerfiles() {
    for t in ["Xvfb", "xauth", "xwininfo", "xwd", "buildah"] {
        if !have_tool(T, t) {
            return;
        }
    }
    let Some(rootfs) = debian_rootfs(T, "runtime", &["libx11-6"]) else {
        return;
    };
    let author = Env::new();
    // The runtime, and a patched one (the same layer plus a fix).
    let base = std::fs::read(&rootfs).unwrap();
    let rt = Img::new(vec![(base.clone(), Comp::Gzip)]).named("debian/runtime:bookworm");
    let rt_tar = author.write("runtime.tar", &rt.oci_archive());
    drop(rt);
    let fix = layer(&[dir("etc"), file("etc/berth-patched", b"yes\n")]);
    let patched = Img::new(vec![(base, Comp::Gzip), (fix, Comp::Gzip)])
        .named("debian/runtime:bookworm-patched");
    let patched_tar = author.write("patched.tar", &patched.oci_archive());
    drop(patched);
    author.ok(&["import", rt_tar.to_str().unwrap()]);

    let buildah = |args: &[&str]| buildah(&author, args);
    let x = start_xvfb_sized(author.dir.path(), "1024x768x24");
    let mut thin = Vec::new();
    for &(id, pkg, command, window) in APPS {
        // 1. A berth manifest: five lines.
        let dir = author.path(&format!("m-{pkg}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("berth.toml"),
            format!(
                "id = \"{id}\"\ncommand = \"{command}\"\npermissions = [\"socket=x11\"]\n\
                 runtime = \"debian/runtime:bookworm\"\npackages = [\"{pkg}\"]\n"
            ),
        )
        .unwrap();
        let built =
            json(&author.ok(&["build", "--json", dir.join("berth.toml").to_str().unwrap()]));
        let image = built["image"].as_str().unwrap().to_owned();
        let o = author.ok(&["install", "--yes", &image]);
        assert!(o.contains("shared with installed runtimes"), "{o}");
        let info = json(&author.ok(&["inspect", "--json", &image]));
        let pkgs = info["labels"]["org.berth.build.packages"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            pkgs.lines().any(|l| l.starts_with(&format!("{pkg} "))),
            "{pkgs}"
        );
        assert!(
            !pkgs.lines().any(|l| l.starts_with("libx11-6 ")),
            "the runtime's own packages are not added again: {pkgs}"
        );
        opens_a_window(&author, &x, id, window);
        let t = author.path(&format!("{pkg}.berth"));
        author.ok(&["bundle", "--thin", id, t.to_str().unwrap()]);
        thin.push((id.to_owned(), window, t));

        // 2. A Containerfile, built by buildah.
        let cf_id = format!("{id}Cf");
        std::fs::write(
            author.path(&format!("Containerfile.{pkg}")),
            format!(
                "FROM oci-archive:runtime.tar\n\
                 RUN apt-get update -q && apt-get install -y -q --no-install-recommends {pkg} \
                 && apt-get clean && rm -rf /var/lib/apt/lists/*\n\
                 LABEL org.berth.app.id=\"{cf_id}\" org.berth.app.command=\"{command}\" \
                 org.berth.app.permissions=\"socket=x11\"\n"
            ),
        )
        .unwrap();
        let tag = format!("localhost/{pkg}-cf:1");
        buildah(&[
            "build",
            "--isolation",
            "chroot",
            "--quiet",
            "-f",
            &format!("Containerfile.{pkg}"),
            "-t",
            &tag,
            ".",
        ]);
        let out = author.path(&format!("{pkg}-cf.tar"));
        buildah(&[
            "push",
            "--quiet",
            &tag,
            &format!("oci-archive:{}", out.display()),
        ]);
        // buildah's vfs store copies every layer whole: empty it before
        // the next app, so the test's peak disk use stays near one app's.
        buildah(&["rmi", "--all", "--force"]);
        let o = author.ok(&["install", "--yes", out.to_str().unwrap()]);
        assert!(o.contains("shared with installed runtimes"), "{o}");
        std::fs::remove_file(&out).unwrap();
        opens_a_window(&author, &x, &cf_id, window);
        let t = author.path(&format!("{pkg}-cf.berth"));
        author.ok(&["bundle", "--thin", &cf_id, t.to_str().unwrap()]);
        thin.push((cf_id, window, t));
    }

    // The runtime's content is stored once: one blob per layer content,
    // whatever buildah recompressed.
    let mut blobs_of: HashMap<String, HashSet<String>> = HashMap::new();
    for i in json(&author.ok(&["images", "--json"])).as_array().unwrap() {
        let v = json(&author.ok(&["inspect", "--json", i["id"].as_str().unwrap()]));
        for l in v["layers"].as_array().unwrap() {
            let d = l["digest"].as_str().unwrap();
            if author.home().join("blobs/sha256").join(&d[7..]).is_file() {
                blobs_of
                    .entry(l["diff_id"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(d.to_owned());
            }
        }
    }
    for (diff_id, blobs) in &blobs_of {
        assert_eq!(blobs.len(), 1, "layer {diff_id} is stored as {blobs:?}");
    }
    assert!(author.ok(&["fsck"]).contains(": clean ("), "fsck");

    // Elsewhere, over the same runtime: the thin bundles install, run, and
    // move onto the patched runtime.
    let user = Env::new();
    user.ok(&["import", rt_tar.to_str().unwrap()]);
    user.ok(&["import", patched_tar.to_str().unwrap()]);
    for (id, window, t) in &thin {
        // The manifest, the config and the app's one layer: no runtime.
        let list = Command::new("tar").arg("-tf").arg(t).output().unwrap();
        let blobs = String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter(|l| l.starts_with("blobs/sha256/") && l.len() > "blobs/sha256/".len())
            .count();
        assert_eq!(blobs, 3, "{id}: the thin bundle holds more than the app");
        user.ok(&["install", "--yes", t.to_str().unwrap()]);
        let o = user.ok(&["rebase", id, "--onto", "debian/runtime:bookworm-patched"]);
        assert!(o.contains("runtime layer(s) replaced"), "{id}: {o}");
        assert_eq!(
            user.ok(&[
                "run",
                id,
                "--command",
                "/bin/cat",
                "--",
                "/etc/berth-patched"
            ]),
            "yes\n",
            "{id}"
        );
        opens_a_window(&user, &x, id, window);
    }
    assert!(user.ok(&["fsck"]).contains(": clean ("), "fsck");
}
