//! `berth commit`: what an instance changed (the upper directory of its
//! root's overlay) as one layer, with overlay's markers turned back into
//! the OCI forms: a whiteout (character device 0:0) becomes `.wh.NAME`,
//! an opaque directory (`*.overlay.opaque=y`) gets `.wh..wh..opq`.
//! Files keep their modes, owners and times, as `podman commit` keeps
//! them; setuid and setgid bits are dropped (import would drop them).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::layer::LayerWriter;

/// What a commit layer holds.
#[derive(Debug, Default, serde::Serialize)]
pub struct ChangeStats {
    pub files: u64,
    pub bytes: u64,
    /// Paths the instance removed from the image.
    pub removed: u64,
    /// Entries a layer cannot carry (sockets, devices), left out.
    pub skipped: Vec<String>,
}

/// Write the changes in overlay upper directory `upper` into `w`, under
/// `prefix` (empty: the root).
pub fn upper_layer(upper: &Path, prefix: &str, w: &mut LayerWriter) -> Result<ChangeStats> {
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|c| c == "." || c == "..") {
        return Err(Error::invalid("layer prefix", prefix.to_owned()));
    }
    let mut stats = ChangeStats::default();
    let mut tar = tar::Builder::new(&mut *w);
    let werr = |e: io::Error| Error::Io {
        context: "writing the commit layer".into(),
        source: e,
    };
    let mut acc = PathBuf::new();
    for c in prefix.split('/').filter(|c| !c.is_empty()) {
        acc.push(c);
        let mut h = header(tar::EntryType::Directory, 0o755, 0, 0, 0);
        let mut p = acc.clone().into_os_string();
        p.push("/");
        tar.append_data(&mut h, &p, io::empty()).map_err(werr)?;
    }
    walk(upper, &acc, &mut tar, &mut HashMap::new(), &mut stats)?;
    tar.finish().map_err(werr)?;
    Ok(stats)
}

fn header(kind: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(u64::try_from(mtime).unwrap_or(0));
    h.set_size(0);
    h
}

fn opaque(dir: &Path) -> bool {
    ["user.overlay.opaque", "trusted.overlay.opaque"]
        .iter()
        .any(|k| {
            rustix::fs::lgetxattr(dir, *k, &mut [0u8; 4][..])
                .ok()
                .is_some_and(|n| n == 1)
        })
}

fn walk<W: Write>(
    dir: &Path,
    rel: &Path,
    tar: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
    stats: &mut ChangeStats,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .ctx(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .ctx(|| format!("reading {}", dir.display()))?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let werr = |p: &Path| {
        let p = p.display().to_string();
        move |e: io::Error| Error::Io {
            context: format!("adding {p} to the layer"),
            source: e,
        }
    };
    for name in names {
        let host = dir.join(&name);
        let path = rel.join(&name);
        let md = fs::symlink_metadata(&host).ctx(|| format!("reading {}", host.display()))?;
        let (uid, gid, mtime) = (md.uid(), md.gid(), md.mtime());
        let mode = md.mode() & 0o1777;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            // overlayfs' whiteout: the image's file is gone.
            let mut wh = std::ffi::OsString::from(".wh.");
            wh.push(&name);
            let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, mtime);
            tar.append_data(&mut h, rel.join(wh), io::empty())
                .map_err(werr(&path))?;
            stats.removed += 1;
        } else if ft.is_dir() {
            let mut h = header(tar::EntryType::Directory, mode, uid, gid, mtime);
            let mut p = path.clone().into_os_string();
            p.push("/");
            tar.append_data(&mut h, &p, io::empty())
                .map_err(werr(&path))?;
            if opaque(&host) {
                // Replaces the image's directory instead of merging.
                let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, mtime);
                tar.append_data(&mut h, path.join(".wh..wh..opq"), io::empty())
                    .map_err(werr(&path))?;
            }
            walk(&host, &path, tar, links, stats)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).ctx(|| format!("reading {}", host.display()))?;
            let mut h = header(tar::EntryType::Symlink, 0o777, uid, gid, mtime);
            tar.append_link(&mut h, &path, &target)
                .map_err(werr(&path))?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    let mut h = header(tar::EntryType::Link, mode, uid, gid, mtime);
                    tar.append_link(&mut h, &path, first).map_err(werr(&path))?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), path.clone());
            }
            let f = File::open(&host).ctx(|| format!("opening {}", host.display()))?;
            let mut h = header(tar::EntryType::Regular, mode, uid, gid, mtime);
            h.set_size(md.len());
            // A file still being written is taken as it was when listed.
            tar.append_data(&mut h, &path, io::Read::take(f, md.len()))
                .map_err(werr(&path))?;
            stats.files += 1;
            stats.bytes += md.len();
        } else if ft.is_fifo() {
            let mut h = header(tar::EntryType::Fifo, mode, uid, gid, mtime);
            tar.append_data(&mut h, &path, io::empty())
                .map_err(werr(&path))?;
        } else {
            stats.skipped.push(path.display().to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upper_dir_becomes_an_oci_layer() {
        let d = tempfile::tempdir().unwrap();
        let up = d.path().join("upper");
        fs::create_dir_all(up.join("etc/new")).unwrap();
        fs::write(up.join("etc/new/file"), b"hello").unwrap();
        fs::write(up.join("etc/linked"), b"x").unwrap();
        fs::hard_link(up.join("etc/linked"), up.join("etc/linked2")).unwrap();
        std::os::unix::fs::symlink("new/file", up.join("etc/sym")).unwrap();
        let root = rustix::process::geteuid().is_root();
        if root {
            // What overlayfs leaves for a removed file.
            rustix::fs::mknodat(
                rustix::fs::CWD,
                up.join("etc/gone"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0),
                0,
            )
            .unwrap();
        }
        rustix::fs::setxattr(
            up.join("etc/new"),
            "user.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .ok();
        let out = d.path().join("layer");
        let mut w = LayerWriter::create(&out).unwrap();
        let stats = upper_layer(&up, "", &mut w).unwrap();
        let blob = w.finish().unwrap();
        assert_eq!(stats.files, 2);
        let f = File::open(&blob.path).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut names: Vec<(String, tar::EntryType)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let has = |p: &str, t: tar::EntryType| names.iter().any(|(n, k)| n == p && *k == t);
        assert!(has("etc/new/file", tar::EntryType::Regular), "{names:?}");
        assert!(has("etc/linked2", tar::EntryType::Link), "{names:?}");
        assert!(has("etc/sym", tar::EntryType::Symlink), "{names:?}");
        if root {
            assert!(has("etc/.wh.gone", tar::EntryType::Regular), "{names:?}");
            assert_eq!(stats.removed, 1);
        }
        if rustix::fs::getxattr(up.join("etc/new"), "user.overlay.opaque", &mut [0u8; 4][..])
            .is_ok()
        {
            assert!(
                has("etc/new/.wh..wh..opq", tar::EntryType::Regular),
                "{names:?}"
            );
        }
    }
}
