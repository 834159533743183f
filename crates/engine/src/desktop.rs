//! Menu integration: export an app's desktop entry and icon into
//! `$BERTH_HOME/exports/share`, named after the app ID only.

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_app::{AppMeta, desktop};
use berth_image::{Image, Store};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Context, Error, Result, io};
use crate::frontend::Frontend;

pub fn exports(home: &Path) -> PathBuf {
    home.join("exports/share")
}

/// The path menu entries call berth by (see `launcher`).
pub fn berth_exe() -> PathBuf {
    crate::launcher::stable_path()
}

/// Everything to write to the menu for one app, generated and checked
/// before anything is installed.
#[derive(Debug)]
pub struct Exports {
    key: String,
    entry: String,
    icon: Option<(String, &'static str, Vec<u8>)>,
    mime: Option<String>,
    /// AppStream metainfo, generated (see berth_app::appstream).
    metainfo: String,
}

impl Exports {
    /// The icon's file extension and bytes.
    pub fn icon(&self) -> Option<(&str, &[u8])> {
        self.icon.as_ref().map(|(_, ext, b)| (*ext, b.as_slice()))
    }
}

/// Generate the app's menu files (see berth_app::desktop): a fresh
/// desktop entry, its MIME types re-emitted, its icon checked by content.
pub fn prepare(meta: &AppMeta, image: &Image, store: &Store, fe: &dyn Frontend) -> Result<Exports> {
    let app_id = berth_app::metadata::app_id_of(&meta.id);
    let exe = berth_exe().display().to_string();
    let launch = desktop::Launch {
        exe: &exe,
        key: &meta.id,
        icon: &meta.id,
        name: &meta.name,
    };
    let generated =
        desktop::generate_entry(&launch, meta.desktop.as_deref()).with_context(|| {
            format!(
                "the image's desktop entry ({}) cannot be exported",
                if meta.flatpak.is_some() {
                    format!("export/share/applications/{app_id}.desktop")
                } else {
                    "label org.berth.app.desktop".to_owned()
                }
            )
        })?;
    if !generated.dropped.is_empty() {
        let mut d = generated.dropped.clone();
        d.sort();
        d.dedup();
        fe.warn(&format!(
            "note: the menu entry leaves out keys berth does not export: {}",
            crate::summarize(&d)
        ));
    }
    let mut icon = None;
    if let Some(path) = &meta.icon {
        match read_from_image(store, image, path)? {
            Some(bytes) => match desktop::check_icon(&bytes) {
                Ok(kind) => {
                    let (size, ext) = kind.place();
                    icon = Some((size, ext, bytes));
                }
                Err(e) => fe.warn(&format!("warning: {e}; no icon exported")),
            },
            None => fe.warn(&format!(
                "warning: icon {path} is not a file in the image; no icon exported"
            )),
        }
    }
    // MIME types the app defines, from its own shared-mime-info file only,
    // and only types the host does not define itself.
    let mut mime = None;
    // A Flatpak image keeps what it exports under export/, the rest of
    // its data under files/ (its /app).
    let mime_dir = if meta.flatpak.is_some() {
        "/export/share"
    } else {
        "/usr/share"
    };
    let path = format!("{mime_dir}/mime/packages/{app_id}.xml");
    if let Some(xml) = read_from_image(store, image, &path)? {
        let text = String::from_utf8(xml)
            .map_err(|_| Error::Refused(format!("{path} in the image is not UTF-8")))?;
        let types = desktop::parse_mime(&text).with_context(|| format!("{path} in the image"))?;
        let (out, skipped) = desktop::emit_mime(&types, &host_defines_mime);
        if !skipped.is_empty() {
            fe.warn(&format!(
                "note: MIME types this computer defines already are left to it: {}",
                crate::summarize(&skipped)
            ));
        }
        mime = out;
    }
    let metainfo = metainfo_of(
        meta,
        app_id,
        store,
        image,
        &generated.text,
        icon.is_some(),
        fe,
    )?;
    Ok(Exports {
        key: meta.id.clone(),
        entry: generated.text,
        icon,
        mime,
        metainfo,
    })
}

/// The app's AppStream file: the fields berth takes from the image's own
/// metainfo, if it has one, under the berth ID and the reviewed name.
fn metainfo_of(
    meta: &AppMeta,
    app_id: &str,
    store: &Store,
    image: &Image,
    entry: &str,
    icon: bool,
    fe: &dyn Frontend,
) -> Result<String> {
    use berth_app::appstream;
    let data_dir = if meta.flatpak.is_some() {
        "/files/share"
    } else {
        "/usr/share"
    };
    let mut parsed = None;
    for path in [
        format!("{data_dir}/metainfo/{app_id}.metainfo.xml"),
        format!("{data_dir}/metainfo/{app_id}.appdata.xml"),
        format!("{data_dir}/appdata/{app_id}.appdata.xml"),
    ] {
        let Some(xml) = read_from_image(store, image, &path)? else {
            continue;
        };
        match std::str::from_utf8(&xml)
            .map_err(|_| "it is not UTF-8".to_owned())
            .and_then(|t| appstream::parse(t).map_err(|e| e.to_string()))
        {
            Ok(m) => {
                if m.metadata_license.is_none() {
                    fe.warn(&format!(
                        "note: {path} has no metadata_license; software centres get only the name"
                    ));
                }
                parsed = Some(m);
            }
            Err(e) => fe.warn(&format!(
                "note: {path} in the image is left out: {}",
                berth_app::text::escape(&e)
            )),
        }
        break;
    }
    // The menu entry's comment (generated by berth, checked) when the
    // metainfo gives no summary.
    let comment = entry
        .lines()
        .find_map(|l| l.strip_prefix("Comment="))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}, a sandboxed app", meta.name));
    let c = appstream::component(
        &appstream::Component {
            id: &meta.id,
            name: &meta.name,
            fallback_summary: &comment,
            icon: icon.then_some(meta.id.as_str()),
        },
        parsed.as_ref(),
    );
    Ok(appstream::metainfo_file(&c))
}

