//! An app's desktop entry through the exporter: whatever it holds, every
//! Exec of the generated entry runs berth, and no control character is left.
#![no_main]
use berth_app::desktop::{Launch, generate_entry};
use libfuzzer_sys::fuzz_target;

const EXE: &str = "/usr/bin/berth";

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let l = Launch {
        exe: EXE,
        key: "org.example.App",
        icon: "org.example.App",
        name: "App",
    };
    let Ok(g) = generate_entry(&l, Some(s)) else {
        return;
    };
    for line in g.text.lines() {
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "control character in {line:?}"
        );
        let key = line.split('=').next().unwrap_or("").trim();
        if key.starts_with("Exec") || key.starts_with("TryExec") {
            assert!(
                line.starts_with(&format!("Exec={EXE} ")),
                "foreign Exec: {line:?}"
            );
        }
    }
});
