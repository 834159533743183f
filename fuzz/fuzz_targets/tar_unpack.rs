//! Layer tars (plain, gzip or zstd) unpacked into a root: nothing may be
//! created or changed outside it, the result can be recorded, and its tar
//! record (tarsplit) either rebuilds the very stream or says it does not.
#![no_main]
use std::os::fd::AsFd;
use std::sync::OnceLock;

use berth_image::layer::Compression;
use berth_image::tarsplit::{Recorder, Tee, rebuilds};
use berth_image::unpack::{UnpackOptions, unpack_recorded};
use libfuzzer_sys::fuzz_target;
use rustix::fs::{Mode, OFlags};

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("berth-fuzz-unpack-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        let _ = std::fs::write(d.join("sentinel"), b"outside");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let root = dir.join("root");
    let _ = berth_image::fsutil::remove_tree(&root);
    if std::fs::create_dir(&root).is_err() {
        return;
    }
    let Ok(fd) = rustix::fs::open(&root, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
        return;
    };
    let comp = Compression::detect(data);
    let Ok(reader) = comp.reader(std::io::BufReader::new(data)) else {
        return;
    };
    let reader = berth_image::digest::HashingReader::new(std::io::Read::take(reader, 64 << 20));
    let rec = Recorder::create(dir.join("split"));
    let mut tee = Tee {
        inner: reader,
        rec: Some(&rec),
    };
    let ok = unpack_recorded(&mut tee, fd.as_fd(), &UnpackOptions::for_current_user(), Some(&rec)).is_ok()
        && std::io::copy(&mut tee, &mut std::io::sink()).is_ok();
    let (diff_id, _) = tee.inner.finish();
    let split = rec.finish();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    names.retain(|n| n != "split");
    assert_eq!(names, ["root", "sentinel"], "an entry escaped the root");
    assert_eq!(
        std::fs::read(dir.join("sentinel")).ok().as_deref(),
        Some(&b"outside"[..])
    );
    if ok {
        berth_image::content::record(fd.as_fd()).expect("an unpacked tree can be recorded");
        if let Ok(p) = split {
            // True or false or an error; never a panic or a read outside.
            let _ = rebuilds(&p, fd.as_fd(), &diff_id);
        }
    }
});