/// Does the host's MIME database define this type (outside berth)?
fn host_defines_mime(t: &str) -> bool {
    let dirs = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    dirs.split(':')
        .filter(|d| d.starts_with('/') && !d.contains("/berth/"))
        .any(|d| Path::new(d).join("mime").join(format!("{t}.xml")).exists())
}

/// What already uses this app ID on the host, if anything.
pub fn host_conflict(home: &Path, id: &str) -> Option<String> {
    let user_home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    berth_app::hostids::HostDirs::from_env(&user_home, exports(home)).conflict(id)
}

/// Read a file from the image's layers, topmost first, without following
/// symlinks out of a layer.
pub(crate) fn read_from_image(store: &Store, image: &Image, path: &str) -> Result<Option<Vec<u8>>> {
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
                if !io(f.metadata(), || format!("reading {path} in the image"))?.is_file() {
                    return Ok(None);
                }
                let mut buf = Vec::new();
                io(f.by_ref().take(4 << 20).read_to_end(&mut buf), || {
                    format!("reading {path} in the image")
                })?;
                return Ok(Some(buf));
            }
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// Write the prepared files; returns whether anything went to the menu.
pub fn export(home: &Path, x: &Exports, tmp: &Path) -> Result<bool> {
    export_files(home, x, tmp)?;
    if !x.key.contains('@') {
        write_catalog(home, tmp)?;
    }
    Ok(true)
}

