//! Interoperability with real peers: skopeo, podman and umoci read what
//! berth writes, and berth reads what they write.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").args(["-c", cmd]).output().unwrap()
}

fn sh_ok(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Export `compat/app:1` to `out`: the archive's image digest. Its gzip
/// layer (another tool's gzip) is re-created from the store's layer as
/// berth compresses, so that digest is not the imported one; the
/// uncompressed layer comes back as it was.
fn export(env: &Env, out: &std::path::Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["export", "compat/app:1", out.to_str().unwrap(), "--json"]))
            .unwrap();
    assert_eq!(v["layers_replaced"], 1, "{v}");
    v["image"].as_str().unwrap().to_owned()
}

/// gzip and uncompressed layers: umoci 0.4 and docker-archive reject zstd.
fn demo(env: &Env) -> Img {
    let img = Img::new(vec![
        (simple_layer("c1"), Comp::Gzip),
        (simple_layer("c2"), Comp::None),
    ])
    .named("compat/app:1");
    env.ok(&[
        "import",
        env.write("c.tar", &img.oci_archive()).to_str().unwrap(),
    ]);
    img
}

#[test]
fn skopeo_reads_the_store_and_exports() {
    if !have_tool("skopeo_reads_the_store_and_exports", "skopeo") {
        return;
    }
    let env = Env::new();
    let img = demo(&env);
    let store = env.home();
    let out = sh_ok(&format!(
        "skopeo inspect oci:{}:compat/app:1",
        store.display()
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], img.manifest_digest());
    let exp = env.path("exp.tar");
    let digest = export(&env, &exp);
    let v: serde_json::Value = serde_json::from_str(&sh_ok(&format!(
        "skopeo inspect oci-archive:{}",
        exp.display()
    )))
    .unwrap();
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn berth_imports_what_skopeo_writes() {
    if !have_tool("berth_imports_what_skopeo_writes", "skopeo") {
        return;
    }
    let env = Env::new();
    // The source is berth's own export (skopeo then converts it).
    let src_env = Env::new();
    let img = Img::new(vec![(simple_layer("s"), Comp::Gzip)]).named("src/app:1");
    src_env.ok(&[
        "import",
        src_env.write("s.tar", &img.oci_archive()).to_str().unwrap(),
    ]);
    let src = env.path("src.tar");
    src_env.ok(&["export", "src/app:1", src.to_str().unwrap()]);
    let d = env.dir.path().display();
    sh_ok(&format!(
        "skopeo copy -q oci-archive:{}  docker-archive:{d}/docker.tar:sk/docker:1",
        src.display()
    ));
    sh_ok(&format!(
        "skopeo copy -q --dest-compress-format zstd oci-archive:{} oci:{d}/zdir:sk/zstd:1",
        src.display()
    ));
    sh_ok(&format!(
        "skopeo copy -q oci-archive:{} oci-archive:{d}/oa.tar:sk/oci:1",
        src.display()
    ));
    env.ok(&["import", &format!("{d}/docker.tar")]);
    env.ok(&["import", &format!("{d}/zdir")]);
    env.ok(&["import", &format!("{d}/oa.tar")]);
    assert_eq!(
        env.image_names(),
        vec!["docker.io/sk/docker:1", "sk/oci:1", "sk/zstd:1"]
    );
    env.assert_fsck_clean();
}

#[test]
fn podman_loads_an_export() {
    if !have_tool("podman_loads_an_export", "podman") {
        return;
    }
    if !is_root() {
        skip(
            "podman_loads_an_export",
            "rootless podman needs subuid setup; covered by the root pass",
        );
        return;
    }
    let env = Env::new();
    demo(&env);
    let exp = env.path("p.tar");
    let exported = export(&env, &exp);
    let root = env.path("podman-root");
    let runroot = env.path("podman-run");
    let podman = format!(
        "podman --root {} --runroot {} --storage-driver vfs",
        root.display(),
        runroot.display()
    );
    let out = sh_ok(&format!("{podman} load -i {} 2>&1", exp.display()));
    assert!(out.contains("compat/app:1"), "{out}");
    let digest = sh_ok(&format!(
        "{podman} image inspect --format '{{{{.Digest}}}}' compat/app:1"
    ));
    assert_eq!(digest.trim(), exported);
    // And berth reads podman's docker-archive.
    let da = env.path("pd.tar");
    sh_ok(&format!(
        "{podman} save --format docker-archive -o {} compat/app:1",
        da.display()
    ));
    let env2 = Env::new();
    env2.ok(&["import", da.to_str().unwrap()]);
    assert_eq!(env2.image_names(), vec!["localhost/compat/app:1"]);
}

#[test]
fn umoci_unpacks_what_berth_exports() {
    if !have_tool("umoci_unpacks_what_berth_exports", "umoci") {
        return;
    }
    let env = Env::new();
    demo(&env);
    // The store keeps layers, not blobs: umoci reads the exported layout.
    let exp = env.path("u.tar");
    export(&env, &exp);
    let layout = env.path("layout");
    std::fs::create_dir(&layout).unwrap();
    sh_ok(&format!(
        "tar -xf {} -C {}",
        exp.display(),
        layout.display()
    ));
    let bundle = env.path("bundle");
    sh_ok(&format!(
        "umoci unpack --rootless --image {}:compat/app:1 {}",
        layout.display(),
        bundle.display()
    ));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/hello")).unwrap(),
        "hello c2\n"
    );
}
