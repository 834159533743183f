use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("{context}")]
    Sys {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("no instance {0:?} is running (see `berth ps`)")]
    NoInstance(String),
}

pub trait Ctx<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> Ctx<T> for io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: f(),
            source,
        })
    }
}

impl<T> Ctx<T> for rustix::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Sys {
            context: f(),
            source: e.into(),
        })
    }
}
