//! Progress reporting hooks; the binary draws them (or stays quiet).

pub trait Progress: Send + Sync {
    /// More bytes of work are known.
    fn add_total(&self, _bytes: u64) {}
    /// Bytes done.
    fn advance(&self, _bytes: u64) {}
    /// A line for the user (a warning or a step), printed above any bar.
    fn note(&self, _msg: &str) {}
}

pub struct NoProgress;

impl Progress for NoProgress {}
