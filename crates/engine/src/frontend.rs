//! How the engine talks to whoever drives it: a terminal or a window.
//! Long steps get a progress sink; notes and warnings are lines for the
//! user; questions (consent to permissions) come back as answers.

use berth_image::progress::Progress;

use crate::Review;
use crate::source::DownloadPreview;

pub trait Frontend {
    /// A progress display for one long step ("importing", "pulling").
    fn progress(&self, step: &str) -> Box<dyn Progress + '_>;
    /// Something the user should know; the work goes on.
    fn warn(&self, msg: &str);
    /// A step worth telling (a thin bundle's runtime being fetched).
    fn info(&self, msg: &str);
    /// Asked before each install in work that installs several things
    /// (update): may the app get what this review asks for? A review
    /// that needs no consent is shown and answered at once. Nothing is
    /// installed on `false`.
    fn consent(&self, review: &Review) -> Result<bool, crate::Error>;
    /// Before an install downloads an image's layers: what it would
    /// fetch, and what the app asks for (from its config, fetched first).
    /// Nothing is downloaded on `false`. By default, go on: the review
    /// after the download asks.
    fn before_download(&self, _preview: &DownloadPreview) -> Result<bool, crate::Error> {
        Ok(true)
    }
}

/// For scripts and tests: no output, and consent only when told so.
pub struct Quiet {
    pub consent: bool,
}

impl Frontend for Quiet {
    fn progress(&self, _step: &str) -> Box<dyn Progress + '_> {
        Box::new(berth_image::progress::NoProgress)
    }
    fn warn(&self, _msg: &str) {}
    fn info(&self, _msg: &str) {}
    fn consent(&self, review: &Review) -> Result<bool, crate::Error> {
        Ok(self.consent || !review.needs_consent())
    }
}
