//! Typed errors for registry work. Display never repeats the source.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid reference {0:?}: use HOST[:PORT]/NAME[:TAG|@DIGEST], e.g. localhost:5000/apps/editor:1.0"
    )]
    BadReference(String),
    #[error("registry {registry}: {what}")]
    Registry {
        registry: String,
        what: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("credentials file {file}: {reason}")]
    Auth { file: String, reason: String },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
}
