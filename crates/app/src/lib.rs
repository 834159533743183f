//! Desktop apps on top of images: the metadata an image declares in its
//! labels, the permission model (Flatpak's vocabulary), and the files
//! generated for the desktop. Pure parsers, except `deploy` (the app
//! store on disk) and `hostids` (which names the host already uses).

pub mod appstream;
pub mod containers;
pub mod deploy;
pub mod desktop;
pub mod flatpak_image;
pub mod flatpak_info;
pub mod grants;
pub mod hostids;
pub mod keyfile;
pub mod metadata;
pub mod permissions;
pub mod text;
pub mod xauth;

pub use metadata::AppMeta;
pub use permissions::{Permission, PermissionSet, Risk};
