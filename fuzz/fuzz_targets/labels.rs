//! App labels (`org.berth.app.*`) as an image config carries them: one
//! `key=value` per line.
#![no_main]
use std::collections::BTreeMap;

use berth_app::metadata::AppMeta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let labels: BTreeMap<String, String> = s
        .split('\n')
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("\\n", "\n")))
        .collect();
    let _ = AppMeta::from_labels(&labels);
});
