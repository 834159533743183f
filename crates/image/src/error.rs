//! Typed errors for the image store. Display strings never repeat the
//! source error: the binary prints the whole chain once.

use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("digest mismatch in {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch in {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("refusing layer entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what} is not valid JSON")]
    BadJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("layer {layer} is too large: {reason} (see docs/on-disk-format.md, 'Limits')")]
    TooLarge { layer: String, reason: String },
    #[error("no image named {0:?} in the store (see `berth images`)")]
    NotFound(String),
    #[error("{0:?} matches more than one image; use a longer ID or a name")]
    Ambiguous(String),
    #[error("unsupported input: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Conflict(String),
    /// The store's filesystem filled up.
    #[error("not enough space in {store}: this needs at least {} for the compressed layers, and more for their unpacked trees; {} are free. Free some space, or run `berth gc` to remove what nothing uses", human(*needed), human(*free))]
    NoSpace {
        store: String,
        needed: u64,
        free: u64,
    },
    /// A thin bundle (or partial layout) that leaves out layers the store
    /// does not have as its runtime's (or as an earlier version's of the
    /// same app).
    #[error("{missing} layer(s) of this image are not in it, and the store does not have them as its runtime's or as an earlier version's of the same app; it needs its base image {}{}", base_name.as_deref().unwrap_or("(not named)"), base_digest.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    MissingBase {
        missing: usize,
        base_name: Option<String>,
        base_digest: Option<String>,
    },
}

fn human(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

impl Error {
    /// Whether an I/O error somewhere in this error is "no space left".
    pub fn is_no_space(&self) -> bool {
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(cur) = e {
            if let Some(io) = cur.downcast_ref::<io::Error>()
                && io.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
            {
                return true;
            }
            e = cur.source();
        }
        false
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn unsafe_entry(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::UnsafeEntry {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Attach a human context line to an `io::Result`.
pub trait IoContext<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: f(),
            source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: f(),
            source: e.into(),
        })
    }
}
