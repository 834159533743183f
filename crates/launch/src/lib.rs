//! berth's launch, for every front end (the CLI's `berth run`, the menu
//! entries' launcher, the installer's Launch button):
//!
//! - [`plan()`] turns a [`Request`] (an installed app or an image, and what
//!   the user typed) into a [`LaunchPlan`]: the sandbox plan (namespaces,
//!   mounts, seccomp, cgroup) and the host-side steps around it (the app's
//!   home, filtered X cookies, PulseAudio settings, the D-Bus proxy), as
//!   printable data. Planning reads; it changes nothing.
//! - [`apply()`] carries a plan out and returns how the app ended.
//!
//! It depends on the store, the app model and the sandbox only, not on the
//! registry client or the build tools, so the program that links it for
//! launches (the front door, `berth`) stays small: loading, relocating and
//! forking a big program was a fifth of a launch.

pub mod a11y;
mod apply;
pub mod documents;
mod error;
pub mod flatpak;
pub mod host;
pub mod mime;
mod plan;
pub mod programs;
pub mod seed;
pub mod session;

pub use apply::{Outcome, apply};
pub use error::{Error, Result};
pub use plan::{HostStep, LaunchPlan, Places, Request, plan};

/// Said while a running `berth gc` holds the store.
pub const GC_WAIT: &str = "waiting for a running `berth gc` to finish...";

/// Where a launch's notes go: warnings the user should see while the run
/// goes on (a terminal's stderr, a window's status line).
pub trait Notes {
    fn warn(&self, msg: &str);
}
