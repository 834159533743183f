//! Flatpak OCI apps in berth's sandbox, laid out as Flatpak lays them out:
//! the runtime image's `files/` at /usr, the app image's `files/` at
//! /app, /etc made of links into /usr/etc, and /bin, /lib... as links
//! into /usr. The store keeps both images as they were downloaded; this
//! is only where their directories are mounted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_app::flatpak_image::{self, FlatpakRef};
use berth_image::{Image, ImageEntry, Store};
use berth_sandbox::plan::{Mount, SCAFFOLD_ETC};

use crate::error::{Error, Result};

/// What a Flatpak app adds to a run: mounts, links and default variables.
#[derive(Debug, Default)]
pub struct Layout {
    /// /usr and /app, each a stack of the images' `files/` directories.
    pub subtrees: Vec<Mount>,
    pub links: Vec<(PathBuf, PathBuf)>,
    /// Flatpak's defaults; the app's `env=` grants override them.
    pub env: Vec<String>,
}

/// Entries of a runtime's /etc linked at most; the rest is left out (an
/// image cannot make a plan of any size).
const MAX_ETC_ENTRIES: usize = 4096;

/// The Flatpak runtime an image is, if it is one.
pub fn runtime_ref(image: &Image) -> Option<FlatpakRef> {
    flatpak_image::runtime_ref_of(
        image
            .labels()
            .get(flatpak_image::LABEL_REF)
            .map(String::as_str),
    )
}

/// The runtime `r` among the store's images: `pinned` while it still is
/// that runtime (an installed app keeps its runtime), else one with a
/// name, the latest in the store's index (never by the image's own
/// creation date, which the image states). Missing, it is named by its
/// exact ref.
pub fn find_runtime(
    store: &Store,
    r: &FlatpakRef,
    pinned: Option<&berth_image::Digest>,
) -> Result<ImageEntry> {
    if let Some(d) = pinned
        && let Ok(e) = store.entry_by_digest(d)
        && store
            .load_image(&e)
            .is_ok_and(|img| runtime_ref(&img).as_ref() == Some(r))
    {
        return Ok(e);
    }
    let mut found: Vec<ImageEntry> = Vec::new();
    for e in store.images()? {
        if store
            .load_image(&e)
            .is_ok_and(|img| runtime_ref(&img).as_ref() == Some(r))
        {
            found.push(e);
        }
    }
    let named = found.iter().rposition(|e| !e.names.is_empty());
    match named.or(found.len().checked_sub(1)) {
        Some(i) => Ok(found.swap_remove(i)),
        None => Err(Error::Store(format!(
            "the Flatpak runtime {r} is not in berth's store; import its OCI image \
             (`flatpak build-bundle --runtime --oci REPO DIR {} {}`, then `berth import DIR`) \
             or pull it from a registry, then try again",
            r.id, r.branch
        ))),
    }
}

/// The `files/` directory of each of `image`'s layers that has one,
/// bottom first: real directories only, never a link an image planted.
fn files_dirs(store: &Store, image: &Image) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in image.diff_ids()? {
        if !store.has_layer(&d) {
            return Err(Error::Store(format!(
                "layer {} of {} is missing or incomplete; `berth fsck --repair` re-creates it from its blob where the store has one, otherwise re-import or pull the image",
                d.short(),
                image.entry.digest.short()
            )));
        }
        let files = store.layer_path(&d).join("files");
        match std::fs::symlink_metadata(&files) {
            Ok(m) if m.is_dir() => out.push(files),
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "the Flatpak image {} has a files/ that is not a directory",
                    image.entry.digest.short()
                )));
            }
            Err(_) => {}
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!(
            "the Flatpak image {} has no files/ directory",
            image.entry.digest.short()
        )));
    }
    Ok(out)
}

