//! A whole archive through `import` into a scratch store: no panic, and a
//! failed import leaves no image and nothing outside the store.
#![no_main]
use std::sync::OnceLock;

use berth_image::Store;
use berth_image::import::{ImportOptions, import};
use berth_image::layer::Limits;
use berth_image::progress::NoProgress;
use berth_image::unpack::UnpackOptions;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("berth-fuzz-import-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let _ = berth_image::fsutil::remove_tree(&dir.join("store"));
    let input = dir.join("input.tar");
    if std::fs::write(&input, data).is_err() {
        return;
    }
    let Ok(store) = Store::open(&dir.join("store")) else {
        return;
    };
    let opts = ImportOptions {
        tag: None,
        limits: Limits {
            max_layer_bytes: 64 << 20,
            max_ratio: 100,
            ratio_floor: 1 << 20,
        },
        unpack: UnpackOptions::for_current_user(),
        jobs: 1,
        rebuilt: Vec::new(),
    };
    let res = import(&store, &input, &opts, &NoProgress);
    if res.is_err() {
        assert!(
            store.images().map(|i| i.is_empty()).unwrap_or(false),
            "failed import left an image"
        );
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        ["input.tar", "store"],
        "something was written beside the store"
    );
});
