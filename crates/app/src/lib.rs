//! Desktop apps on top of images: the metadata an image declares in its
//! labels and the permission model (Flatpak's vocabulary). Pure parsers;
//! no I/O.

pub mod metadata;
pub mod permissions;

pub use metadata::AppMeta;
pub use permissions::{Permission, PermissionSet, Risk};
