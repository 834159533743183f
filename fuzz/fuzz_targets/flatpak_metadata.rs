//! A Flatpak image's metadata (`org.flatpak.metadata`) through berth's
//! reading: whatever it holds, what is granted is in canonical form (it
//! prints back to itself), and nothing left out carries a line break into
//! the review.
#![no_main]
use berth_app::flatpak_image::parse_app;
use berth_app::permissions::PermissionSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = berth_app::desktop::entry_name(s);
    let Ok(Some(app)) = parse_app(Some("app/org.example.App/x86_64/stable"), Some(s)) else {
        return;
    };
    let text = app.permissions.to_string();
    let again = PermissionSet::parse_list(&text).expect("granted permissions parse back");
    assert_eq!(again.to_string(), text, "not canonical");
    for l in &app.left_out {
        assert!(!l.contains(['\n', '\r']), "{l:?}");
    }
});
