//! Registry auth files (Docker/Podman JSON) and the signature policy.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for reg in ["localhost:5000", "registry.example", "docker.io"] {
        let _ = berth_registry::auth::lookup(s, "auth.json", reg);
    }
    if let Ok(p) = berth_registry::sign::Policy::parse(s, "policy.toml") {
        let _ = p.decide("registry.example/app");
    }
    let _ = berth_registry::sign::parse_public(s);
    let _ = berth_registry::sign::parse_secret(s);
});
