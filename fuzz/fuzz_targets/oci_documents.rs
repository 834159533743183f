//! Manifests, indexes and configs as the store reads them.
#![no_main]
use berth_image::store::parse_json;
use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_json::<ImageManifest>(data, "manifest") {
        for l in m.layers() {
            let _ = berth_image::Digest::from_oci(l.digest());
        }
    }
    if let Ok(i) = parse_json::<ImageIndex>(data, "index") {
        for d in i.manifests() {
            let _ = berth_image::store::ref_name(d);
        }
    }
    if let Ok(c) = parse_json::<ImageConfiguration>(data, "config") {
        for d in c.rootfs().diff_ids() {
            let _ = berth_image::Digest::parse(d);
        }
    }
});
