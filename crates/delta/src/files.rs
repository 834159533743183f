//! An image's files in the store, looked up the way its overlay mount
//! shows them, as the old side of a delta.

use std::fs::File;
use std::os::fd::OwnedFd;

use berth_image::{Image, Store};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::tardiff::Source;

/// The unpacked layers of one stored image, top first. A path is the
/// first regular file found going down; a whiteout, a directory or any
/// other entry above hides what is below. Paths are resolved beneath each
/// layer without following symlinks, so a delta can name nothing outside
/// the image. Whiteouts of a parent directory and opaque directories are
/// not looked at: a file they would hide makes a wrong tar, which the
/// diff-id check refuses.
pub struct ImageFiles {
    pub(crate) layers: Vec<OwnedFd>,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

impl ImageFiles {
    pub fn new(store: &Store, image: &Image) -> Result<ImageFiles> {
        let mut layers = Vec::new();
        for id in image.diff_ids()?.iter().rev() {
            if !store.has_layer(id) {
                return Err(Error::Invalid(format!(
                    "layer {id} of the old image is not complete in the store"
                )));
            }
            let path = store.layer_path(id);
            let fd = rustix::fs::open(
                &path,
                OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::PATH,
                Mode::empty(),
            )
            .map_err(|e| Error::io(format!("opening {}", path.display()), e.into()))?;
            layers.push(fd);
        }
        Ok(ImageFiles { layers })
    }
}

/// `path` as a tar names it, made relative; `None` for what no overlay
/// path can be (`..`, NUL, nothing).
fn relative(path: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") || path.contains('\0') {
        return None;
    }
    Some(parts.join("/"))
}

impl Source for ImageFiles {
    fn open(&mut self, path: &str) -> Result<Option<File>> {
        let Some(rel) = relative(path) else {
            return Ok(None);
        };
        for layer in &self.layers {
            // O_PATH first: a whiteout is a device node and a FIFO would
            // block, and neither may be opened for reading.
            let found = rustix::fs::openat2(
                layer,
                &rel,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            );
            let fd = match found {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR) => continue,
                // A symlink on the way: the overlay would follow it, but
                // a delta's files are named by their real paths.
                Err(Errno::LOOP | Errno::XDEV) => return Ok(None),
                // Unreadable to this user (a rootless store of a 0000 file):
                // a delta made here sends that file whole.
                Err(Errno::ACCESS | Errno::PERM) => return Ok(None),
                Err(e) => return Err(Error::io(format!("looking up {rel}"), e.into())),
            };
            let st = rustix::fs::fstat(&fd)
                .map_err(|e| Error::io(format!("looking up {rel}"), e.into()))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Ok(None);
            }
            let file = match rustix::fs::openat2(
                layer,
                &rel,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                Mode::empty(),
                RESOLVE,
            ) {
                Ok(f) => f,
                Err(Errno::ACCESS | Errno::PERM) => return Ok(None),
                Err(e) => {
                    return Err(Error::io(
                        format!("opening {rel} of the old image"),
                        e.into(),
                    ));
                }
            };
            let again = rustix::fs::fstat(&file)
                .map_err(|e| Error::io(format!("looking up {rel}"), e.into()))?;
            if FileType::from_raw_mode(again.st_mode) != FileType::RegularFile {
                return Ok(None);
            }
            return Ok(Some(File::from(file)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::relative;

    #[test]
    fn paths_are_made_relative_and_never_climb() {
        assert_eq!(relative("./usr/lib/x").as_deref(), Some("usr/lib/x"));
        assert_eq!(
            relative("/etc//os-release").as_deref(),
            Some("etc/os-release")
        );
        assert_eq!(relative("usr/../../etc/shadow"), None);
        assert_eq!(relative(""), None);
        assert_eq!(relative("./"), None);
        assert_eq!(relative("a\0b"), None);
    }
}
