//! berth build manifests (TOML) and the Debian source specs in them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = berth_build::manifest::BuildManifest::parse(s, "berth.toml");
    let _ = berth_build::debian::From::parse(s);
    let _ =
        berth_build::debian::parse_packages(&s.split(',').map(str::to_owned).collect::<Vec<_>>());
});
