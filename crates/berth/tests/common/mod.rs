//! Test helpers: run the berth binary against a private store, and build
//! OCI / Docker archives (including hostile ones) in memory.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// The berth binary: `$BERTH_BIN` (CI runs prebuilt tests as another user)
/// or the one cargo built for this test run. Other packages' tests (the
/// GUI's) share these helpers: for them it is the `berth` that
/// `cargo test --workspace` built into the same target directory.
pub fn berth_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(b);
    }
    if let Some(b) = option_env!("CARGO_BIN_EXE_berth") {
        return PathBuf::from(b);
    }
    // target/debug/deps/TEST -> target/debug/berth
    let exe = std::env::current_exe().unwrap();
    let b = exe.parent().and_then(Path::parent).unwrap().join("berth");
    assert!(
        b.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (or set BERTH_BIN)",
        b.display()
    );
    b
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Print a skip notice that cargo's output capture does not swallow.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "berth-test: SKIPPED {test}: {why}");
}

/// True if `tool` exists; otherwise a loud skip, or a failure when
/// BERTH_TEST_REQUIRE_TOOLS=1 (CI) says every tool must be there.
pub fn have_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("BERTH_TEST_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{tool} is required in CI but missing"
        );
        skip(test, &format!("{tool} is not installed"));
    }
    found
}

