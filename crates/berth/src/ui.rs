//! Terminal output: progress bars (only on a terminal), notes, sizes.

use std::io::IsTerminal;
use std::time::Duration;

use berth_image::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A value shown on one line (a name, a path, a table cell): every
/// control character, newlines included, is shown escaped.
pub fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    berth_app::text::escape(s)
}

/// A whole message: berth's own line breaks stay, the rest is escaped.
pub fn safe_lines(s: &str) -> std::borrow::Cow<'_, str> {
    berth_app::text::escape_lines(s)
}

pub use berth_engine::{human_size, summarize, user_home};

/// The terminal as the engine's front end: bars on stderr, notes, and
/// consent asked on the terminal (or given by --yes).
pub struct Term {
    yes: bool,
    /// stdout is for the JSON result: reviews are not printed there.
    json: bool,
    /// Permissions the user allowed before a download: the review after
    /// it does not ask about them again.
    consented: std::cell::RefCell<Vec<String>>,
}

impl Term {
    pub fn new(yes: bool, json: bool) -> Term {
        Term {
            yes,
            json,
            consented: std::cell::RefCell::default(),
        }
    }

    /// Were all of these allowed already, before the download?
    pub fn consented_to(&self, lines: &[berth_app::permissions::ReviewLine]) -> bool {
        let c = self.consented.borrow();
        !c.is_empty() && lines.iter().all(|l| c.contains(&l.permission))
    }

    /// A yes/no question; without a terminal, consent must come from --yes.
    pub fn ask(&self, question: &str) -> anyhow::Result<bool> {
        use std::io::{BufRead, IsTerminal, Write};
        if self.yes {
            return Ok(true);
        }
        if self.json || !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "installing needs your consent to the permissions above: rerun with --yes to accept them"
            );
        }
        print!("{question} [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(matches!(
            line.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }
}

impl berth_engine::Frontend for Term {
    fn progress(&self, step: &str) -> Box<dyn Progress + '_> {
        Box::new(Bar::new(step))
    }

    fn warn(&self, msg: &str) {
        warn(msg);
    }

    fn info(&self, msg: &str) {
        if self.json {
            warn(msg);
        } else {
            println!("{msg}");
        }
    }

    fn before_download(
        &self,
        p: &berth_engine::DownloadPreview,
    ) -> Result<bool, berth_engine::Error> {
        if !self.json {
            let what = match (&p.name, &p.id) {
                (Some(n), Some(id)) => format!("{} ({})", safe(n), safe(id)),
                _ => safe(&p.reference).into_owned(),
            };
            println!(
                "{what}: {} to download{}",
                human_size(p.download),
                if p.shared > 0 {
                    format!(", {} already on this computer", human_size(p.shared))
                } else {
                    String::new()
                }
            );
        }
        if p.id.is_none() || p.permissions.is_empty() {
            return Ok(true);
        }
        if !self.json {
            println!("It asks to:");
            crate::cmd::print_lines(&p.permissions);
        }
        let ok = self
            .ask("Allow this and download?")
            .map_err(|e| berth_engine::Error::Invalid(format!("{e:#}")))?;
        if ok {
            *self.consented.borrow_mut() =
                p.permissions.iter().map(|l| l.permission.clone()).collect();
        }
        Ok(ok)
    }

    fn consent(&self, review: &berth_engine::Review) -> Result<bool, berth_engine::Error> {
        if !self.json {
            crate::cmd::print_review(review);
        }
        if !review.needs_consent() {
            return Ok(true);
        }
        self.ask("Allow this and install?")
            .map_err(|e| berth_engine::Error::Invalid(format!("{e:#}")))
    }
}

pub fn error(msg: &str) {
    eprintln!("berth: error: {msg}");
}

pub fn warn(msg: &str) {
    eprintln!("berth: {msg}");
}

/// A byte-count bar on stderr; invisible when stderr is not a terminal.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new(verb: &str) -> Bar {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(verb.to_owned());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        } else {
            ProgressBar::hidden()
        };
        Bar { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn add_total(&self, bytes: u64) {
        self.bar.inc_length(bytes);
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn note(&self, msg: &str) {
        if self.bar.is_hidden() {
            warn(msg);
        } else {
            self.bar.suspend(|| warn(msg));
        }
    }
}

/// Print rows as aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| safe(c).into_owned()).collect())
        .collect();
    let rows = &rows;
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A spinner with elapsed time for work of unknown length (hidden without
/// a terminal, where a one-line note is printed instead).
pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    pub fn new(msg: &str) -> Spinner {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_message(msg.to_owned());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            eprintln!("{msg}...");
            ProgressBar::hidden()
        };
        Spinner { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The candidate closest to `typed`, if it is close enough to be a typo:
/// at most a third of its characters (and at least one) differ.
pub fn closest<'a>(typed: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = (typed.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(typed, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}
