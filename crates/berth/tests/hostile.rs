//! Hostile input: one test per attack. Each asserts a clear error (or the
//! documented neutralization), no panic, nothing written outside the
//! store, no image recorded, and a store that fsck calls clean.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;

/// A victim dir beside the store that no import may touch.
struct Victim {
    env: Env,
    dir: PathBuf,
}

impl Victim {
    fn new() -> Victim {
        let env = Env::new();
        let dir = env.path("victim");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep"), b"original").unwrap();
        Victim { env, dir }
    }

    fn untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("keep")],
            "something was written outside the store"
        );
        assert_eq!(std::fs::read(self.dir.join("keep")).unwrap(), b"original");
    }

    /// Import must fail with `expect` in the message and leave no trace.
    fn refused(&self, bytes: &[u8], expect: &str) {
        let p = self.env.write("evil.tar", bytes);
        let err = self
            .env
            .fails(&["import", p.to_str().unwrap(), "--tag", "evil:1"]);
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
        self.untouched();
        assert_eq!(self.env.image_count(), 0);
        assert_eq!(
            std::fs::read_dir(self.env.home().join("layers"))
                .unwrap()
                .count(),
            0,
            "no layer left"
        );
        self.env.assert_fsck_clean();
        self.env.ok(&["gc"]);
        assert_eq!(
            std::fs::read_dir(self.env.home().join("tmp"))
                .unwrap()
                .count(),
            0,
            "gc leaves no temp files"
        );
    }

    fn rel_victim(&self) -> String {
        // From the layer root (store/tmp/layer-X or store/layers/X) to victim/.
        "../../../victim/pwned".into()
    }
}

fn one_layer(entries: &[E]) -> Vec<u8> {
    Img::new(vec![(layer(entries), Comp::Gzip)]).oci_archive()
}

#[test]
fn dotdot_path() {
    let v = Victim::new();
    let p = v.rel_victim();
    v.refused(&one_layer(&[file(&p, b"x")]), "path contains '..'");
}

#[test]
fn absolute_path() {
    let v = Victim::new();
    let p = format!("{}/pwned", v.dir.display());
    v.refused(&one_layer(&[file(&p, b"x")]), "absolute path");
}

#[test]
fn symlink_pointing_out_of_the_tree() {
    let v = Victim::new();
    v.refused(
        &one_layer(&[dir("a"), symlink("a/out", "../../victim")]),
        "points out of the image tree",
    );
}

#[test]
fn write_through_planted_symlink() {
    // An absolute symlink is fine inside the image, but writing through it
    // during unpack would land on the host.
    let v = Victim::new();
    let target = v.dir.display().to_string();
    v.refused(
        &one_layer(&[symlink("plant", &target), file("plant/pwned", b"x")]),
        "goes through a symlink",
    );
}

#[test]
fn write_through_symlink_to_a_directory_inside() {
    // Even a symlink to a directory inside the layer is not followed.
    let v = Victim::new();
    v.refused(
        &one_layer(&[dir("real"), symlink("alias", "real"), file("alias/f", b"x")]),
        "goes through a symlink",
    );
}

#[test]
fn hardlink_out_of_the_tree() {
    let v = Victim::new();
    v.refused(
        &one_layer(&[hardlink("h", "../../../victim/keep")]),
        "hardlink target points out of the tree",
    );
}

#[test]
fn hardlink_to_absolute_host_path() {
    let v = Victim::new();
    let t = format!("{}/keep", v.dir.display());
    v.refused(
        &one_layer(&[hardlink("h", &t)]),
        "hardlink target points out of the tree",
    );
}

#[test]
fn hardlink_to_missing_target() {
    let v = Victim::new();
    v.refused(
        &one_layer(&[hardlink("h", "etc/shadow")]),
        "hardlink target is not inside this layer",
    );
}

