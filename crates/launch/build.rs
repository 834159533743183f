// The directory this build puts its programs in (target/PROFILE), so a
// `berth` copied away alone still finds the `berth-cli` built beside it.
fn main() {
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    let dir = std::path::Path::new(&out)
        .ancestors()
        .nth(3)
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=BERTH_BUILD_DIR={dir}");
    println!("cargo:rerun-if-changed=build.rs");
}
