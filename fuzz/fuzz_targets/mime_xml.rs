//! shared-mime-info XML: parse, re-emit, and the emitted XML parses to
//! the same types.
#![no_main]
use berth_app::desktop::{emit_mime, parse_mime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(types) = parse_mime(s) else { return };
    let (xml, _) = emit_mime(&types, &|_| false);
    if let Some(xml) = xml {
        let again = parse_mime(&xml).expect("emitted MIME XML parses");
        assert_eq!(format!("{again:?}").len() > 0, true);
        assert_eq!(
            emit_mime(&again, &|_| false).0.as_deref(),
            Some(xml.as_str()),
            "stable"
        );
    }
});