/// [`export`] without the catalog, for a caller that exports several apps
/// and writes the catalog once at the end.
pub(crate) fn export_files(home: &Path, x: &Exports, tmp: &Path) -> Result<()> {
    let share = exports(home);
    let apps = share.join("applications");
    io(std::fs::create_dir_all(&apps), || {
        format!("creating {}", apps.display())
    })?;
    berth_image::fsutil::write_atomic(
        tmp,
        &apps.join(format!("{}.desktop", x.key)),
        x.entry.as_bytes(),
    )?;
    if let Some((size, ext, bytes)) = &x.icon {
        let dir = share.join("icons/hicolor").join(size).join("apps");
        io(std::fs::create_dir_all(&dir), || {
            format!("creating {}", dir.display())
        })?;
        // One icon per app: a smaller one left from an older version would
        // be chosen at some sizes.
        remove_icons(&share, &x.key);
        berth_image::fsutil::write_atomic(tmp, &dir.join(format!("{}.{ext}", x.key)), bytes)?;
    }
    if let Some(xml) = &x.mime {
        let dir = share.join("mime/packages");
        io(std::fs::create_dir_all(&dir), || {
            format!("creating {}", dir.display())
        })?;
        berth_image::fsutil::write_atomic(
            tmp,
            &dir.join(format!("{}.xml", x.key)),
            xml.as_bytes(),
        )?;
    }
    // AppStream IDs cannot hold the `@` of a channel copy: software
    // centres list the app once, under its main install.
    if !x.key.contains('@') {
        let dir = share.join("metainfo");
        io(std::fs::create_dir_all(&dir), || {
            format!("creating {}", dir.display())
        })?;
        berth_image::fsutil::write_atomic(
            tmp,
            &dir.join(format!("{}.metainfo.xml", x.key)),
            x.metainfo.as_bytes(),
        )?;
    }
    Ok(())
}

/// Where the AppStream catalog of installed apps goes.
pub(crate) fn catalog_path(home: &Path) -> PathBuf {
    exports(home).join("swcatalog/xml/berth.xml")
}

/// The AppStream catalog of every installed app, from the metainfo files
/// berth wrote for them (not whatever else sits in the directory):
/// `share/swcatalog/xml/berth.xml`.
pub(crate) fn write_catalog(home: &Path, tmp: &Path) -> Result<()> {
    let share = exports(home);
    let mut keys: Vec<String> = berth_app::deploy::AppStore::new(home)
        .list()
        .into_iter()
        .map(|d| d.app_id)
        .collect();
    keys.sort();
    keys.dedup();
    let mut texts = Vec::new();
    for k in keys {
        let path = share.join("metainfo").join(format!("{k}.metainfo.xml"));
        let Ok(fd) = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) else {
            continue;
        };
        let mut text = String::new();
        if std::fs::File::from(fd)
            .take(1 << 20)
            .read_to_string(&mut text)
            .is_ok()
            && text.contains(berth_app::appstream::GENERATED)
        {
            texts.push(text);
        }
    }
    let dir = share.join("swcatalog/xml");
    io(std::fs::create_dir_all(&dir), || {
        format!("creating {}", dir.display())
    })?;
    berth_image::fsutil::write_atomic(
        tmp,
        &dir.join("berth.xml"),
        berth_app::appstream::catalog(&texts).as_bytes(),
    )?;
    Ok(())
}

fn remove_icons(share: &Path, id: &str) {
    if let Ok(sizes) = std::fs::read_dir(share.join("icons/hicolor")) {
        for s in sizes.flatten() {
            for ext in ["png", "svg"] {
                let _ = std::fs::remove_file(s.path().join("apps").join(format!("{id}.{ext}")));
            }
        }
    }
}

/// Remove everything exported for `id` (only files named after it).
pub fn unexport(home: &Path, id: &str) -> Result<()> {
    let share = exports(home);
    let _ = std::fs::remove_file(share.join("applications").join(format!("{id}.desktop")));
    let _ = std::fs::remove_file(share.join("mime/packages").join(format!("{id}.xml")));
    let _ = std::fs::remove_file(share.join("metainfo").join(format!("{id}.metainfo.xml")));
    remove_icons(&share, id);
    // Best effort: the app goes whatever happens to the catalog (it is
    // written again at the next install).
    if catalog_path(home).exists() {
        let _ = write_catalog(home, &home.join("tmp"));
    }
    Ok(())
}

