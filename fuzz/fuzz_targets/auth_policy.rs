//! Registry auth files (Docker/Podman JSON, credential helpers' answers),
//! the signature policy, and the containers configuration
//! (registries.conf, policy.json).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for reg in ["localhost:5000", "registry.example", "docker.io"] {
        let _ = berth_registry::auth::lookup(s, "auth.json", reg);
        let _ = berth_registry::auth::lookup_any(s, "auth.json", reg);
    }
    let _ = berth_registry::auth::parse_helper_output(data, "pass");
    use berth_registry::containers::{Policy as ContainersPolicy, Registries, normalize};
    let refs = ["registry.example/app:1", s, "docker.io/alpine@sha256:00", "a/b:c@d"];
    if let Ok(r) = Registries::parse(s, "registries.conf") {
        for x in refs {
            let _ = r.endpoints(x);
        }
        let _ = r.expand_short("hello:1");
    }
    if let Ok(p) = ContainersPolicy::parse(s, "policy.json") {
        for x in refs {
            let _ = p.decide(x);
        }
    }
    let _ = normalize(s);
    if let Ok(p) = berth_registry::sign::Policy::parse(s, "policy.toml") {
        let _ = p.decide("registry.example/app");
    }
    let _ = berth_registry::sign::parse_public(s);
    let _ = berth_registry::sign::parse_secret(s);
});
