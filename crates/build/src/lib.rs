//! The author's side of berth: runtime and SDK images built from Debian
//! packages, app images built from a TOML manifest, and reproducible layers.
//!
//! Parsers (`manifest`, `dpkg`) are pure. The layer writers and `oci`
//! produce an OCI layout directory that the binary imports with the same
//! verified path as any downloaded image.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod chunk;
pub mod commit;
pub mod debian;
pub mod dpkg;
pub mod error;
pub mod layer;
pub mod manifest;
pub mod oci;
pub mod packages;
pub mod tardiff;

pub use error::{Error, Result};
