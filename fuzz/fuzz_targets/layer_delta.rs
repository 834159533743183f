//! A registry's delta artifact manifest, and a tar-diff applied to an old
//! image's files: whatever the bytes, an error or a bounded output, never
//! a panic, a hang or a read outside the old files.
#![no_main]
use std::fs::File;
use std::path::PathBuf;
use std::sync::OnceLock;

use berth_delta::tardiff::{Source, apply};
use libfuzzer_sys::fuzz_target;

struct Old(PathBuf);

impl Source for Old {
    fn open(&mut self, path: &str) -> berth_delta::Result<Option<File>> {
        // Only the two files below: anything else is "not there".
        Ok(match path {
            "a" | "usr/lib/b" => File::open(self.0.join(path.replace('/', "_"))).ok(),
            _ => None,
        })
    }
}

fn old() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("berth-fuzz-delta-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        let _ = std::fs::write(d.join("a"), b"hello old world\n".repeat(64));
        let _ = std::fs::write(d.join("usr_lib_b"), (0..4096u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
        d
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let _ = berth_delta::artifact::parse(data);
    let mut out = Vec::new();
    if let Ok(n) = apply(data, &mut Old(old()), &mut out, 1 << 20) {
        assert_eq!(n as usize, out.len());
        assert!(out.len() <= 1 << 20);
    }
});
