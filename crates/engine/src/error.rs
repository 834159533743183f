//! One error type for every front end: what went wrong in words a user
//! can act on, with the cause chain kept for `{:#}`.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Deploy(#[from] berth_app::deploy::DeployError),
    #[error(transparent)]
    Meta(#[from] berth_app::metadata::MetaError),
    #[error(transparent)]
    Permission(#[from] berth_app::permissions::ParseError),
    #[error(transparent)]
    Export(#[from] berth_app::desktop::ExportError),
    #[error(transparent)]
    Registry(#[from] berth_registry::Error),
    #[error(transparent)]
    Build(#[from] berth_build::Error),
    #[error(transparent)]
    Delta(#[from] berth_delta::Error),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The request makes no sense as given (a bad name, a missing file).
    #[error("{0}")]
    Invalid(String),
    /// berth will not do this: a trust policy, a name conflict, an image
    /// that is no app or not for this machine.
    #[error("{0}")]
    Refused(String),
    /// `install` of a review that asks for permissions, without consent.
    #[error("installing needs consent to the permissions reviewed")]
    NoConsent,
    /// The app changed between the review and the install.
    #[error("{0} changed since it was reviewed; review it again")]
    Stale(String),
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The store or deployment error at the root of this one, for "did
    /// you mean" hints and for front ends that treat them specially.
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
}

/// `.context(...)` for engine results, like anyhow's.
pub trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: what.into(),
            source: Box::new(e.into()),
        })
    }

    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: f(),
            source: Box::new(e.into()),
        })
    }
}

/// I/O with what was being done.
pub(crate) fn io<T>(r: std::io::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    r.map_err(|source| Error::Io {
        context: what(),
        source,
    })
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Invalid(format!("invalid JSON: {e}"))
    }
}
