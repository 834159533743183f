//! berth's OCI distribution client: resolve a reference, fetch what the
//! store lacks (in parallel, resuming interrupted downloads, digests
//! verified), push images, and read the usual registry credential files.
//!
//! `oci-client` (async) does the protocol, including token and basic auth;
//! this crate runs it on a small tokio runtime of its own and offers a
//! synchronous API, like the rest of berth.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod containers;
pub mod error;
pub mod flatpak_index;
pub mod remote;
pub mod sign;

pub use error::{Error, Result};
pub use remote::{Remote, Resolved};
