//! Xauthority files: parse; a parsed file's entries are within its bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(entries) = berth_app::xauth::parse(data) {
        let total: usize = entries
            .iter()
            .map(|e| 2 + 8 + e.address.len() + e.number.len() + e.name.len() + e.data.len())
            .sum();
        assert_eq!(total, data.len(), "every byte belongs to an entry");
    }
});
