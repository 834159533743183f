//! berth's sandbox: a pure, printable plan (`plan`), its seccomp policy
//! (`seccomp`), cgroups (`cgroup`), instance state (`instance`), and the
//! small executor that applies a plan (`exec`). Synchronous; the only
//! `unsafe` is in `sys`.

pub mod cgroup;
pub mod error;
pub mod exec;
pub mod instance;
mod memory;
pub mod net;
pub mod plan;
pub mod seccomp;
mod sys;
pub use sys::default_sigpipe;
pub mod systemd;

pub use error::{Error, Result};
pub use plan::{SandboxPlan, build};