/// A private store and a scratch dir for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("berth-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(berth_bin());
        c.env("BERTH_HOME", self.home());
        c.env("BERTH_RUNTIME_DIR", self.runtime_dir());
        c.env("BERTH_LAUNCHER", self.path("bin/berth"));
        c.env_remove("BERTH_MAX_LAYER_SIZE");
        c.env_remove("BERTH_MAX_LAYER_RATIO");
        c
    }

    /// Another program with this test's environment (store, runtime dir).
    pub fn cmd_raw(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("BERTH_HOME", self.home());
        c.env("BERTH_RUNTIME_DIR", self.runtime_dir());
        c.env("BERTH_LAUNCHER", self.path("bin/berth"));
        c
    }

    /// Run a shell line under `script`, so it has a terminal of its own
    /// (stdin is /dev/null): its output, with `\r` removed, and the status.
    pub fn in_terminal(&self, line: &str) -> (String, Option<i32>) {
        let o = self
            .cmd_raw("script")
            .args(["-qec", line, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&o.stdout).replace('\r', ""),
            o.status.code(),
        )
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run and require a clean failure (exit 1, no panic); returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(1),
            "berth {args:?} should fail cleanly: {err}"
        );
        assert!(!err.contains("panicked"), "berth panicked: {err}");
        assert!(
            err.starts_with("berth: error: "),
            "error not printed once at the top: {err}"
        );
        err
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn image_names(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["images", "--json"])).unwrap();
        let mut names: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| {
                i["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_owned())
            })
            .collect();
        names.sort();
        names
    }

    pub fn image_count(&self) -> usize {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["images", "--json"])).unwrap();
        v.as_array().unwrap().len()
    }

    /// Import `img` (written to `file`) keeping every layer blob as it
    /// came (BERTH_KEEP_BLOBS=1; by default a layer re-creates its blob).
    /// Returns the archive's path.
    pub fn import_keeping_blobs(&self, img: &Img, file: &str) -> PathBuf {
        let p = self.write(file, &img.oci_archive());
        let o = self
            .cmd()
            .args(["import", p.to_str().unwrap()])
            .env("BERTH_KEEP_BLOBS", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        p
    }

    pub fn assert_fsck_clean(&self) {
        let o = self.run(&["fsck"]);
        assert!(
            o.status.success(),
            "fsck not clean:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// The single unpacked layer dir named by `diff_id`.
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.home()
            .join("layers")
            .join(diff_id.trim_start_matches("sha256:"))
    }
}

// ---- tar entries ----

#[derive(Clone)]
pub struct E {
    pub kind: tar::EntryType,
    pub path: Vec<u8>,
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub dev: (u32, u32),
}

fn base(kind: tar::EntryType, path: &str) -> E {
    E {
        kind,
        path: path.as_bytes().to_vec(),
        data: vec![],
        mode: 0o644,
        uid: 0,
        gid: 0,
        link: vec![],
        xattrs: vec![],
        dev: (0, 0),
    }
}

pub fn file(path: &str, data: &[u8]) -> E {
    E {
        data: data.to_vec(),
        ..base(tar::EntryType::Regular, path)
    }
}

pub fn dir(path: &str) -> E {
    E {
        mode: 0o755,
        ..base(tar::EntryType::Directory, path)
    }
}

pub fn symlink(path: &str, target: &str) -> E {
    E {
        link: target.as_bytes().to_vec(),
        mode: 0o777,
        ..base(tar::EntryType::Symlink, path)
    }
}

pub fn hardlink(path: &str, target: &str) -> E {
    E {
        link: target.as_bytes().to_vec(),
        ..base(tar::EntryType::Link, path)
    }
}

pub fn device(path: &str, kind: tar::EntryType, major: u32, minor: u32) -> E {
    E {
        dev: (major, minor),
        ..base(kind, path)
    }
}

impl E {
    pub fn mode(mut self, m: u32) -> E {
        self.mode = m;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> E {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn xattr(mut self, k: &str, v: &[u8]) -> E {
        self.xattrs.push((k.to_owned(), v.to_vec()));
        self
    }
}

/// A layer tar. Names are written raw into the header, so hostile paths
/// (`..`, absolute) that the tar crate's setters refuse can be made.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.xattrs.is_empty() {
            let ext: Vec<(String, &[u8])> = e
                .xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                .collect();
            b.append_pax_extensions(ext.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(1_700_000_000);
        {
            let raw = h.as_old_mut();
            assert!(e.path.len() < 100 && e.link.len() < 100);
            raw.name = [0; 100];
            raw.name[..e.path.len()].copy_from_slice(&e.path);
            raw.linkname = [0; 100];
            raw.linkname[..e.link.len()].copy_from_slice(&e.link);
        }
        if matches!(e.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(e.dev.0).unwrap();
            h.set_device_minor(e.dev.1).unwrap();
        }
        h.set_cksum();
        b.append(&h, e.data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

#[derive(Clone, Copy, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
    /// gzip as berth writes its own layers (`berth_image::layer::gzip`).
    Berth,
}

pub fn compress(data: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => data.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(data, 1).unwrap(),
        Comp::Berth => {
            let mut e = berth_image::layer::gzip(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap().finish().unwrap()
        }
    }
}

fn layer_media_type(c: Comp) -> &'static str {
    match c {
        Comp::None => "application/vnd.oci.image.layer.v1.tar",
        Comp::Gzip | Comp::Berth => "application/vnd.oci.image.layer.v1.tar+gzip",
        Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// An image to build, with knobs to damage it.
#[derive(Clone)]
pub struct Img {
    /// (uncompressed layer tar, compression)
    pub layers: Vec<(Vec<u8>, Comp)>,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Replace blob bytes after digests are computed: (layer index, bytes).
    pub tamper_layer: Option<(usize, Vec<u8>)>,
    pub wrong_size: bool,
    pub wrong_diff_id: bool,
    pub raw_index: Option<Vec<u8>>,
    pub raw_config: Option<Vec<u8>>,
    pub raw_manifest: Option<Vec<u8>>,
    /// Media type compression to declare instead of the real one.
    pub label_as: Option<Comp>,
    /// Config architecture instead of amd64.
    pub arch: Option<String>,
}

impl Img {
    pub fn new(layers: Vec<(Vec<u8>, Comp)>) -> Img {
        Img {
            layers,
            name: None,
            labels: BTreeMap::new(),
            tamper_layer: None,
            wrong_size: false,
            wrong_diff_id: false,
            raw_index: None,
            raw_config: None,
            raw_manifest: None,
            label_as: None,
            arch: None,
        }
    }

    pub fn named(mut self, n: &str) -> Img {
        self.name = Some(n.to_owned());
        self
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|(t, _)| sha(t)).collect()
    }

    fn config(&self) -> Vec<u8> {
        if let Some(c) = &self.raw_config {
            return c.clone();
        }
        let mut diff_ids = self.diff_ids();
        if self.wrong_diff_id {
            diff_ids[0] = sha(b"something else");
        }
        serde_json::to_vec(&serde_json::json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": self.arch.as_deref().unwrap_or("amd64"),
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Labels": self.labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    /// Files of an OCI layout: path -> bytes.
    pub fn oci_files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut layer_descs = vec![];
        for (i, (tar, c)) in self.layers.iter().enumerate() {
            let blob = compress(tar, *c);
            let d = sha(&blob);
            let mut size = blob.len();
            if self.wrong_size && i == 0 {
                size += 1;
            }
            let stored = match &self.tamper_layer {
                Some((j, b)) if *j == i => b.clone(),
                _ => blob,
            };
            files.insert(format!("blobs/sha256/{}", &d[7..]), stored);
            layer_descs.push(
                serde_json::json!({"mediaType": layer_media_type(self.label_as.unwrap_or(*c)), "digest": d, "size": size}),
            );
        }
        let config = self.config();
        let cd = sha(&config);
        files.insert(format!("blobs/sha256/{}", &cd[7..]), config.clone());
        let manifest = self.raw_manifest.clone().unwrap_or_else(|| {
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
                "layers": layer_descs,
            }))
            .unwrap()
        });
        let md = sha(&manifest);
        files.insert(format!("blobs/sha256/{}", &md[7..]), manifest.clone());
        let mut desc = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": manifest.len(),
        });
        if let Some(n) = &self.name {
            desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": n});
        }
        let index = self.raw_index.clone().unwrap_or_else(|| {
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [desc]}))
                .unwrap()
        });
        files.insert("index.json".into(), index);
        files.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
        files
    }

    pub fn manifest_digest(&self) -> String {
        let f = self.oci_files();
        let idx: serde_json::Value = serde_json::from_slice(&f["index.json"]).unwrap();
        idx["manifests"][0]["digest"].as_str().unwrap().to_owned()
    }

    pub fn oci_archive(&self) -> Vec<u8> {
        tar_of(&self.oci_files())
    }

    pub fn oci_dir(&self, dir: &Path) {
        for (p, b) in self.oci_files() {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b).unwrap();
        }
    }

    /// `docker save` layout: manifest.json, <config>.json, <id>/layer.tar.
    pub fn docker_archive(&self) -> Vec<u8> {
        let mut files = BTreeMap::new();
        let config = self.config();
        let cd = sha(&config);
        files.insert(format!("{}.json", &cd[7..]), config);
        let mut paths = vec![];
        for (i, (tar, c)) in self.layers.iter().enumerate() {
            let p = format!("{:064x}/layer.tar", i + 1);
            files.insert(p.clone(), compress(tar, *c));
            paths.push(p);
        }
        let tags: Vec<String> = self.name.iter().cloned().collect();
        let m = serde_json::json!([{"Config": format!("{}.json", &cd[7..]), "RepoTags": tags, "Layers": paths}]);
        files.insert("manifest.json".into(), serde_json::to_vec(&m).unwrap());
        tar_of(&files)
    }
}

