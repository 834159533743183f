use std::process::ExitCode;

use berth_image::ImageName;
use oci_spec::image::{Descriptor, MediaType};

use super::Ctx;

pub fn run(ctx: &Ctx, image: &str, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let name = ImageName::parse(name)?;
    let _lock = ctx.lock_shared()?;
    let entry = ctx.store().resolve(image)?;
    let manifest = ctx.store().load_manifest(&entry.digest)?;
    let mut desc = Descriptor::new(MediaType::ImageManifest, entry.size, entry.digest.to_oci());
    if let Some(mt) = manifest.media_type() {
        desc.set_media_type(mt.clone());
    }
    ctx.store().set_name(&name, &desc)?;
    if json {
        crate::ui::print_json(&serde_json::json!({
            "image": entry.digest.to_string(),
            "name": name.to_string(),
        }))?;
    } else {
        println!("Tagged {} as {name}", entry.digest.short());
    }
    Ok(ExitCode::SUCCESS)
}
