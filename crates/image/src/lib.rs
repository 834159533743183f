//! berth's image side: OCI references and digests, the content-addressed
//! store (a valid OCI image layout), import and export, hostile-input-safe
//! layer unpacking, gc and fsck. Synchronous; no async runtime.

pub mod base;
pub mod content;
pub mod digest;
pub mod error;
pub mod export;
pub mod fsck;
pub mod fsutil;
pub mod gc;
pub mod import;
pub mod layer;
pub mod lock;
pub mod objects;
pub mod progress;
pub mod reference;
pub mod source;
pub mod store;
pub mod tarsplit;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::ImageName;
pub use store::{Image, ImageEntry, Store};
