//! Permission lists: the canonical text of a parsed list parses back to
//! the same list (one form is reviewed, stored and applied).
#![no_main]
use berth_app::permissions::{Permission, PermissionSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(set) = PermissionSet::parse_list(s) {
        let text = set.to_string();
        let again = PermissionSet::parse_list(&text).expect("canonical text parses");
        assert_eq!(again.to_string(), text, "canonical form is stable");
    }
    if let Ok(p) = Permission::parse(s) {
        let text = p.to_string();
        let again = Permission::parse(&text).expect("canonical permission parses");
        assert_eq!(again.to_string(), text);
    }
});