#[test]
fn device_nodes_are_left_out() {
    let v = Victim::new();
    let img = Img::new(vec![(
        layer(&[
            dir("dev"),
            device("dev/sda", tar::EntryType::Block, 8, 0),
            device("dev/mem", tar::EntryType::Char, 1, 1),
            file("ok", b"ok"),
        ]),
        Comp::Gzip,
    )]);
    let p = v.env.write("dev.tar", &img.oci_archive());
    let o = v
        .env
        .cmd()
        .args(["import", p.to_str().unwrap(), "--tag", "dev:1"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("left out 2 device node(s) (dev/sda, dev/mem)"),
        "{err}"
    );
    let d = v.env.layer_dir(&img.diff_ids()[0]);
    assert!(d.join("ok").is_file());
    assert!(
        std::fs::symlink_metadata(d.join("dev/sda")).is_err(),
        "no block device created"
    );
    assert!(
        std::fs::symlink_metadata(d.join("dev/mem")).is_err(),
        "no char device created"
    );
    v.untouched();
}

#[test]
fn setuid_and_setgid_bits_are_stripped() {
    let v = Victim::new();
    let img = Img::new(vec![(
        layer(&[
            file("suid", b"x").mode(0o4755),
            file("sgid", b"x").mode(0o2755),
        ]),
        Comp::Gzip,
    )]);
    let p = v.env.write("s.tar", &img.oci_archive());
    let o = v
        .env
        .cmd()
        .args(["import", p.to_str().unwrap(), "--tag", "s:1"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("removed setuid/setgid bits from 2 file(s)")
    );
    let d = v.env.layer_dir(&img.diff_ids()[0]);
    use std::os::unix::fs::PermissionsExt;
    for f in ["suid", "sgid"] {
        let m = std::fs::metadata(d.join(f)).unwrap().permissions().mode();
        assert_eq!(m & 0o7777, 0o755, "{f}");
    }
}

#[test]
fn overlay_xattrs_cannot_be_forged() {
    let v = Victim::new();
    let img = Img::new(vec![(
        layer(&[dir("d")
            .xattr("trusted.overlay.redirect", b"/etc")
            .xattr("user.overlay.opaque", b"y")]),
        Comp::Gzip,
    )]);
    let p = v.env.write("x.tar", &img.oci_archive());
    v.env.ok(&["import", p.to_str().unwrap(), "--tag", "x:1"]);
    let d = v.env.layer_dir(&img.diff_ids()[0]).join("d");
    let mut buf = [0u8; 16];
    assert!(rustix::fs::lgetxattr(&d, "user.overlay.opaque", &mut buf).is_err());
    assert!(rustix::fs::lgetxattr(&d, "trusted.overlay.redirect", &mut buf).is_err());
}

#[test]
fn layer_digest_mismatch() {
    let v = Victim::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    img.tamper_layer = Some((0, compress(&simple_layer("b"), Comp::Gzip)));
    v.refused(&img.oci_archive(), "digest mismatch in layer");
}

#[test]
fn layer_size_mismatch() {
    let v = Victim::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    img.wrong_size = true;
    v.refused(&img.oci_archive(), "size mismatch in layer");
}

#[test]
fn diff_id_mismatch() {
    let v = Victim::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    img.wrong_diff_id = true;
    v.refused(&img.oci_archive(), "(diff_id)");
}

#[test]
fn manifest_digest_mismatch() {
    let v = Victim::new();
    let img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    let mut files = img.oci_files();
    let md = img.manifest_digest();
    let key = format!("blobs/sha256/{}", &md[7..]);
    let mut m = files[&key].clone();
    m.push(b' ');
    files.insert(key, m);
    v.refused(&tar_of(&files), "mismatch in image manifest");
}

#[test]
fn truncated_tar_layer() {
    let v = Victim::new();
    let mut t = simple_layer("a");
    t.truncate(700); // mid-way through the first file's data
    v.refused(
        &Img::new(vec![(t, Comp::None)]).oci_archive(),
        "corrupt or truncated",
    );
}

#[test]
fn garbage_tar_layer() {
    let v = Victim::new();
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    v.refused(
        &Img::new(vec![(junk, Comp::None)]).oci_archive(),
        "corrupt or truncated",
    );
}

#[test]
fn truncated_gzip_layer() {
    let v = Victim::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    let mut gz = compress(&simple_layer("a"), Comp::Gzip);
    gz.truncate(gz.len() / 2);
    img.tamper_layer = Some((0, gz));
    // The stored bytes no longer match the digest: refused before use.
    v.refused(&img.oci_archive(), "mismatch in layer");
}

#[test]
fn truncated_gzip_in_docker_archive() {
    // Docker archives carry no layer digest, so the stream itself must fail.
    let v = Victim::new();
    let img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    let mut files = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(std::io::Cursor::new(img.docker_archive()));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = vec![];
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if p.ends_with("layer.tar") {
            data.truncate(data.len() / 2);
        }
        files.insert(p, data);
    }
    v.refused(&tar_of(&files), "corrupt or truncated");
}

#[test]
fn garbage_gzip_layer() {
    let v = Victim::new();
    let mut junk = vec![0x1f, 0x8b, 0x08, 0x00];
    junk.extend((0..2000u32).map(|i| (i * 13) as u8));
    let mut img = Img::new(vec![(junk, Comp::None)]);
    img.label_as = Some(Comp::Gzip);
    v.refused(&img.oci_archive(), "corrupt or truncated");
}

#[test]
fn garbage_zstd_layer() {
    let v = Victim::new();
    let mut junk = vec![0x28, 0xb5, 0x2f, 0xfd];
    junk.extend((0..2000u32).map(|i| (i * 31) as u8));
    let mut img = Img::new(vec![(junk, Comp::None)]);
    img.label_as = Some(Comp::Zstd);
    v.refused(&img.oci_archive(), "layer");
}

#[test]
fn garbage_outer_archive() {
    let v = Victim::new();
    let junk: Vec<u8> = (0..10_000u32).map(|i| (i * 97 + 1) as u8).collect();
    v.refused(&junk, "not a readable tar archive");
}

#[test]
fn garbage_index_json() {
    let v = Victim::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    img.raw_index = Some(b"{\"schemaVersion\": 2, \"manifests\": [".to_vec());
    v.refused(&img.oci_archive(), "index.json is not valid JSON");
}

#[test]
fn garbage_manifest_json() {
    let v = Victim::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    img.raw_manifest = Some(b"not json at all".to_vec());
    v.refused(&img.oci_archive(), "is not valid JSON");
}

#[test]
fn garbage_config_json() {
    let v = Victim::new();
    let mut img = Img::new(vec![(simple_layer("a"), Comp::Gzip)]);
    img.raw_config = Some(b"{\"architecture\": 5}".to_vec());
    v.refused(&img.oci_archive(), "config");
}

#[test]
fn decompression_bomb_over_the_size_limit() {
    let v = Victim::new();
    let big = layer(&[file("zeros", &vec![0u8; 8 << 20])]);
    let p = v
        .env
        .write("bomb.tar", &Img::new(vec![(big, Comp::Gzip)]).oci_archive());
    let o = v
        .env
        .cmd()
        .env("BERTH_MAX_LAYER_SIZE", "4M")
        .args(["import", p.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("too large") && err.contains("expands to more than 4194304 bytes"),
        "{err}"
    );
    v.untouched();
    assert_eq!(v.env.image_count(), 0);
    v.env.assert_fsck_clean();
}

#[test]
fn decompression_bomb_over_the_ratio_limit() {
    // Default limits: past 256 MiB, more than 100:1 is refused. 300 MiB of
    // zeros gzip to ~300 KiB (1000:1).
    let v = Victim::new();
    let mut tar = Vec::with_capacity(301 << 20);
    {
        let mut b = tar::Builder::new(&mut tar);
        let mut h = tar::Header::new_ustar();
        h.set_size(300 << 20);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "zeros", std::io::repeat(0).take_bytes(300 << 20))
            .unwrap();
        b.finish().unwrap();
    }
    v.refused(
        &Img::new(vec![(tar, Comp::Gzip)]).oci_archive(),
        "likely decompression bomb",
    );
}

trait TakeBytes {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat>;
}

impl TakeBytes for std::io::Repeat {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat> {
        std::io::Read::take(self, n)
    }
}

#[test]
fn not_an_image_at_all() {
    let v = Victim::new();
    let mut files = std::collections::BTreeMap::new();
    files.insert("hello.txt".to_string(), b"hi".to_vec());
    v.refused(&tar_of(&files), "not an OCI archive");
}

/// A crafted image names a blob the store has (the runtime's) with the
/// diff-id of another image's private layer, to get that layer into its
/// sandbox without carrying it: refused, the blob is read as what it is.
#[test]
fn a_stored_blob_cannot_be_claimed_as_another_layer() {
    let env = Env::new();
    let base = layer(&[dir("etc"), file("etc/base", b"base\n")]);
    let secret = layer(&[file("secret.txt", b"TOP SECRET\n")]);
    let rt = Img::new(vec![(base.clone(), Comp::Gzip)]).named("example/rt:1");
    env.ok(&[
        "import",
        env.write("rt.tar", &rt.oci_archive()).to_str().unwrap(),
    ]);
    let mut private = Img::new(vec![
        (base.clone(), Comp::Gzip),
        (secret.clone(), Comp::Gzip),
    ])
    .named("corp/private:1");
    private
        .labels
        .insert("org.berth.app.id".into(), "com.corp.Private".into());
    private
        .labels
        .insert("org.berth.app.command".into(), "/bin/true".into());
    env.ok(&[
        "import",
        env.write("p.tar", &private.oci_archive()).to_str().unwrap(),
    ]);
    // Layers: the runtime's blob twice; the config says the second is the
    // secret layer.
    let mut att =
        Img::new(vec![(base.clone(), Comp::Gzip), (base.clone(), Comp::Gzip)]).named("att/x:1");
    att.raw_config = Some(
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha(&base), sha(&secret)]},
        }))
        .unwrap(),
    );
    let err = env.fails(&[
        "import",
        env.write("att.tar", &att.oci_archive()).to_str().unwrap(),
    ]);
    assert!(err.contains("diff_id") || err.contains("digest"), "{err}");
    assert!(!env.image_names().contains(&"att/x:1".to_owned()));

    // A thin bundle leaving out the private app's layers (not a runtime's):
    // refused as a thin bundle whose runtime is missing.
    let own = layer(&[file("own", b"x\n")]);
    let thin = Img::new(vec![
        (base.clone(), Comp::Gzip),
        (secret.clone(), Comp::Gzip),
        (own, Comp::Gzip),
    ])
    .named("att/thin:1");
    let mut files = thin.oci_files();
    for t in [&base, &secret] {
        let blob = common::compress(t, Comp::Gzip);
        files.remove(&format!("blobs/sha256/{}", &sha(&blob)[7..]));
    }
    let p = env.write("thin.tar", &tar_of(&files));
    let err = env.fails(&["import", p.to_str().unwrap()]);
    assert!(err.contains("needs its base image"), "{err}");
    assert!(!env.image_names().contains(&"att/thin:1".to_owned()));
}

/// An OCI layout directory whose blob is a FIFO: refused at once, never a
/// hang on opening it.
#[test]
fn a_fifo_in_a_layout_directory_does_not_hang() {
    let env = Env::new();
    let img = busybox_img("fifo/app:1", vec![], &[]);
    let d = env.path("layout");
    img.oci_dir(&d);
    let blob = {
        let layer = common::compress(&img.layers[0].0, img.layers[0].1);
        d.join("blobs/sha256").join(&sha(&layer)[7..])
    };
    std::fs::remove_file(&blob).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &blob,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let mut child = env
        .cmd()
        .args(["import", d.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("berth import hangs on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!st.success());
}