pub fn tar_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A small ordinary layer.
/// Incompressible bytes (xorshift64), so layers have a real size.
pub fn noise(len: usize, mut x: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for b in v.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    v
}

pub fn simple_layer(tag: &str) -> Vec<u8> {
    layer(&[
        dir("etc"),
        file("etc/hello", format!("hello {tag}\n").as_bytes()),
        dir("bin"),
        file("bin/tool", b"#!/bin/sh\necho tool\n").mode(0o755),
    ])
}

/// A busybox image named `name` with extra entries on top and labels.
pub fn busybox_img(name: &str, extra: Vec<E>, labels: &[(&str, &str)]) -> Img {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is needed (apt-get install busybox-static)");
    let mut entries = vec![
        dir("bin"),
        file("bin/busybox", &std::fs::read(busybox).unwrap()).mode(0o755),
        dir("etc"),
    ];
    for app in [
        "sh", "sleep", "cat", "echo", "id", "ls", "hostname", "pwd", "env", "touch", "tty", "grep",
        "ps", "kill", "wget", "nc",
    ] {
        entries.push(symlink(&format!("bin/{app}"), "busybox"));
    }
    entries.extend(extra);
    // Compressed as berth compresses what it builds: pushed and exported,
    // it keeps its digest (another tool's gzip gets a new one, as with
    // podman: import::layer_blobs_are_recreated_from_their_layers).
    let mut img = Img::new(vec![(layer(&entries), Comp::Berth)]).named(name);
    for (k, v) in labels {
        img.labels.insert((*k).into(), (*v).into());
    }
    img
}

