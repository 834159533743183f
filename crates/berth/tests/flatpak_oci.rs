//! Flatpak OCI images install and run unchanged: a runtime made from
//! Debian's packages (a cached mmdebstrap root) and an X11 app, both
//! exported with `flatpak build-export` and bundled with
//! `flatpak build-bundle --oci`, as a Flatpak developer would. The
//! metadata's permissions reach berth's review; what berth has no
//! permission for is named and not granted; the app's files are at /app,
//! the runtime's at /usr; the menu entry and icon come from export/.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const T: &str = "a_flatpak_oci_app_installs_with_its_review_and_runs";

const APP: &str = r#"
#include <X11/Xlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void show(const char *path) {
    char buf[256];
    FILE *f = fopen(path, "r");
    if (!f) { printf("%s: missing\n", path); return; }
    while (fgets(buf, sizeof buf, f)) printf("%s: %s", path, buf);
    fclose(f);
}

int main(int argc, char **argv) {
    show("/app/share/org.test.FlatHello/greeting");
    show("/etc/debian_version");
    printf("GREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "");
    printf("FLATPAK_ID=%s\n", getenv("FLATPAK_ID") ? getenv("FLATPAK_ID") : "");
    if (argc > 1) return 0;
    fflush(stdout);
    Display *d = XOpenDisplay(NULL);
    if (!d) { fprintf(stderr, "no display\n"); return 1; }
    int s = DefaultScreen(d);
    Window w = XCreateSimpleWindow(d, RootWindow(d, s), 10, 10, 200, 120, 1,
                                   BlackPixel(d, s), 0x3366cc);
    XStoreName(d, w, "Flat Hello");
    XMapWindow(d, w);
    XFlush(d);
    for (;;) pause();
}
"#;

fn sh(dir: &Path, line: &str) {
    let o = Command::new("sh")
        .args(["-ec", line])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{line}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_flatpak_oci_app_installs_with_its_review_and_runs() {
    for t in ["flatpak", "gcc", "Xvfb", "xauth", "xwininfo", "xwd"] {
        if !have_tool(T, t) {
            return;
        }
    }
    let Some(rootfs) = debian_rootfs(T, "runtime", &["libx11-6"]) else {
        return;
    };
    let env = Env::new();
    let d = env.dir.path();
    // The runtime: Debian's /usr, with /etc as /usr/etc, as Flatpak
    // runtimes keep it.
    sh(
        d,
        &format!(
            "mkdir -p rt/files rt/usr/etc
             tar -xf {r} -C rt/usr --no-same-owner --strip-components=2 ./usr
             tar -xf {r} -C rt/usr/etc --no-same-owner --strip-components=2 ./etc
             printf '[Runtime]\\nname=org.debian.Platform\\nruntime=org.debian.Platform/x86_64/bookworm\\nsdk=org.debian.Platform/x86_64/bookworm\\n' > rt/metadata
             flatpak build-export --runtime repo rt bookworm >/dev/null
             flatpak build-bundle --runtime --oci repo rt.oci org.debian.Platform bookworm",
            r = rootfs.display()
        ),
    );
    // The app: built against the host's libX11, which the runtime has.
    std::fs::write(d.join("hello.c"), APP).unwrap();
    sh(
        d,
        "mkdir -p app/files/bin app/files/share/org.test.FlatHello \
               app/files/share/applications app/files/share/icons/hicolor/scalable/apps
         gcc -O2 -o app/files/bin/flat-hello hello.c -lX11
         echo 'hello from /app' > app/files/share/org.test.FlatHello/greeting
         printf '[Desktop Entry]\\nType=Application\\nName=Flat Hello\\nComment=A Flatpak in berth\\nExec=flat-hello\\nIcon=org.test.FlatHello\\nCategories=Utility;\\n' \
           > app/files/share/applications/org.test.FlatHello.desktop
         printf '<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"16\" height=\"16\"><rect width=\"16\" height=\"16\" fill=\"#36c\"/></svg>' \
           > app/files/share/icons/hicolor/scalable/apps/org.test.FlatHello.svg
         printf '[Application]\\nname=org.test.FlatHello\\nruntime=org.debian.Platform/x86_64/bookworm\\nsdk=org.debian.Platform/x86_64/bookworm\\ncommand=flat-hello\\n' > app/metadata
         flatpak build-finish --socket=x11 --socket=pcsc --share=ipc \
           --talk-name=org.freedesktop.Notifications --system-talk-name=org.freedesktop.NetworkManager \
           --filesystem=xdg-download:ro --filesystem=host-os --env=GREETING=hi app >/dev/null
         flatpak build-export repo app stable >/dev/null
         flatpak build-bundle --oci repo app.oci org.test.FlatHello stable",
    );
    let app_oci = d.join("app.oci");
    let app_oci = app_oci.to_str().unwrap();

    // Without its runtime, the app is refused by the runtime's exact ref.
    let err = env.fails(&["install", "--yes", app_oci]);
    assert!(
        err.contains("runtime/org.debian.Platform/x86_64/bookworm"),
        "{err}"
    );
    assert!(
        env.ok(&["list"]).trim().lines().count() <= 1,
        "nothing installed"
    );

    let o = env.ok(&["import", d.join("rt.oci").to_str().unwrap()]);
    assert!(
        o.contains("flatpak/runtime/org.debian.platform:bookworm"),
        "{o}"
    );
    let review = env.ok(&["install", "--yes", app_oci]);
    for want in [
        "Flat Hello (org.test.FlatHello)",
        "runtime/org.debian.Platform/x86_64/bookworm",
        "(socket=x11)",
        "(share=ipc)",
        "(talk-name=org.freedesktop.Notifications)",
        "(filesystem=xdg-download:ro)",
        "(env=GREETING=hi)",
        "Not granted",
        "sockets=pcsc",
        "filesystems=host-os",
        "system bus org.freedesktop.NetworkManager=talk",
    ] {
        assert!(
            review.contains(want),
            "{want:?} not in the review:\n{review}"
        );
    }
    let info: serde_json::Value =
        serde_json::from_str(&env.ok(&["info", "--json", "org.test.FlatHello"])).unwrap();
    let granted = info["permissions"].to_string();
    assert!(
        !granted.contains("pcsc") && !granted.contains("host-os"),
        "{granted}"
    );

    // The menu gets a generated entry and the exported icon.
    let share = env.home().join("exports/share");
    let entry =
        std::fs::read_to_string(share.join("applications/org.test.FlatHello.desktop")).unwrap();
    assert!(entry.contains("Name=Flat Hello"), "{entry}");
    assert!(entry.contains("X-Berth-App=org.test.FlatHello"), "{entry}");
    assert!(
        share
            .join("icons/hicolor/scalable/apps/org.test.FlatHello.svg")
            .is_file(),
        "icon exported"
    );

    // /app is the app's files, /usr and /etc the runtime's.
    let out = env.ok(&["run", "org.test.FlatHello", "--", "--print"]);
    for want in [
        "/app/share/org.test.FlatHello/greeting: hello from /app",
        "/etc/debian_version: 12",
        "GREETING=hi",
        "FLATPAK_ID=org.test.FlatHello",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    let o = env
        .cmd()
        .args([
            "run",
            "org.test.FlatHello",
            "--command",
            "/bin/sh",
            "--",
            "-c",
            "test -e /usr/bin/flat-hello && echo leak; test -w /usr/bin && echo writable; \
             test -w /app/bin && echo writable; readlink /lib64; echo done",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("usr/lib64") && text.contains("done"),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !text.contains("leak") && !text.contains("writable"),
        "{text}"
    );

    // The runtime stays while the app needs it, by whatever name.
    env.ok(&["rmi", "flatpak/runtime/org.debian.platform:bookworm"]);
    env.ok(&["gc"]);

    // A window on X11.
    let x = start_xvfb_sized(d, "640x480x24");
    opens_a_window(&env, &x, "org.test.FlatHello", "Flat Hello");
    env.assert_fsck_clean();
}

/// A busybox Flatpak runtime `org.test.Rt` of `branch`, plus `extra`.
fn rt_img(branch: &str, extra: Vec<E>) -> Img {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    let mut entries = vec![
        file("metadata", b"[Runtime]\nname=org.test.Rt\n"),
        dir("files"),
        dir("files/bin"),
        file("files/bin/busybox", &std::fs::read(busybox).unwrap()).mode(0o755),
        symlink("files/bin/sh", "busybox"),
        symlink("files/bin/ls", "busybox"),
        symlink("files/bin/cat", "busybox"),
    ];
    entries.extend(extra);
    let mut rt = Img::new(vec![(layer(&entries), Comp::Gzip)]).named(&format!("test/rt:{branch}"));
    rt.labels.insert(
        "org.flatpak.ref".into(),
        format!("runtime/org.test.Rt/x86_64/{branch}"),
    );
    rt
}

/// A Flatpak app `id` on `org.test.Rt/x86_64/BRANCH`, with `files` as its
/// layer's files and `context` as its metadata's `[Context]` lines.
fn app_img(id: &str, branch: &str, files: Vec<E>, context: &str) -> Img {
    let meta = format!(
        "[Application]\nname={id}\nruntime=org.test.Rt/x86_64/{branch}\ncommand=sh\n\n[Context]\n{context}"
    );
    let mut entries = vec![file("metadata", meta.as_bytes())];
    entries.extend(files);
    let mut app = Img::new(vec![(layer(&entries), Comp::Gzip)])
        .named(&format!("test/{}:{branch}", id.to_lowercase()));
    app.labels.insert(
        "org.flatpak.ref".into(),
        format!("app/{id}/x86_64/{branch}"),
    );
    app.labels.insert("org.flatpak.metadata".into(), meta);
    app
}

fn add(env: &Env, name: &str, img: &Img, verb: &[&str]) -> String {
    let path = env.write(name, &img.oci_archive());
    let mut args = verb.to_vec();
    args.push(path.to_str().unwrap());
    env.ok(&args)
}

/// Image content cannot lead berth out of the sandbox's tree: a `files`
/// that is a link (here to the host's root) refuses the launch; a
/// runtime's `etc` linked to the host's /etc lists nothing of it; a
/// runtime's links under /usr, and the layout's own links (/var/tmp), are
/// never followed on the host to make a mount point.
#[test]
fn flatpak_images_cannot_link_out_of_the_store() {
    let env = Env::new();
    let host_target = env.path("host-target");
    std::fs::create_dir_all(&host_target).unwrap();
    let rt = rt_img(
        "1",
        vec![
            symlink("files/etc", "/etc"),
            symlink("files/share", host_target.to_str().unwrap()),
        ],
    );
    add(&env, "rt.tar", &rt, &["import"]);
    let fine = app_img(
        "org.test.Fine",
        "1",
        vec![dir("files"), dir("files/bin")],
        "filesystems=/usr/share/doc:ro;\n",
    );
    add(&env, "fine.tar", &fine, &["install", "--yes"]);
    let evil = app_img("org.test.Evil", "1", vec![symlink("files", "/")], "");
    add(&env, "evil.tar", &evil, &["install", "--yes"]);

    let out = env.ok(&["run", "org.test.Fine", "--command", "/bin/ls", "--", "/etc"]);
    assert!(out.contains("passwd"), "{out}");
    for host in ["shadow", "os-release", "debian_version", "fstab"] {
        assert!(
            !out.split_whitespace().any(|n| n == host),
            "/etc shows the host's {host}: {out}"
        );
    }
    let err = env.fails(&[
        "run",
        "org.test.Evil",
        "--command",
        "/bin/sh",
        "--",
        "-c",
        "ls /app",
    ]);
    assert!(err.contains("not a directory"), "{err}");

    // A grant under /usr is not given (the runtime's `share` link would
    // lead the mount point onto the host), and a bind through the
    // layout's /var/tmp link is refused, never made on the host.
    let src = env.write("src.txt", b"x");
    let o = env.run(&["run", "org.test.Fine", "--command", "/bin/true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not granted"), "{err}");
    let name = format!("berth-test-{}", std::process::id());
    let with_bind = |dest: &str| {
        let bind = format!("{}:{dest}:ro", src.display());
        env.run(&[
            "run",
            "--bind",
            &bind,
            "org.test.Fine",
            "--command",
            "/bin/true",
        ])
    };
    let o = with_bind(&format!("/var/tmp/{name}"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("symbolic link"),
        "{err}"
    );
    let _ = with_bind(&format!("/usr/share/{name}"));
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "made on the host's /tmp"
    );
    assert_eq!(
        std::fs::read_dir(&host_target).unwrap().count(),
        0,
        "made on the host through the runtime's link"
    );
}

/// An installed Flatpak app keeps the runtime image it was installed with:
/// another image claiming the same ref changes nothing, even on a
/// reinstall; an update onto another runtime image asks first.
#[test]
fn a_flatpak_app_keeps_its_runtime_until_the_user_agrees() {
    let env = Env::new();
    add(
        &env,
        "rt.tar",
        &rt_img("1", vec![file("files/etc/which", b"first\n")]),
        &["import"],
    );
    let app = app_img("org.test.Pin", "1", vec![dir("files")], "");
    add(&env, "app.tar", &app, &["install", "--yes"]);
    let which = |env: &Env| {
        env.ok(&[
            "run",
            "org.test.Pin",
            "--command",
            "/bin/cat",
            "--",
            "/etc/which",
        ])
    };
    assert_eq!(which(&env), "first\n");
    // Another image says it is the same runtime.
    let mut other = rt_img("1", vec![file("files/etc/which", b"other\n")]);
    other.name = Some("example/theme:1".into());
    add(&env, "other.tar", &other, &["import"]);
    assert_eq!(which(&env), "first\n");
    let o = add(&env, "app.tar", &app, &["install", "--yes"]);
    assert!(o.contains("No new permissions"), "{o}");
    assert_eq!(which(&env), "first\n");
    // Version 2 of the app is built on runtime branch 2: the review says
    // so, and it is not installed without a yes.
    add(
        &env,
        "rt2.tar",
        &rt_img("2", vec![file("files/etc/which", b"second\n")]),
        &["import"],
    );
    let v2 = app_img("org.test.Pin", "2", vec![dir("files"), dir("files/v2")], "");
    let path = env.write("app2.tar", &v2.oci_archive());
    let o = env.run(&["install", path.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("moves to another image of that runtime"),
        "{out}"
    );
    assert_eq!(which(&env), "first\n");
    env.ok(&["install", "--yes", path.to_str().unwrap()]);
    assert_eq!(which(&env), "second\n");
    // Rollback takes the runtime back with the app.
    env.ok(&["rollback", "org.test.Pin"]);
    assert_eq!(which(&env), "first\n");
}

/// A registry of Flatpaks (as Fedora runs one): the app's runtime, not in
/// the store, is found in the registry's Flatpak index by its exact ref
/// and pulled by digest; a runtime the index lacks is named.
#[test]
fn a_flatpak_apps_runtime_comes_from_its_registrys_index() {
    const T: &str = "a_flatpak_apps_runtime_comes_from_its_registrys_index";
    if !have_tool(T, "python3") {
        return;
    }
    let env = Env::new();
    let root = env.path("registry");
    rt_img("1", vec![file("files/etc/which", b"from the index\n")])
        .oci_dir(&root.join("flatpak/platform"));
    app_img("org.test.Far", "1", vec![dir("files")], "shared=network;\n")
        .oci_dir(&root.join("flatpak/far"));
    app_img("org.test.Lost", "9", vec![dir("files")], "").oci_dir(&root.join("flatpak/lost"));
    let script = env.write("registry.py", include_bytes!("flatpak/registry.py"));
    let port = free_port();
    let mut server = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(&root)
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed().as_secs() < 10, "the registry did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = env.run(&[
        "install",
        "--yes",
        &format!("localhost:{port}/flatpak/far:1"),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lost = env.run(&[
        "install",
        "--yes",
        &format!("localhost:{port}/flatpak/lost:9"),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("looking for it in localhost:{port}")),
        "{text}"
    );
    assert!(text.contains("runtime/org.test.Rt/x86_64/1"), "{text}");
    assert_eq!(
        env.ok(&[
            "run",
            "org.test.Far",
            "--command",
            "/bin/cat",
            "--",
            "/etc/which"
        ]),
        "from the index\n"
    );
    let err = String::from_utf8_lossy(&lost.stderr);
    assert!(!lost.status.success(), "{err}");
    assert!(
        err.contains("runtime/org.test.Rt/x86_64/9") && err.contains("Flatpak index"),
        "{err}"
    );
}
