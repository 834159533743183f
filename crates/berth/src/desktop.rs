//! Menu integration: export an app's desktop entry and icon into
//! `$BERTH_HOME/exports/share`, named after the app ID only.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_app::AppMeta;
use berth_image::{Image, Store};
use rustix::fs::{Mode, OFlags, ResolveFlags};

pub fn exports(home: &Path) -> PathBuf {
    home.join("exports/share")
}

fn berth_exe() -> String {
    std::env::current_exe().map_or_else(|_| "berth".into(), |p| p.display().to_string())
}

/// The desktop entry to export: the image's, with every Exec rewritten to
/// start the app through berth, or a minimal one.
pub fn desktop_entry(meta: &AppMeta, exe: &str) -> String {
    let run = format!("{exe} run {}", meta.id);
    let Some(d) = &meta.desktop else {
        return format!(
            "[Desktop Entry]\nType=Application\nName={}\nExec={run}\nIcon={}\nTerminal=false\nX-Berth-App={}\n",
            meta.name, meta.id, meta.id
        );
    };
    let mut out = String::new();
    for line in d.replace("\\n", "\n").lines() {
        if let Some(cmd) = line.strip_prefix("Exec=") {
            // Keep the arguments and field codes (%f, %U), drop the program.
            let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
            if args.is_empty() {
                out.push_str(&format!("Exec={run}\n"));
            } else {
                out.push_str(&format!("Exec={run} -- {}\n", args.join(" ")));
            }
        } else if line.starts_with("TryExec=") {
            // The program lives in the image, not on the host.
        } else if line.starts_with("Icon=") {
            out.push_str(&format!("Icon={}\n", meta.id));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!("X-Berth-App={}\n", meta.id));
    out
}

/// Read a file from the image's layers, topmost first, without following
/// symlinks out of a layer.
fn read_from_image(store: &Store, image: &Image, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let rel = path.trim_start_matches('/');
    for d in image.diff_ids()?.iter().rev() {
        let layer = store.layer_path(d);
        let Ok(root) = rustix::fs::open(&layer, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        else {
            continue;
        };
        match rustix::fs::openat2(
            &root,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => {
                let mut f = std::fs::File::from(fd);
                if !f.metadata()?.is_file() {
                    return Ok(None);
                }
                let mut buf = Vec::new();
                f.by_ref().take(4 << 20).read_to_end(&mut buf)?;
                return Ok(Some(buf));
            }
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// Export; returns whether anything went to the menu.
pub fn export(home: &Path, meta: &AppMeta, image: &Image, store: &Store) -> anyhow::Result<bool> {
    let share = exports(home);
    let apps = share.join("applications");
    std::fs::create_dir_all(&apps).with_context(|| format!("creating {}", apps.display()))?;
    let entry = desktop_entry(meta, &berth_exe());
    berth_image::fsutil::write_atomic(
        &store.tmp_dir(),
        &apps.join(format!("{}.desktop", meta.id)),
        entry.as_bytes(),
    )?;
    if let Some(icon) = &meta.icon {
        match read_from_image(store, image, icon)? {
            Some(bytes) => {
                let ext = if icon.ends_with(".svg") { "svg" } else { "png" };
                let size = icon
                    .split('/')
                    .find(|c| {
                        c.contains('x') && c.split('x').all(|n| n.parse::<u32>().is_ok())
                            || *c == "scalable"
                    })
                    .unwrap_or(if ext == "svg" { "scalable" } else { "256x256" });
                let dir = share.join("icons/hicolor").join(size).join("apps");
                std::fs::create_dir_all(&dir)?;
                berth_image::fsutil::write_atomic(
                    &store.tmp_dir(),
                    &dir.join(format!("{}.{ext}", meta.id)),
                    &bytes,
                )?;
            }
            None => crate::ui::warn(&format!(
                "warning: icon {icon} is not a file in the image; no icon exported"
            )),
        }
    }
    // MIME types the app defines, from its own shared-mime-info file only.
    let mime = format!("/usr/share/mime/packages/{}.xml", meta.id);
    if let Some(xml) = read_from_image(store, image, &mime)? {
        let dir = share.join("mime/packages");
        std::fs::create_dir_all(&dir)?;
        berth_image::fsutil::write_atomic(
            &store.tmp_dir(),
            &dir.join(format!("{}.xml", meta.id)),
            &xml,
        )?;
    }
    Ok(true)
}

/// Remove everything exported for `id` (only files named after it).
pub fn unexport(home: &Path, id: &str) -> anyhow::Result<()> {
    let share = exports(home);
    let _ = std::fs::remove_file(share.join("applications").join(format!("{id}.desktop")));
    let _ = std::fs::remove_file(share.join("mime/packages").join(format!("{id}.xml")));
    if let Ok(sizes) = std::fs::read_dir(share.join("icons/hicolor")) {
        for s in sizes.flatten() {
            for ext in ["png", "svg"] {
                let _ = std::fs::remove_file(s.path().join("apps").join(format!("{id}.{ext}")));
            }
        }
    }
    Ok(())
}

/// Tell the user once how the exports reach their menu.
pub fn hint_once(home: &Path) {
    let marker = home.join("exports/.menu-hint-shown");
    if marker.exists() {
        return;
    }
    let share = exports(home);
    println!(
        "Note: to show berth apps in your desktop menu, add {0} to XDG_DATA_DIRS, for example\n  \
         echo 'XDG_DATA_DIRS={0}:${{XDG_DATA_DIRS:-/usr/local/share:/usr/share}}' >> ~/.config/environment.d/berth.conf\n  \
         and log in again. (Shown once.)",
        share.display()
    );
    let _ = std::fs::write(marker, b"");
}

pub const BUNDLE_MIME: &str = "application/vnd.berth.bundle";
pub const INSTALLER_DESKTOP: &str = "org.berth.Installer.desktop";

/// The installer entry: opens a .berth file with `berth install` in a
/// terminal, where the permission review and the consent prompt appear.
pub fn installer_entry(exe: &str) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=Install berth app\n\
         Comment=Review the permissions of a berth app bundle and install it\n\
         Exec={exe} install %f\nTerminal=true\nNoDisplay=true\nIcon=system-software-install\n\
         MimeType={BUNDLE_MIME};\nCategories=System;PackageManager;\n"
    )
}

pub fn bundle_mime_xml() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <mime-info xmlns=\"http://www.freedesktop.org/standards/shared-mime-info\">\n\
         \x20 <mime-type type=\"{BUNDLE_MIME}\">\n\
         \x20   <comment>berth app bundle</comment>\n\
         \x20   <sub-class-of type=\"application/x-tar\"/>\n\
         \x20   <glob pattern=\"*.berth\"/>\n\
         \x20 </mime-type>\n\
         </mime-info>\n"
    )
}

/// Register the .berth type and its installer in the exports, and refresh
/// the MIME and desktop caches when the tools are there.
pub fn register_bundle_type(home: &Path, tmp: &Path) -> anyhow::Result<()> {
    let share = exports(home);
    let apps = share.join("applications");
    let mime = share.join("mime/packages");
    std::fs::create_dir_all(&apps).with_context(|| format!("creating {}", apps.display()))?;
    std::fs::create_dir_all(&mime).with_context(|| format!("creating {}", mime.display()))?;
    berth_image::fsutil::write_atomic(
        tmp,
        &apps.join(INSTALLER_DESKTOP),
        installer_entry(&berth_exe()).as_bytes(),
    )?;
    berth_image::fsutil::write_atomic(
        tmp,
        &mime.join("org.berth.Bundle.xml"),
        bundle_mime_xml().as_bytes(),
    )?;
    berth_image::fsutil::write_atomic(
        tmp,
        &apps.join("mimeapps.list"),
        format!("[Default Applications]\n{BUNDLE_MIME}={INSTALLER_DESKTOP}\n").as_bytes(),
    )?;
    refresh_caches(&share);
    Ok(())
}

/// Best effort: the caches only speed up lookups, and the tools are optional.
pub fn refresh_caches(share: &Path) {
    let run = |prog: &str, arg: &Path| {
        let _ = std::process::Command::new(prog)
            .arg(arg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    if share.join("mime/packages").is_dir() {
        run("update-mime-database", &share.join("mime"));
    }
    run("update-desktop-database", &share.join("applications"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_lines_start_the_app_through_berth() {
        let meta = AppMeta {
            id: "org.example.Viewer".into(),
            name: "Viewer".into(),
            command: vec![],
            permissions: Default::default(),
            desktop: Some("[Desktop Entry]\nName=Viewer\nExec=/usr/bin/viewer --new %f\nTryExec=viewer\nIcon=viewer\nMimeType=image/png;\n".into()),
            icon: None,
        };
        let e = desktop_entry(&meta, "/usr/bin/berth");
        assert!(
            e.contains("Exec=/usr/bin/berth run org.example.Viewer -- --new %f\n"),
            "{e}"
        );
        assert!(e.contains("Icon=org.example.Viewer\n") && e.contains("MimeType=image/png;"));
        assert!(!e.contains("TryExec"));
        let plain = AppMeta {
            desktop: None,
            ..meta
        };
        assert!(desktop_entry(&plain, "berth").contains("Exec=berth run org.example.Viewer\n"));
    }
}
