//! Registries, updates, rollback, mask and rebase against Debian's
//! docker-registry (the CNCF distribution registry) on loopback, started
//! and stopped by each test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// An author store with the busybox runtime example/rt:1, and a registry.
fn author_with_registry(test: &str) -> Option<(Env, Registry)> {
    if !tools(test) {
        return None;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    runtime(&author, "example/rt:1", "1");
    Some((author, reg))
}

fn tools(test: &str) -> bool {
    have_tool(test, "docker-registry") && have_tool(test, "htpasswd")
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

/// A busybox runtime whose /etc/runtime-version says `v`.
fn runtime(env: &Env, name: &str, v: &str) {
    let extra = vec![
        symlink("bin/mkdir", "busybox"),
        symlink("bin/cp", "busybox"),
        symlink("bin/chmod", "busybox"),
        file("etc/runtime-version", format!("{v}\n").as_bytes()),
    ];
    busybox_image(env, name, extra);
}

/// Build an app on `rt` whose command prints its version, the runtime's
/// version, and the app's data file.
fn build_app(env: &Env, rt: &str, version: &str, perms: &[&str]) -> String {
    let dir = env.path(&format!("app-{version}"));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("src/show.sh"),
        format!("#!/bin/sh\necho app {version} on runtime $(cat /etc/runtime-version)\n[ -z \"$1\" ] || sleep \"$1\"\n"),
    )
    .unwrap();
    let perms: Vec<String> = perms.iter().map(|p| format!("{p:?}")).collect();
    std::fs::write(
        dir.join("berth.toml"),
        format!(
            "id = \"org.example.Show\"\ncommand = \"/app/bin/show\"\npermissions = [{}]\nruntime = \"{rt}\"\nimage = \"example/show:{version}\"\n[build]\nsource = \"src\"\nsteps = [\"mkdir -p $BERTH_DEST/bin && cp show.sh $BERTH_DEST/bin/show && chmod 755 $BERTH_DEST/bin/show\"]\n",
            perms.join(", ")
        ),
    )
    .unwrap();
    env.ok(&["build", dir.join("berth.toml").to_str().unwrap()]);
    format!("example/show:{version}")
}

#[test]
fn push_pull_only_missing_blobs_and_refuse_tampering() {
    const T: &str = "push_pull_only_missing_blobs_and_refuse_tampering";
    let Some((author, reg)) = author_with_registry(T) else {
        return;
    };
    let img = build_app(&author, "example/rt:1", "1", &[]);
    let r = format!("localhost:{}/apps/show:1", reg.port);
    author.ok(&["push", &img, &r]);
    let again = author.ok(&["push", &img, &r]);
    assert!(again.contains("0 B uploaded"), "{again}");
    let v = json(&author.ok(&["push", "--json", &img, &r]));
    assert_eq!(v["bytes_uploaded"], 0, "{v}");
    assert_eq!(v["blobs_uploaded"], 0, "{v}");
    assert!(v["blobs_already_there"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"), "{v}");

    let user = Env::new();
    let p = json(&user.ok(&["pull", "--json", &r]));
    assert!(p["downloaded_bytes"].as_u64().unwrap() > 0);
    assert_eq!(user.image_names(), std::slice::from_ref(&r));
    // Pulling again fetches nothing.
    let p2 = json(&user.ok(&["pull", "--json", &r]));
    assert_eq!(p2["downloaded_bytes"], 0);
    user.assert_fsck_clean();
    // A layer whose tar record was damaged (and removed by repair) cannot
    // re-create its blob: the next pull fetches it, and export works again.
    let pulled = json(&user.ok(&["inspect", "--json", &r]));
    let top = pulled["layers"].as_array().unwrap().last().unwrap()["diff_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let split = user.home().join(format!("layers/{top}.tar-split"));
    std::fs::write(&split, b"garbled").unwrap();
    user.ok(&["fsck", "--repair"]);
    assert!(!split.exists());
    let out = user.path("out.tar");
    let err = user.fails(&["export", &r, out.to_str().unwrap()]);
    assert!(err.contains("missing"), "{err}");
    let p3 = json(&user.ok(&["pull", "--json", &r]));
    assert!(p3["downloaded_bytes"].as_u64().unwrap() > 0, "{p3}");
    user.ok(&["export", &r, out.to_str().unwrap()]);
    user.assert_fsck_clean();

    // Tamper with the app layer's bytes in the registry's storage.
    let app = json(&author.ok(&["inspect", "--json", &img]));
    let layer = app["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let data = reg.data.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{layer}/data",
        &layer[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let victim = Env::new();
    let err = victim.fails(&["pull", &r]);
    assert!(
        err.contains("digest mismatch") && err.contains(&layer[..12]),
        "{err}"
    );
    assert!(
        victim.image_names().is_empty(),
        "a tampered image was stored"
    );
    // And the same through install.
    let err = victim.fails(&["install", "--yes", &r]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(!victim.ok(&["list"]).contains("org.example.Show"));
}

#[test]
fn interrupted_pull_resumes() {
    const T: &str = "interrupted_pull_resumes";
    if !tools(T) {
        return;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    // A layer big enough to matter: 4 MiB of incompressible bytes.
    let noise = noise(4 << 20, 0x9e3779b97f4a7c15u64);
    busybox_image(&author, "big/img:1", vec![file("noise.bin", &noise)]);
    let r = format!("localhost:{}/big/img:1", reg.port);
    author.ok(&["push", "big/img:1", &r]);
    let info = json(&author.ok(&["inspect", "--json", "big/img:1"]));
    let layer = &info["layers"][0];
    let (digest, size) = (
        layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_owned(),
        layer["size"].as_u64().unwrap(),
    );
    let manifest = info["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    // The author's store re-creates the blob (it keeps the layer): the
    // registry's copy is the same bytes.
    let blob = std::fs::read(reg.data.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{digest}/data",
        &digest[..2]
    )))
    .unwrap();

    // What a pull killed half-way leaves behind: half the blob.
    let user = Env::new();
    user.ok(&["images"]); // creates the store
    let dir = user
        .home()
        .join(format!("tmp/pull-{manifest}/blobs/sha256"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{digest}.partial")),
        &blob[..blob.len() / 2],
    )
    .unwrap();
    let p = json(&user.ok(&["pull", "--json", &r]));
    let got = p["downloaded_bytes"].as_u64().unwrap();
    assert!(got < size, "resumed pull downloaded {got} of {size} bytes");
    user.assert_fsck_clean();

    // A partial with wrong bytes is detected and fetched again whole.
    let other = Env::new();
    other.ok(&["images"]);
    let dir = other
        .home()
        .join(format!("tmp/pull-{manifest}/blobs/sha256"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{digest}.partial")),
        vec![7u8; blob.len() / 2],
    )
    .unwrap();
    other.ok(&["pull", &r]);
    other.assert_fsck_clean();
    assert_eq!(
        other
            .ok(&["run", &r, "--", "/bin/sh", "-c", "cat /noise.bin | wc -c"])
            .trim(),
        (4 << 20).to_string()
    );

    // A real interruption: kill -9 part-way, then pull again.
    let third = Env::new();
    let mut c = third.cmd().args(["pull", &r]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let _ = c.kill();
    let _ = c.wait();
    third.ok(&["pull", &r]);
    third.assert_fsck_clean();
}

#[test]
fn authenticated_registry_uses_the_auth_file() {
    const T: &str = "authenticated_registry_uses_the_auth_file";
    if !tools(T) {
        return;
    }
    let env = Env::new();
    let reg = start_registry(env.dir.path(), Some(("alice", "s3cret")));
    runtime(&env, "example/rt:1", "1");
    let r = format!("localhost:{}/private/rt:1", reg.port);
    // No credentials: a clear refusal.
    let err = env.fails(&["push", "example/rt:1", &r]);
    assert!(
        err.contains(&format!("registry localhost:{}", reg.port)),
        "{err}"
    );
    // Docker's config.json form, through REGISTRY_AUTH_FILE.
    let auth = env.write(
        "auth.json",
        format!(
            "{{\"auths\":{{\"localhost:{}\":{{\"auth\":\"YWxpY2U6czNjcmV0\"}}}}}}",
            reg.port
        )
        .as_bytes(),
    );
    let with_auth = |args: &[&str]| {
        let o = env
            .cmd()
            .args(args)
            .env("REGISTRY_AUTH_FILE", &auth)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    with_auth(&["push", "example/rt:1", &r]);
    let user = Env::new();
    let o = user
        .cmd()
        .args(["pull", &r])
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Wrong password: refused.
    let bad = env.write(
        "bad.json",
        format!(
            "{{\"auths\":{{\"localhost:{}\":{{\"username\":\"alice\",\"password\":\"nope\"}}}}}}",
            reg.port
        )
        .as_bytes(),
    );
    let o = Env::new()
        .cmd()
        .args(["pull", &r])
        .env("REGISTRY_AUTH_FILE", &bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

const TOKEN_SERVER: &str = include_str!("support/token-server.py");

/// A registry with token auth (the Docker Hub scheme): a token server on
/// another port checks basic credentials and issues signed JWTs.
#[test]
fn token_auth_registry() {
    const T: &str = "token_auth_registry";
    if !tools(T) || !have_tool(T, "openssl") || !have_tool(T, "python3") {
        return;
    }
    let env = Env::new();
    let d = env.dir.path();
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=berth-token",
        ])
        .arg("-keyout")
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = env.write("token-server.py", TOKEN_SERVER.as_bytes());
    let tport = free_port();
    let mut server = Command::new("python3")
        .arg(&script)
        .arg(tport.to_string())
        .arg(d.join("key.pem"))
        .arg(d.join("cert.pem"))
        .args(["bob", "hunter2"])
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", tport)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "token server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = free_port();
    let cfg = d.join("registry.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
            d.join("data").display(),
            d.join("cert.pem").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry {
        child,
        port,
        data: d.join("data"),
    };
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    runtime(&env, "example/rt:1", "1");
    let r = format!("localhost:{}/tok/rt:1", reg.port);
    let err = env.fails(&["push", "example/rt:1", &r]);
    assert!(err.contains("registry localhost"), "{err}");
    let auth = env.write(
        "auth.json",
        format!(
            "{{\"auths\":{{\"localhost:{}\":{{\"username\":\"bob\",\"password\":\"hunter2\"}}}}}}",
            reg.port
        )
        .as_bytes(),
    );
    let run = |e: &Env, args: &[&str]| {
        let o = e
            .cmd()
            .args(args)
            .env("REGISTRY_AUTH_FILE", &auth)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&env, &["push", "example/rt:1", &r]);
    let user = Env::new();
    run(&user, &["pull", &r]);
    assert_eq!(
        user.ok(&["run", &r, "--", "/bin/cat", "/etc/runtime-version"]),
        "1\n"
    );
    drop(reg);
    let _ = server.kill();
    let _ = server.wait();
}

/// A registry with `example/show:1` (on `example/rt:1`, asking for
/// `perms`) pushed as `apps/show:stable`: the author, the registry, the
/// reference.
fn published_show(test: &str, perms: &[&str]) -> Option<(Env, Registry, String)> {
    if !tools(test) {
        return None;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    let r = format!("localhost:{}/apps/show:stable", reg.port);
    runtime(&author, "example/rt:1", "1");
    let v1 = build_app(&author, "example/rt:1", "1", perms);
    author.ok(&["push", &v1, &r]);
    Some((author, reg, r))
}

/// Installing from a registry shows what will be downloaded, what is on
/// this computer already, and what the app asks for, before any layer
/// is fetched; without consent nothing is.
#[test]
fn install_reviews_before_downloading() {
    let Some((author, reg, r)) =
        published_show("install_reviews_before_downloading", &["share=network"])
    else {
        return;
    };
    author.ok(&[
        "push",
        "example/rt:1",
        &format!("localhost:{}/rt:1", reg.port),
    ]);

    // No terminal and no --yes: refused before the download.
    let user = Env::new();
    let o = user.run(&["install", &r]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success());
    assert!(out.contains("to download"), "{out}");
    assert!(out.contains("(share=network)"), "{out}");
    assert!(user.image_count() == 0, "nothing is stored");
    let blobs = std::fs::read_dir(user.home().join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(blobs <= 1, "only the config may be fetched: {blobs} blobs");

    // With the runtime on this computer, its bytes are not downloaded.
    user.ok(&["pull", &format!("localhost:{}/rt:1", reg.port)]);
    let out = user.ok(&["install", "--yes", &r]);
    assert!(out.contains("already on this computer"), "{out}");
    assert!(out.contains("Installed org.example.Show"), "{out}");
}

#[test]
fn install_update_rollback_mask() {
    let Some((author, _reg, r)) = published_show("install_update_rollback_mask", &[]) else {
        return;
    };

    let user = Env::new();
    let out = user.ok(&["install", "--yes", &r]);
    assert!(out.contains("Installed org.example.Show"), "{out}");
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
    assert!(user.ok(&["update"]).contains("up to date"));

    // The runtime is rebuilt with one change; the app is rebuilt on it.
    runtime(&author, "example/rt:1", "1-patched");
    let v2 = build_app(&author, "example/rt:1", "2", &[]);
    author.ok(&["push", &v2, &r]);
    let dry = user.ok(&["update", "--dry-run"]);
    let app2 = json(&author.ok(&["inspect", "--json", &v2]));
    let want: u64 = app2["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum::<u64>();
    // Everything changed but nothing the user already has: the new
    // runtime layer, the app layer, the config.
    assert!(dry.contains("bytes to download"), "{dry}");
    let bytes: u64 = dry
        .lines()
        .find_map(|l| l.strip_prefix("Total: "))
        .unwrap()
        .trim_end_matches(" bytes to download")
        .parse()
        .unwrap();
    assert!(
        bytes > 0 && bytes <= want + 4096,
        "dry run says {bytes}, layers are {want}"
    );
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n",
        "dry run changed something"
    );
    user.ok(&["update"]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 2 on runtime 1-patched\n"
    );

    // Only the app layer changes in v3: only it (and the config) is fetched.
    let v3 = build_app(&author, "example/rt:1", "3", &["share=network"]);
    author.ok(&["push", &v3, &r]);
    let app3 = json(&author.ok(&["inspect", "--json", &v3]));
    let app_layer = app3["layers"].as_array().unwrap().last().unwrap()["size"]
        .as_u64()
        .unwrap();
    let dry = user.ok(&["update", "--dry-run", "org.example.Show"]);
    let bytes: u64 = dry
        .lines()
        .find_map(|l| l.strip_prefix("Total: "))
        .unwrap()
        .trim_end_matches(" bytes to download")
        .parse()
        .unwrap();
    assert!(
        bytes >= app_layer && bytes < app_layer + 4096,
        "{bytes} vs app layer {app_layer}"
    );
    // v3 asks for the network: no consent, no update.
    let o = user
        .cmd()
        .args(["update"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("consent"), "{err}");
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 2 on runtime 1-patched\n"
    );
    let out = user.ok(&["update", "--yes"]);
    assert!(out.contains("Use the internet"), "{out}");
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 3 on runtime 1-patched\n"
    );

    // Rollback, and mask keeps it there.
    user.ok(&["rollback", "org.example.Show"]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 2 on runtime 1-patched\n"
    );
    user.ok(&["mask", "org.example.Show"]);
    assert!(user.ok(&["update", "--yes"]).contains("masked"));
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 2 on runtime 1-patched\n"
    );
    user.ok(&["mask", "--remove", "org.example.Show"]);
    user.ok(&["update", "--yes"]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 3 on runtime 1-patched\n"
    );
    // gc keeps every image a kept deployment uses.
    user.ok(&["gc"]);
    user.ok(&["rollback", "org.example.Show"]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 2 on runtime 1-patched\n"
    );
    user.assert_fsck_clean();
}

#[test]
fn kill_during_update_leaves_the_old_version_running() {
    const T: &str = "kill_during_update_leaves_the_old_version_running";
    if !tools(T) {
        return;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    let r = format!("localhost:{}/apps/show:stable", reg.port);
    runtime(&author, "example/rt:1", "1");
    author.ok(&["push", &build_app(&author, "example/rt:1", "1", &[]), &r]);
    let user = Env::new();
    user.ok(&["install", "--yes", &r]);
    // A running instance of version 1.
    let mut running = user
        .cmd()
        .args(["run", "org.example.Show", "--", "30"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let inst = wait_for_instance(&user);
    let noise = noise(8 << 20, 88172645463325252u64);
    busybox_image(
        &author,
        "example/rt:1",
        vec![
            symlink("bin/mkdir", "busybox"),
            symlink("bin/cp", "busybox"),
            symlink("bin/chmod", "busybox"),
            file("etc/runtime-version", b"2\n"),
            file("usr/share/big", &noise),
        ],
    );
    author.ok(&["push", &build_app(&author, "example/rt:1", "2", &[]), &r]);
    for delay in [20u64, 60, 120, 250, 400] {
        let mut c = user
            .cmd()
            .args(["update", "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = c.kill();
        let _ = c.wait();
        // Whatever the moment: a working app, old or new, and the old
        // instance still running.
        let out = user.ok(&["run", "org.example.Show"]);
        assert!(
            out == "app 1 on runtime 1\n" || out == "app 2 on runtime 2\n",
            "{out}"
        );
        let ps = user.ok(&["ps", "--json"]);
        assert!(
            ps.contains(inst["id"].as_str().unwrap()),
            "the running instance died"
        );
    }
    user.ok(&["update", "--yes"]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 2 on runtime 2\n"
    );
    user.assert_fsck_clean();
    user.ok(&["kill", inst["id"].as_str().unwrap()]);
    let _ = running.wait();
}

#[test]
fn rebase_onto_a_patched_runtime() {
    let author = Env::new();
    runtime(&author, "example/rt:1", "1");
    runtime(&author, "example/rt:1.1", "1.1-security");
    build_app(&author, "example/rt:1", "1", &["share=ipc"]);
    author.ok(&["install", "--yes", "example/show:1"]);
    assert_eq!(
        author.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
    let out = author.ok(&["rebase", "org.example.Show", "--onto", "example/rt:1.1"]);
    assert!(
        out.contains("1 runtime layer(s) replaced, 1 app layer(s) kept"),
        "{out}"
    );
    assert_eq!(
        author.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1.1-security\n"
    );
    // The rebased image records its new base; permissions are unchanged.
    let perms = author.ok(&["permissions", "org.example.Show"]);
    assert!(perms.contains("share=ipc"), "{perms}");
    author.ok(&["rollback", "org.example.Show"]);
    assert_eq!(
        author.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );

    // No base annotation: refused with the reason.
    let other = Env::new();
    let img = busybox_img(
        "plain/app:1",
        vec![],
        &[
            ("org.berth.app.id", "org.example.Plain"),
            ("org.berth.app.command", "/bin/true"),
        ],
    );
    let p = other.write("plain.tar", &img.oci_archive());
    other.ok(&["install", "--yes", p.to_str().unwrap()]);
    runtime(&other, "example/rt:1.1", "x");
    let err = other.fails(&["rebase", "org.example.Plain", "--onto", "example/rt:1.1"]);
    assert!(
        err.contains("no image in the store is the bottom of its layers"),
        "{err}"
    );

    // A base annotation naming a runtime whose layers are not the image's
    // first layers: refused.
    let rt = json(&other.ok(&["inspect", "--json", "example/rt:1.1"]));
    let mut forged = busybox_img(
        "forged/app:1",
        vec![],
        &[
            ("org.berth.app.id", "org.example.Forged"),
            ("org.berth.app.command", "/bin/true"),
        ],
    );
    let files = forged.oci_files();
    let md = forged.manifest_digest();
    let mut m: serde_json::Value =
        serde_json::from_slice(&files[&format!("blobs/sha256/{}", &md[7..])]).unwrap();
    m["annotations"] = serde_json::json!({
        "org.opencontainers.image.base.name": "example/rt:1.1",
        "org.opencontainers.image.base.digest": rt["digest"],
    });
    forged.raw_manifest = Some(serde_json::to_vec(&m).unwrap());
    let p = other.write("forged.tar", &forged.oci_archive());
    other.ok(&["install", "--yes", p.to_str().unwrap()]);
    let err = other.fails(&["rebase", "org.example.Forged", "--onto", "example/rt:1.1"]);
    assert!(
        err.contains("does not start with the layers of its recorded runtime"),
        "{err}"
    );

    // A recorded base that is not in the store: refused.
    runtime(&author, "example/rt:1", "1-rebuilt");
    build_app(&author, "example/rt:1", "9", &["share=ipc"]);
    // Make the recorded base another runtime than the layers say.
    author.ok(&["tag", "example/rt:1.1", "example/rt:1"]);
    let bundle = author.path("show9.berth");
    author.ok(&["bundle", "example/show:9", bundle.to_str().unwrap()]);
    let third = Env::new();
    third.ok(&["install", "--yes", bundle.to_str().unwrap()]);
    // third has no copy of the recorded base: refused clearly.
    let err = third.fails(&["rebase", "org.example.Show", "--onto", "example/show:9"]);
    assert!(err.contains("is not in the store"), "{err}");
}

#[test]
fn thin_bundle_fetches_its_runtime_from_the_registry() {
    const T: &str = "thin_bundle_fetches_its_runtime_from_the_registry";
    if !tools(T) {
        return;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    let rt = format!("localhost:{}/runtimes/rt:1", reg.port);
    runtime(&author, &rt, "1");
    author.ok(&["push", &rt, &rt]);
    let img = build_app(&author, &rt, "1", &[]);
    let thin = author.path("show.berth");
    author.ok(&["bundle", "--thin", &img, thin.to_str().unwrap()]);
    let user = Env::new();
    let out = user.ok(&["install", "--yes", thin.to_str().unwrap()]);
    assert!(out.contains("fetching its runtime"), "{out}");
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
    // With the registry gone, a fresh machine gets a clear error.
    drop(reg);
    let err = Env::new().fails(&["install", "--yes", thin.to_str().unwrap()]);
    assert!(
        err.contains("fetching the runtime") && err.contains(&rt),
        "{err}"
    );
}

#[test]
fn signed_policy_refuses_unsigned_and_tampered_images() {
    const T: &str = "signed_policy_refuses_unsigned_and_tampered_images";
    let Some((author, reg)) = author_with_registry(T) else {
        return;
    };
    let v1 = build_app(&author, "example/rt:1", "1", &[]);
    let key = author.path("author");
    author.ok(&["key", "generate", key.to_str().unwrap()]);
    let signed = format!("localhost:{}/apps/show:1", reg.port);
    let unsigned = format!("localhost:{}/apps/other:1", reg.port);
    author.ok(&[
        "push",
        "--sign",
        author.path("author.key").to_str().unwrap(),
        &v1,
        &signed,
    ]);
    author.ok(&["push", &v1, &unsigned]);
    // A second key that nobody trusts.
    let stranger = author.path("stranger");
    author.ok(&["key", "generate", stranger.to_str().unwrap()]);
    let by_stranger = format!("localhost:{}/apps/stranger:1", reg.port);
    author.ok(&[
        "push",
        "--sign",
        author.path("stranger.key").to_str().unwrap(),
        &v1,
        &by_stranger,
    ]);

    let user = Env::new();
    user.ok(&["images"]);
    std::fs::write(
        user.home().join("policy.toml"),
        format!(
            "default = \"reject\"\n[[scope]]\nprefix = \"localhost:{0}/apps\"\npolicy = \"signed\"\nkeys = [\"{1}\"]\n",
            reg.port,
            author.path("author.pub").display()
        ),
    )
    .unwrap();
    user.ok(&["install", "--yes", &signed]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
    let err = user.fails(&["pull", &unsigned]);
    assert!(err.contains("is not signed"), "{err}");
    let err = user.fails(&["pull", &by_stranger]);
    assert!(err.contains("not made by any trusted key"), "{err}");
    // Outside the signed scope, the default applies.
    let err = user.fails(&["pull", &format!("localhost:{}/elsewhere/x:1", reg.port)]);
    assert!(err.contains("rejects"), "{err}");

    // Tampered: the tag now points at a different manifest (v2 pushed
    // without a new signature over the signed tag).
    let v2 = build_app(&author, "example/rt:1", "2", &["share=network"]);
    author.ok(&["push", &v2, &signed]);
    let err = user.fails(&["update", "--yes"]);
    assert!(err.contains("is not signed"), "{err}");
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
    // Copying the old signature to the new digest does not help either:
    // the payload names the old digest.
    let v2d = json(&author.ok(&["inspect", "--json", &v2]))["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1d = json(&author.ok(&["inspect", "--json", &v1]))["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let tags = reg
        .data
        .join("docker/registry/v2/repositories/apps/show/_manifests/tags");
    let from = tags.join(format!("sha256-{}.sig", &v1d[7..]));
    let to = tags.join(format!("sha256-{}.sig", &v2d[7..]));
    let st = Command::new("cp")
        .arg("-a")
        .arg(&from)
        .arg(&to)
        .status()
        .unwrap();
    assert!(st.success());
    let err = user.fails(&["update", "--yes"]);
    assert!(err.contains("the signature is for"), "{err}");
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
}

#[test]
fn channels_install_as_and_promote() {
    const T: &str = "channels_install_as_and_promote";
    let Some((author, reg)) = author_with_registry(T) else {
        return;
    };
    let stable = format!("localhost:{}/apps/show:stable", reg.port);
    let testing = format!("localhost:{}/apps/show:testing", reg.port);
    author.ok(&[
        "push",
        &build_app(&author, "example/rt:1", "1", &[]),
        &stable,
    ]);
    author.ok(&[
        "push",
        &build_app(&author, "example/rt:1", "2", &[]),
        &testing,
    ]);

    let user = Env::new();
    user.ok(&["install", "--yes", &stable]);
    user.ok(&["install", "--yes", "--as", "testing", &testing]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
    assert_eq!(
        user.ok(&["run", "org.example.Show@testing"]),
        "app 2 on runtime 1\n"
    );
    let list = user.ok(&["list"]);
    assert!(list.contains("org.example.Show@testing"), "{list}");
    let menu = user
        .home()
        .join("exports/share/applications/org.example.Show@testing.desktop");
    assert!(
        std::fs::read_to_string(&menu)
            .unwrap()
            .contains("(testing)")
    );
    // Updates follow each copy's own origin.
    assert!(user.ok(&["update"]).contains("up to date"));

    user.ok(&["promote", "org.example.Show@testing"]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 2 on runtime 1\n"
    );
    assert!(!user.ok(&["list"]).contains("@testing"));
    assert!(!menu.exists());
    user.ok(&["rollback", "org.example.Show"]);
    assert_eq!(
        user.ok(&["run", "org.example.Show"]),
        "app 1 on runtime 1\n"
    );
    let err = user.fails(&["promote", "org.example.Show"]);
    assert!(err.contains("ID@CHANNEL"), "{err}");
    let err = user.fails(&["install", "--yes", "--as", "Bad Name", &testing]);
    assert!(err.contains("channel name"), "{err}");
}

/// An app whose runtime layer another tool recompressed (same diff-id,
/// another blob): a user who has the runtime downloads only the app's own
/// layer, and the runtime's content stays stored once.
#[test]
fn pulls_skip_a_recompressed_runtime_the_store_has() {
    const T: &str = "pulls_skip_a_recompressed_runtime_the_store_has";
    if !tools(T) {
        return;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    // The runtime, gzip; the app: the same layer uncompressed, plus its own.
    let base = layer(&[dir("etc"), file("etc/base", &noise(200_000, 7))]);
    let rt = Img::new(vec![(base.clone(), Comp::Gzip)]).named("example/base:1");
    let mut app = Img::new(vec![
        (base, Comp::None),
        (layer(&[dir("app"), file("app/hello", b"hi\n")]), Comp::Gzip),
    ])
    .named("example/recompressed:1");
    app.labels
        .insert("org.berth.app.id".into(), "org.example.Recompressed".into());
    app.labels
        .insert("org.berth.app.command".into(), "/app/hello".into());
    let app_tar = author.write("app.tar", &app.oci_archive());
    author.ok(&["import", app_tar.to_str().unwrap()]);
    let r = format!("localhost:{}/apps/recompressed:1", reg.port);
    let pushed = json(&author.ok(&["push", "--json", "example/recompressed:1", &r]));

    let user = Env::new();
    let rt_tar = user.write("rt.tar", &rt.oci_archive());
    user.ok(&["import", rt_tar.to_str().unwrap()]);
    let v = json(&user.ok(&["pull", "--json", &r]));
    let got = v["downloaded_bytes"].as_u64().unwrap();
    assert!(
        got < 10_000,
        "the runtime's layer was downloaded again ({got} bytes)"
    );
    let inspect = json(&user.ok(&["inspect", "--json", &r]));
    let first = inspect["layers"][0]["digest"].as_str().unwrap();
    assert!(
        !user.home().join("blobs/sha256").join(&first[7..]).exists(),
        "the recompressed copy is stored"
    );
    assert!(user.ok(&["fsck"]).contains(": clean ("));
    // The image is the one pushed, byte for byte: its digest did not change.
    assert_eq!(inspect["digest"], pushed["digest"]);
}

/// A runtime of two layers: a library that a security update patches,
/// and files that stay.
fn delta_runtime(lib: &[u8]) -> Img {
    Img::new(vec![
        (
            layer(&[
                dir("usr"),
                dir("usr/lib"),
                file("usr/lib/libbig.so.1", lib),
                file("usr/lib/libsame.so", &noise(300_000, 11)),
                file("usr/lib/small", b"tiny\n"),
            ]),
            Comp::Gzip,
        ),
        (
            layer(&[dir("etc"), file("etc/stays", &noise(200_000, 12))]),
            Comp::Gzip,
        ),
    ])
}

#[test]
fn updates_fetch_layer_deltas_and_fall_back_to_whole_layers() {
    const T: &str = "updates_fetch_layer_deltas_and_fall_back_to_whole_layers";
    if !tools(T) {
        return;
    }
    let author = Env::new();
    let reg = start_registry(author.dir.path(), None);
    let old_lib = noise(1_000_000, 10);
    let mut new_lib = old_lib.clone();
    new_lib[400_000..400_100].copy_from_slice(&[7u8; 100]);
    new_lib.extend_from_slice(b"patched");
    let v1 = delta_runtime(&old_lib).named("example/drt:1");
    let v2 = delta_runtime(&new_lib).named("example/drt:2");
    for (name, img) in [("v1.tar", &v1), ("v2.tar", &v2)] {
        let p = author.write(name, &img.oci_archive());
        author.ok(&["import", p.to_str().unwrap()]);
    }
    let r1 = format!("localhost:{}/rt/drt:1", reg.port);
    let r2 = format!("localhost:{}/rt/drt:2", reg.port);
    author.ok(&["push", "example/drt:1", &r1]);
    let pushed = json(&author.ok(&[
        "push",
        "--json",
        "--delta-from",
        "example/drt:1",
        "example/drt:2",
        &r2,
    ]));
    let d = &pushed["deltas"][0]["delta"];
    assert_eq!(d["layers"], 1, "{pushed}");
    assert!(d["bytes"].as_u64().unwrap() < 20_000, "{pushed}");
    // The plain output says what went up.
    let again = author.ok(&[
        "push",
        "--delta-from",
        "example/drt:1",
        "example/drt:2",
        &r2,
    ]);
    assert!(
        again.contains("Published deltas from example/drt:1: 1 layer(s)"),
        "{again}"
    );

    // A user with v1 updates to v2: the library's layer comes as a delta,
    // the unchanged layer not at all.
    let user = Env::new();
    user.ok(&["pull", &r1]);
    let v = json(&user.ok(&["pull", "--json", &r2]));
    assert_eq!(v["layers_from_deltas"], 1, "{v}");
    let got = v["downloaded_bytes"].as_u64().unwrap();
    assert!(
        got < 20_000,
        "an update of one changed library fetched {got} bytes"
    );
    // What else it read (manifest, config, the referrers list, the
    // artifact) is counted apart, and small.
    let meta = v["metadata_bytes"].as_u64().unwrap();
    assert!(meta > 500 && meta < 20_000, "{v}");
    let lib_layer = &v2.diff_ids()[0];
    assert_eq!(
        std::fs::read(user.layer_dir(lib_layer).join("usr/lib/libbig.so.1")).unwrap(),
        new_lib
    );
    user.assert_fsck_clean();
    // The rebuilt layer leaves the store as the content it is: a push of
    // the pulled image elsewhere works.
    let r3 = format!("localhost:{}/rt/copy:2", reg.port);
    user.ok(&["push", &r2, &r3]);
    let other = Env::new();
    other.ok(&["pull", &r3]);
    other.assert_fsck_clean();

    // The old side must be an image of the same repository: the same v1
    // pulled from elsewhere is not used (a registry could otherwise probe
    // the files of any image the user has).
    let elsewhere = format!("localhost:{}/other/drt:1", reg.port);
    author.ok(&["push", "example/drt:1", &elsewhere]);
    let stranger = Env::new();
    stranger.ok(&["pull", &elsewhere]);
    let v = json(&stranger.ok(&["pull", "--json", &r2]));
    assert_eq!(v["layers_from_deltas"], 0, "{v}");

    // Without deltas (BERTH_NO_DELTAS) the same update is whole layers.
    let plain = Env::new();
    plain.ok(&["pull", &r1]);
    let out = plain
        .cmd()
        .env("BERTH_NO_DELTAS", "1")
        .args(["pull", "--json", &r2])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["layers_from_deltas"], 0, "{v}");
    assert!(v["downloaded_bytes"].as_u64().unwrap() > 900_000, "{v}");

    // An old file that is not what the delta was made against (here, a
    // store damaged on disk) rebuilds other bytes: the diff-id check
    // refuses them and the whole layer is fetched instead.
    let broken = Env::new();
    broken.ok(&["pull", &r1]);
    let old_file = broken
        .layer_dir(&v1.diff_ids()[0])
        .join("usr/lib/libbig.so.1");
    let mut bytes = std::fs::read(&old_file).unwrap();
    bytes[10] ^= 0xff;
    let _ = std::fs::set_permissions(
        &old_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    );
    std::fs::write(&old_file, &bytes).unwrap();
    let out = broken.cmd().args(["pull", "--json", &r2]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("did not apply") && err.contains("fetching the whole layer"),
        "{err}"
    );
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["layers_from_deltas"], 0, "{v}");
    assert_eq!(
        std::fs::read(broken.layer_dir(lib_layer).join("usr/lib/libbig.so.1")).unwrap(),
        new_lib
    );
}
