//! /var/lib/dpkg/status from an image.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = berth_build::dpkg::parse_status(&s);
});
