//! Image names and digests: parse, and a parsed name round-trips.
#![no_main]
use berth_image::{Digest, ImageName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = ImageName::parse(s) {
        let text = n.to_string();
        assert!(text.len() <= 255, "stored name over the limit: {text}");
        assert_eq!(ImageName::parse(&text).ok(), Some(n), "round trip of {s:?}");
    }
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(Digest::parse(&d.to_string()).ok(), Some(d));
    }
    let _ = Digest::from_hex(s);
    let _ = berth_registry::remote::is_registry_ref(s);
    let _ = berth_image::layer::parse_size(s);
});
