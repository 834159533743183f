//! A layer's tar record (berth_image::tarsplit), hostile if the store is
//! damaged: parsed, and replayed against a small tree, it gives an error
//! or bytes, never a panic, a hang or a read outside the tree.
#![no_main]
use std::io::Read;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use berth_image::tarsplit::{Rebuilt, parse};
use libfuzzer_sys::fuzz_target;
use rustix::fs::{Mode, OFlags};

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("berth-fuzz-split-{}", std::process::id()));
        let _ = std::fs::create_dir_all(d.join("tree/usr"));
        let _ = std::fs::write(d.join("tree/usr/a"), b"0123456789");
        let _ = std::fs::write(d.join("outside"), b"never read");
        let _ = std::os::unix::fs::symlink("../../outside", d.join("tree/usr/up"));
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    let dir = scratch();
    let Ok(z) = zstd::encode_all(data, 1) else {
        return;
    };
    let rec = dir.join("rec");
    if std::fs::write(&rec, z).is_err() {
        return;
    }
    let Ok(fd) = rustix::fs::open(dir.join("tree"), OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
        return;
    };
    if let Ok(r) = Rebuilt::open(&rec, fd.as_fd()) {
        let mut out = Vec::new();
        if r.take(16 << 20).read_to_end(&mut out).is_ok() {
            assert!(
                !out.windows(10).any(|w| w == b"never read"),
                "a record read a file outside the tree"
            );
        }
    }
});
