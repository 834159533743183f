//! AppStream metainfo from an image: parse, generate, and what berth
//! generates parses again (with a summary, a license and a description), with no
//! control characters left in it.
#![no_main]
use berth_app::appstream::{Component, component, metainfo_file, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = parse(s) else { return };
    let c = component(
        &Component {
            id: "org.example.Fuzz",
            name: "Fuzz",
            fallback_summary: "fallback",
            icon: None,
        },
        Some(&m),
    );
    let file = metainfo_file(&c);
    assert!(!file.chars().any(|c| c.is_control() && c != '\n'), "{file:?}");
    assert!(file.chars().all(berth_app::appstream::xml_char), "{file:?}");
    let again = parse(&file).expect("generated metainfo parses");
    assert!(again.summary.is_some() && again.metadata_license.is_some());
    assert_eq!(again.description.is_empty(), false);
});