/// How the exports reach the user's menu: said once per store.
pub fn hint_once(home: &Path) -> Option<String> {
    let marker = home.join("exports/.menu-hint-shown");
    if marker.exists() {
        return None;
    }
    let share = exports(home);
    // After the system's directories: a host entry always wins over an
    // app's entry of the same name.
    let hint = format!(
        "Note: to show berth apps in your desktop menu, add {0} to XDG_DATA_DIRS, for example\n  \
         echo 'XDG_DATA_DIRS=${{XDG_DATA_DIRS:-/usr/local/share:/usr/share}}:{0}' >> ~/.config/environment.d/berth.conf\n  \
         and log in again. (Shown once.)",
        share.display()
    );
    let _ = std::fs::write(marker, b"");
    Some(hint)
}

pub const BUNDLE_MIME: &str = "application/vnd.berth.bundle";
pub const INSTALLER_DESKTOP: &str = "org.berth.Installer.desktop";

/// The installer entry: opens a .berth file in the installer window
/// (`gui`, berth-gui beside berth), or where that is not installed, with
/// `berth install` in a terminal, where the same review and question
/// appear.
pub fn installer_entry(exe: &str, gui: Option<&str>) -> String {
    let (exec, terminal) = match gui {
        Some(g) => (desktop::quote_arg(g), false),
        None => (desktop::quote_arg(exe), true),
    };
    format!(
        "[Desktop Entry]\nType=Application\nName=Install berth app\n\
         Comment=Review the permissions of a berth app bundle and install it\n\
         Exec={exec} install %f\nTerminal={terminal}\nNoDisplay=true\nIcon=system-software-install\n\
         MimeType={BUNDLE_MIME};\nCategories=System;PackageManager;\n"
    )
}

pub const MANAGER_DESKTOP: &str = "org.berth.Permissions.desktop";

/// The permission manager's menu entry (berth-gui with no arguments).
pub fn manager_entry(gui: &str) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=App Permissions\nGenericName=berth app permissions\n\
         Comment=See and change what each installed berth app may touch\n\
         Exec={} manage\nTerminal=false\nIcon=preferences-system-privacy\n\
         Categories=Settings;Security;\nKeywords=berth;permissions;sandbox;\n",
        desktop::quote_arg(gui)
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
pub fn register_bundle_type(home: &Path, tmp: &Path) -> Result<()> {
    let share = exports(home);
    let apps = share.join("applications");
    let mime = share.join("mime/packages");
    io(std::fs::create_dir_all(&apps), || {
        format!("creating {}", apps.display())
    })?;
    io(std::fs::create_dir_all(&mime), || {
        format!("creating {}", mime.display())
    })?;
    let exe = berth_exe();
    let gui = crate::launcher::gui_beside(&exe);
    berth_image::fsutil::write_atomic(
        tmp,
        &apps.join(INSTALLER_DESKTOP),
        installer_entry(
            &exe.display().to_string(),
            gui.as_ref().map(|g| g.display().to_string()).as_deref(),
        )
        .as_bytes(),
    )?;
    // The manager's entry goes with berth-gui.
    let manager = apps.join(MANAGER_DESKTOP);
    match &gui {
        Some(g) => berth_image::fsutil::write_atomic(
            tmp,
            &manager,
            manager_entry(&g.display().to_string()).as_bytes(),
        )?,
        None => {
            let _ = std::fs::remove_file(&manager);
        }
    }
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
    fn installer_entry_is_valid() {
        let e = installer_entry("/usr/bin/berth", None);
        assert!(e.contains("Exec=/usr/bin/berth install %f\nTerminal=true\n"));
        let e = installer_entry("/usr/bin/berth", Some("/opt/my apps/berth-gui"));
        assert!(
            e.contains("Exec=\"/opt/my apps/berth-gui\" install %f\nTerminal=false\n"),
            "{e}"
        );
        assert!(bundle_mime_xml().contains(BUNDLE_MIME));
    }
}