/// Import a busybox image named `name` with extra entries on top.
pub fn busybox_image(env: &Env, name: &str, extra: Vec<E>) {
    let img = busybox_img(name, extra, &[]);
    let path = env.write(
        &format!("{}.tar", name.replace([':', '/'], "_")),
        &img.oci_archive(),
    );
    env.ok(&["import", path.to_str().unwrap()]);
}

/// Wait until exactly one instance is listed by `berth ps`; return it.
pub fn wait_for_instance(env: &Env) -> serde_json::Value {
    let t = std::time::Instant::now();
    loop {
        let v: serde_json::Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
        if v.as_array().unwrap().len() == 1 {
            return v[0].clone();
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "instance never showed up"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A layer with `bin` and every library `ldd` lists for it.
pub fn host_program_entries(bin: &str) -> Vec<E> {
    let mut files: Vec<PathBuf> = vec![PathBuf::from(bin)];
    let ldd = std::process::Command::new("ldd").arg(bin).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(p) = path {
            files.push(PathBuf::from(p));
        }
    }
    let mut entries = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let real = std::fs::canonicalize(&f).unwrap();
        let rel = f.strip_prefix("/").unwrap().to_path_buf();
        for a in rel.ancestors().skip(1) {
            if !a.as_os_str().is_empty() {
                dirs.insert(a.to_path_buf());
            }
        }
        entries.push(file(rel.to_str().unwrap(), &std::fs::read(real).unwrap()).mode(0o755));
    }
    let mut out: Vec<E> = dirs.iter().map(|d| dir(d.to_str().unwrap())).collect();
    out.extend(entries);
    out
}

/// Install an app made of busybox plus a host program (with its libraries)
/// and `extra` entries, running `command` with `perms`.
pub fn install_host_app(
    env: &Env,
    id: &str,
    program: &str,
    command: &str,
    perms: &str,
    extra: Vec<E>,
) {
    let mut entries = host_program_entries(program);
    entries.extend(extra);
    let img = busybox_img(
        &format!("test/{}:1", id.to_ascii_lowercase().replace('.', "-")),
        entries,
        &[
            ("org.berth.app.id", id),
            ("org.berth.app.command", command),
            ("org.berth.app.permissions", perms),
        ],
    );
    let p = env.write(&format!("{id}.tar"), &img.oci_archive());
    let o = env
        .cmd()
        .args(["install", "--yes", p.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

// ---- Xvfb ----

pub struct Xvfb {
    pub child: std::process::Child,
    pub display: u32,
    pub auth: PathBuf,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM, so Xvfb removes its lock file and socket.
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.child.wait();
    }
}

/// A display number nobody uses (no lock file, no socket).
fn free_display() -> u32 {
    (90..400)
        .map(|i| 90 + (i + std::process::id()) % 300)
        .find(|n| {
            !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .expect("a free X display number")
}

pub fn start_xvfb(dir: &Path) -> Xvfb {
    start_xvfb_sized(dir, "320x240x24")
}

/// Xvfb with a screen of `geometry` (`WxHxDEPTH`).
pub fn start_xvfb_sized(dir: &Path, geometry: &str) -> Xvfb {
    let display = free_display();
    let auth = dir.join("Xauthority");
    // A cookie the server demands: without it no client gets in.
    let cookie: String = (0..16)
        .map(|i| format!("{:02x}", (i * 37 + display) % 256))
        .collect();
    let st = std::process::Command::new("xauth")
        .arg("-f")
        .arg(&auth)
        .args(["add", &format!(":{display}"), ".", &cookie])
        .status()
        .unwrap();
    assert!(st.success());
    // An unrelated cookie that must not reach the app.
    let _ = std::process::Command::new("xauth")
        .arg("-f")
        .arg(&auth)
        .args(["add", ":7", ".", "00112233445566778899aabbccddeeff"])
        .status();
    let child = std::process::Command::new("Xvfb")
        .arg(format!(":{display}"))
        .args(["-screen", "0", geometry, "-nolisten", "tcp", "-auth"])
        .arg(&auth)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sock = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
    let t = std::time::Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "Xvfb did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Xvfb {
        child,
        display,
        auth,
    }
}

/// Distinct pixel values in an XWD screenshot of the root window.
pub fn distinct_pixels(x: &Xvfb) -> usize {
    let o = std::process::Command::new("xwd")
        .args(["-root", "-silent", "-display", &format!(":{}", x.display)])
        .env("XAUTHORITY", &x.auth)
        .output()
        .unwrap();
    assert!(o.status.success(), "xwd failed");
    let d = &o.stdout;
    let be = |i: usize| {
        u32::from_be_bytes([d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]]) as usize
    };
    let (header, ncolors, bytes_per_line, height, bpp) = (be(0), be(19), be(12), be(5), be(11));
    let start = header + ncolors * 12;
    let data = &d[start..(start + bytes_per_line * height).min(d.len())];
    let px = (bpp / 8).max(1);
    let mut seen = std::collections::HashSet::new();
    for chunk in data.chunks(px) {
        seen.insert(chunk.to_vec());
        if seen.len() > 16 {
            break;
        }
    }
    seen.len()
}

pub fn window_names(x: &Xvfb) -> String {
    let o = std::process::Command::new("xwininfo")
        .args(["-root", "-tree", "-display", &format!(":{}", x.display)])
        .env("XAUTHORITY", &x.auth)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Wait until `x` shows a window named `name`, failing with the app's
/// stderr if it exits first.
pub fn wait_for_window(
    x: &Xvfb,
    app: &mut std::process::Child,
    name: &str,
    timeout: std::time::Duration,
) {
    let t = std::time::Instant::now();
    while !window_names(x).contains(name) {
        if let Some(st) = app.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(e) = app.stderr.as_mut() {
                std::io::Read::read_to_string(e, &mut err).unwrap();
            }
            panic!("{name} exited ({st}) without a window: {err}");
        }
        assert!(t.elapsed() < timeout, "no {name} window appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Run the app `id` on `x`, wait for its window (a name containing
/// `name`), check the screen is not blank, stop every instance.
pub fn opens_a_window(env: &Env, x: &Xvfb, id: &str, name: &str) {
    let mut app = env
        .cmd()
        .args(["run", id])
        .env("DISPLAY", format!(":{}", x.display))
        .env("XAUTHORITY", &x.auth)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_window(x, &mut app, name, std::time::Duration::from_secs(60));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(distinct_pixels(x) >= 2, "{id}: the screenshot is blank");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    for i in v.as_array().unwrap() {
        env.ok(&["kill", i["id"].as_str().unwrap()]);
    }
    let _ = app.wait();
}

/// Debian's docker-registry (the CNCF distribution registry) on loopback.
pub struct Registry {
    pub child: std::process::Child,
    pub port: u16,
    pub data: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry on 127.0.0.1; with `user`, htpasswd (basic) auth.
pub fn start_registry(dir: &Path, user: Option<(&str, &str)>) -> Registry {
    let port = free_port();
    let child = serve_registry(dir, &format!("127.0.0.1:{port}"), None, user);
    Registry {
        child,
        port,
        data: dir.join(format!("registry-data-127.0.0.1:{port}")),
    }
}

/// docker-registry on `addr` (storage under `dir`), with TLS (`cert`,
/// `key`) and htpasswd auth if given; returns once it accepts connections.
pub fn serve_registry(
    dir: &Path,
    addr: &str,
    tls: Option<(&Path, &Path)>,
    user: Option<(&str, &str)>,
) -> std::process::Child {
    let data = dir.join(format!("registry-data-{addr}"));
    let mut extra = String::new();
    if let Some((c, k)) = tls {
        extra += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            c.display(),
            k.display()
        );
    }
    if let Some((u, p)) = user {
        let htpasswd = dir.join(format!("htpasswd-{addr}"));
        let st = std::process::Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(&htpasswd)
            .args([u, p])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        extra += &format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            htpasswd.display()
        );
    }
    let cfg = dir.join(format!("registry-{addr}.yml"));
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{extra}",
            data.display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "registry {addr} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

/// Where slow fixtures are kept between runs and fresh checkouts:
/// `$BERTH_TEST_CACHE`, else `/var/cache/berth-ci` (CI's: the root pass
/// fills it, the rootless pass reads it), else target/tmp.
fn fixture_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = std::env::var_os("BERTH_TEST_CACHE") {
        v.push(PathBuf::from(d));
    }
    v.push(PathBuf::from("/var/cache/berth-ci"));
    v.push(PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    v
}

/// A Debian bookworm root file system (minbase) with `packages`, as a
/// tarball, built once with mmdebstrap and cached (see [`fixture_dirs`]).
/// `name` names the package set. Built as root, or rootless in
/// mmdebstrap's unshare mode; otherwise a skip, a failure in CI.
pub fn debian_rootfs(test: &str, name: &str, packages: &[&str]) -> Option<PathBuf> {
    // The package list is part of the name: another list, another tarball.
    let file = format!(
        "bookworm-{name}-{}.tar",
        &hex::encode(Sha256::digest(packages.join(",").as_bytes()))[..12]
    );
    let dirs = fixture_dirs();
    if let Some(p) = dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file()) {
        return Some(p);
    }
    let required = std::env::var("BERTH_TEST_REQUIRE_TOOLS").as_deref() == Ok("1");
    if !have_tool(test, "mmdebstrap") {
        return None;
    }
    let unshare = !is_root();
    if unshare && std::fs::read_to_string("/etc/subuid").map_or(true, |s| s.trim().is_empty()) {
        assert!(
            !required,
            "{file} is not cached and mmdebstrap cannot run here"
        );
        skip(test, "mmdebstrap's unshare mode needs an /etc/subuid entry");
        return None;
    }
    // The first cache directory that can be written.
    let dir = dirs.into_iter().find(|d| {
        std::fs::create_dir_all(d).is_ok()
            && rustix::fs::access(d, rustix::fs::Access::WRITE_OK).is_ok()
    })?;
    let partial = dir.join(format!("partial-{}-{file}", std::process::id()));
    let mut c = Command::new("mmdebstrap");
    c.args(["--variant=minbase", "--quiet"])
        .arg(format!("--include={}", packages.join(",")));
    if unshare {
        c.arg("--mode=unshare");
    }
    let o = c.arg("bookworm").arg(&partial).output().unwrap();
    if !o.status.success() {
        let _ = std::fs::remove_file(&partial);
        // No Debian mirror reachable: say so; CI requires one.
        assert!(
            !required,
            "mmdebstrap failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        skip(test, "mmdebstrap could not build the root file system");
        return None;
    }
    // Readable by the rootless pass.
    std::fs::set_permissions(
        &partial,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let cached = dir.join(&file);
    std::fs::rename(&partial, &cached).unwrap();
    Some(cached)
}

/// buildah with a store of the test's own (vfs: works rootless), in the
/// test's directory; fails the test with buildah's words.
pub fn buildah(env: &Env, args: &[&str]) {
    let o = Command::new("buildah")
        .arg("--root")
        .arg(env.path("buildah/root"))
        .arg("--runroot")
        .arg(env.path("buildah/run"))
        .args(["--storage-driver", "vfs"])
        .args(args)
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
