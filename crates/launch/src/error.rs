//! What can stop a launch, in words a user can act on; the cause chain is
//! kept for `{:#}`.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Deploy(#[from] berth_app::deploy::DeployError),
    #[error(transparent)]
    Sandbox(#[from] berth_sandbox::Error),
    #[error(transparent)]
    Container(#[from] berth_app::containers::ContainerError),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The request makes no sense as given (a bad flag value).
    #[error("{0}")]
    Invalid(String),
    /// The store cannot serve this launch (a missing image or layer).
    #[error("{0}")]
    Store(String),
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The store or deployment error at the root, for "did you mean".
    pub fn image(&self) -> Option<&berth_image::Error> {
        match self {
            Error::Image(e) => Some(e),
            Error::Context { source, .. } => source.image(),
            _ => None,
        }
    }

    pub fn deploy(&self) -> Option<&berth_app::deploy::DeployError> {
        match self {
            Error::Deploy(e) => Some(e),
            Error::Context { source, .. } => source.deploy(),
            _ => None,
        }
    }

    pub(crate) fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            context: what.into(),
            source: Box::new(self),
        }
    }
}

/// I/O with what was being done.
pub(crate) fn io<T>(r: std::io::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    r.map_err(|source| Error::Io {
        context: what(),
        source,
    })
}