/// Names in `etc/SUB` of the runtime's directories merged as overlayfs
/// merges them (top layer first; a whiteout hides a lower name, an opaque
/// directory all of them), each read beneath its directory with no
/// symlink followed: a runtime's links must not list the host's /etc.
fn etc_names(dirs: &[PathBuf], sub: &Path) -> BTreeMap<String, bool> {
    use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
    // name -> Some(is a directory), or None: whited out.
    let mut seen: BTreeMap<String, Option<bool>> = BTreeMap::new();
    let rel = Path::new("etc").join(sub);
    for d in dirs.iter().rev() {
        let Ok(root) = rustix::fs::open(
            d,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::PATH,
            Mode::empty(),
        ) else {
            continue;
        };
        let Ok(fd) = rustix::fs::openat2(
            &root,
            &rel,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) else {
            continue;
        };
        let opaque = ["user.overlay.opaque", "trusted.overlay.opaque"]
            .iter()
            .any(|x| {
                let mut v = [0u8; 1];
                rustix::fs::fgetxattr(&fd, *x, &mut v).is_ok_and(|n| n == 1 && v[0] == b'y')
            });
        let Ok(dir) = rustix::fs::Dir::read_from(&fd) else {
            continue;
        };
        for e in dir.flatten().take(MAX_ETC_ENTRIES) {
            let Ok(n) = e.file_name().to_str() else {
                continue;
            };
            if n == "." || n == ".." || seen.len() >= MAX_ETC_ENTRIES {
                continue;
            }
            let kind = match e.file_type() {
                // overlayfs's whiteout (berth unpacks OCI whiteouts so).
                FileType::CharacterDevice => None,
                t => Some(t == FileType::Directory),
            };
            seen.entry(n.to_owned()).or_insert(kind);
        }
        if opaque {
            break;
        }
    }
    seen.into_iter()
        .filter_map(|(n, k)| k.map(|d| (n, d)))
        .collect()
}

/// /etc as links into /usr/etc, leaving to berth the paths it writes or
/// binds itself (`taken`, relative to /etc): a directory holding one of
/// them is made real and its own entries linked.
fn etc_links(
    runtime: &[PathBuf],
    sub: &Path,
    taken: &[PathBuf],
    out: &mut Vec<(PathBuf, PathBuf)>,
) {
    for (name, is_dir) in etc_names(runtime, sub) {
        let rel = sub.join(&name);
        if taken.contains(&rel) {
            continue;
        }
        if taken.iter().any(|t| t.starts_with(&rel)) {
            if is_dir && rel.components().count() < 4 {
                etc_links(runtime, &rel, taken, out);
            }
            continue;
        }
        // Relative, so that on the host (where the scaffold is built) it
        // points inside the scaffold, never at the host's /usr.
        let up = "../".repeat(rel.components().count());
        out.push((
            Path::new("/etc").join(&rel),
            PathBuf::from(format!("{up}usr/etc")).join(&rel),
        ));
    }
}

/// The layout of `app` on `runtime`. `taken`: absolute paths under /etc
/// the run writes or binds itself.
pub fn layout(store: &Store, app: &Image, runtime: &Image, taken: &[PathBuf]) -> Result<Layout> {
    let files = files_dirs(store, app)?;
    let usr = files_dirs(store, runtime)?;
    let mut taken: Vec<PathBuf> = taken
        .iter()
        .filter_map(|p| p.strip_prefix("/etc").ok().map(Path::to_path_buf))
        .collect();
    taken.extend(SCAFFOLD_ETC.iter().map(PathBuf::from));
    let mut links: Vec<(PathBuf, PathBuf)> = [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib32", "usr/lib32"),
        ("lib64", "usr/lib64"),
        ("var/tmp", "../tmp"),
        ("var/run", "../run"),
    ]
    .iter()
    .map(|(p, t)| (Path::new("/").join(p), PathBuf::from(t)))
    .collect();
    etc_links(&usr, Path::new(""), &taken, &mut links);
    Ok(Layout {
        subtrees: vec![
            Mount::Overlay {
                lowers: usr,
                dest: "/usr".into(),
            },
            Mount::Overlay {
                lowers: files,
                dest: "/app".into(),
            },
        ],
        links,
        env: [
            "PATH=/app/bin:/usr/bin",
            "LD_LIBRARY_PATH=/app/lib",
            "XDG_CONFIG_DIRS=/app/etc/xdg:/etc/xdg",
            "GI_TYPELIB_PATH=/app/lib/girepository-1.0",
            "GST_PLUGIN_SYSTEM_PATH=/app/lib/gstreamer-1.0:/usr/lib/extensions/gstreamer-1.0:/usr/lib/gstreamer-1.0",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(std::iter::once(format!(
            "FLATPAK_ID={}",
            app_ref_id(app).unwrap_or_default()
        )))
        .collect(),
    })
}

/// The app ID in an app image's Flatpak ref.
fn app_ref_id(image: &Image) -> Option<String> {
    image
        .labels()
        .get(flatpak_image::LABEL_REF)
        .and_then(|v| FlatpakRef::parse(v).ok())
        .map(|r| r.id)
}
