//! /var/lib/dpkg/status from an image, and the list of packages the
//! packages route unpacked (written in the sandbox, so not trusted).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = berth_build::dpkg::parse_status(&s);
    let _ = berth_build::packages::parse_list(&s);
});
