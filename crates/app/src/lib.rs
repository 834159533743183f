//! Desktop apps on top of images: the metadata an image declares in its
//! labels and the permission model (Flatpak's vocabulary). Pure parsers;
//! no I/O.

pub mod deploy;
pub mod grants;
pub mod metadata;
pub mod permissions;
pub mod xauth;

pub use metadata::AppMeta;
pub use permissions::{Permission, PermissionSet, Risk};
