//! Layer deltas, so that an update downloads what changed inside a layer
//! and not the whole layer: the tar-diff format, the oci-delta artifact
//! that carries tar-diffs in a registry (containers/oci-delta), and an
//! image's files in the store as the old side of a delta. The engine
//! fetches and applies them; `berth push --delta-from` makes them.

pub mod artifact;
mod error;
pub mod files;
pub mod layers;
pub mod tardiff;

pub use error::{Error, Result};
