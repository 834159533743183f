//! Engine work that takes a while (import, unpack, pull, install) runs on
//! a thread of its own with its own `Engine`, so the window keeps drawing.
//! The thread reports through a channel; byte counts go through atomics
//! the window reads a few times a second, not one message per chunk.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use berth_app::permissions::ReviewLine;
use berth_engine::{Action, Engine, Frontend, Review};
use berth_image::progress::Progress;

/// What the worker tells the window.
pub enum Event {
    /// A long step began ("importing", "pulling").
    Step(String),
    /// A note or a warning for the user.
    Note(String),
    Reviewed(Box<ReviewView>),
    Installed {
        id: String,
        name: String,
        exported: bool,
    },
    Failed(String),
}

/// A review as plain data the window can hold (the `Review` itself stays
/// with the worker, which installs exactly it).
pub struct ReviewView {
    pub action: Action,
    pub id: String,
    pub name: String,
    pub origin: String,
    pub size: u64,
    pub shared: u64,
    pub new_on_disk: u64,
    pub downloaded: u64,
    /// What needs the user's yes: everything on an install, only what is
    /// new on an update or a reinstall.
    pub lines: Vec<ReviewLine>,
    pub icon: Option<Vec<u8>>,
    /// A Flatpak app's runtime, and what it asks for that berth does not
    /// grant.
    pub runtime: Option<String>,
    pub runtime_change: Option<String>,
    pub left_out: Vec<String>,
}

impl ReviewView {
    fn of(r: &Review) -> ReviewView {
        ReviewView {
            action: r.action,
            id: r.id.clone(),
            name: r.name.clone(),
            origin: r.origin.clone(),
            size: r.size,
            shared: r.shared,
            new_on_disk: r.new_on_disk(),
            downloaded: r.downloaded,
            lines: r.new_permissions.clone(),
            icon: r.icon().map(|(_, b)| b.to_vec()),
            runtime: r.runtime.clone(),
            runtime_change: r.runtime_change.clone(),
            left_out: r.left_out.clone(),
        }
    }
}

/// Bytes done of bytes known, for the progress bar.
#[derive(Default)]
pub struct Meter {
    total: AtomicU64,
    done: AtomicU64,
}

impl Meter {
    /// `None` while nothing is known yet (the bar pulses).
    pub fn fraction(&self) -> Option<f64> {
        let t = self.total.load(Ordering::Relaxed);
        let d = self.done.load(Ordering::Relaxed);
        (t > 0).then(|| (d as f64 / t as f64).min(1.0))
    }

    pub fn counts(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

struct Bar {
    meter: Arc<Meter>,
    tx: async_channel::Sender<Event>,
}

impl Progress for Bar {
    fn add_total(&self, bytes: u64) {
        self.meter.total.fetch_add(bytes, Ordering::Relaxed);
    }
    fn advance(&self, bytes: u64) {
        self.meter.done.fetch_add(bytes, Ordering::Relaxed);
    }
    fn note(&self, msg: &str) {
        let _ = self.tx.try_send(Event::Note(msg.to_owned()));
    }
}

/// The engine's front end on the worker thread.
struct Window {
    tx: async_channel::Sender<Event>,
    meter: Arc<Meter>,
}

impl Frontend for Window {
    fn progress(&self, step: &str) -> Box<dyn Progress + '_> {
        self.meter.total.store(0, Ordering::Relaxed);
        self.meter.done.store(0, Ordering::Relaxed);
        let _ = self.tx.try_send(Event::Step(step.to_owned()));
        Box::new(Bar {
            meter: self.meter.clone(),
            tx: self.tx.clone(),
        })
    }
    fn warn(&self, msg: &str) {
        let _ = self.tx.try_send(Event::Note(msg.to_owned()));
    }
    fn info(&self, msg: &str) {
        let _ = self.tx.try_send(Event::Note(msg.to_owned()));
    }
    /// The window asked before `install`; nothing else may install.
    fn consent(&self, review: &Review) -> Result<bool, berth_engine::Error> {
        Ok(!review.needs_consent())
    }
}

/// The error and its causes, escaped, for the window.
pub fn message(e: &berth_engine::Error) -> String {
    berth_app::text::escape_lines(&berth_engine::error_chain(e)).into_owned()
}

/// Review `file` in the store at `root`, then wait for the window's
/// answer: `true` installs the reviewed app; `false` or a closed window
/// ends the thread with nothing installed.
pub fn review_then_install(
    root: PathBuf,
    file: PathBuf,
) -> (
    async_channel::Receiver<Event>,
    mpsc::Sender<bool>,
    Arc<Meter>,
) {
    let (tx, rx) = async_channel::unbounded();
    let (answer_tx, answer_rx) = mpsc::channel();
    let meter = Arc::new(Meter::default());
    let fe = Window {
        tx: tx.clone(),
        meter: meter.clone(),
    };
    std::thread::spawn(move || {
        let result = (|| -> Result<Option<Event>, berth_engine::Error> {
            // A file, never a registry reference or an image name: what
            // the user double-clicked is what gets reviewed.
            let path = std::path::absolute(&file).unwrap_or(file.clone());
            if !path.is_file() && !path.is_dir() {
                return Err(berth_engine::Error::Invalid(format!(
                    "{}: no such file",
                    path.display()
                )));
            }
            let engine = Engine::open(&root)?;
            let review = engine.review(&path.to_string_lossy(), None, &fe)?;
            let _ = tx.try_send(Event::Reviewed(Box::new(ReviewView::of(&review))));
            if answer_rx.recv() != Ok(true) {
                return Ok(None);
            }
            let done = engine.install(review, true, &fe)?;
            Ok(Some(Event::Installed {
                id: done.id,
                name: done.name,
                exported: done.exported,
            }))
        })();
        let ev = match result {
            Ok(Some(ev)) => ev,
            Ok(None) => return,
            Err(e) => Event::Failed(message(&e)),
        };
        let _ = tx.try_send(ev);
    });
    (rx, answer_tx, meter)
}

/// A front end for the quick calls the manager makes on the GTK thread
/// (rollback): notes are kept for the status line.
#[derive(Default)]
pub struct Notes(pub std::cell::RefCell<Vec<String>>);

impl Frontend for Notes {
    fn progress(&self, _step: &str) -> Box<dyn Progress + '_> {
        Box::new(berth_image::progress::NoProgress)
    }
    fn warn(&self, msg: &str) {
        self.0.borrow_mut().push(msg.to_owned());
    }
    fn info(&self, msg: &str) {
        self.0.borrow_mut().push(msg.to_owned());
    }
    fn consent(&self, review: &Review) -> Result<bool, berth_engine::Error> {
        Ok(!review.needs_consent())
    }
}
