//! The installer window a double-clicked `.berth` file opens: a progress
//! bar while the bundle is read, then the review (icon, name, ID, sizes,
//! permissions ranked by risk in the CLI's words), Install or Cancel, a
//! progress bar again, then Launch. Errors get a page in plain words.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use adw::prelude::*;
use berth_engine::{Action, human_size, risk_summary};
use gtk::{gdk, gdk_pixbuf, gio, glib};
use {gtk4 as gtk, libadwaita as adw};

use crate::widgets::{self, boxed_list, button, hbox, label, safe, status_page, vbox};
use crate::worker::{self, Event, ReviewView};

pub fn open(app: &adw::Application, root: PathBuf, file: PathBuf) {
    let win = adw::ApplicationWindow::builder()
        .application(app)
        .title("Install app")
        .default_width(600)
        .default_height(680)
        .build();
    let stack = gtk::Stack::new();
    stack.set_vexpand(true);
    stack.set_transition_type(gtk::StackTransitionType::None);
    let content = vbox(0);
    content.append(&adw::HeaderBar::new());
    content.append(&stack);
    win.set_content(Some(&content));

    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (busy, step, bar) = busy_page(&format!("Reading {}", safe(&name)));
    stack.add_named(&busy, Some("busy"));
    win.present();

    let (events, answer, meter) = worker::review_then_install(root.clone(), file);
    // While it installs the window cannot close: a half-done install is
    // never left behind by a click on ×. Reading and review can always be
    // left (the worker then stops at the question).
    let working = Rc::new(Cell::new(false));
    let notes: Rc<std::cell::RefCell<Vec<String>>> = Rc::default();
    win.connect_close_request({
        let working = working.clone();
        move |_| {
            if working.get() {
                glib::Propagation::Stop
            } else {
                glib::Propagation::Proceed
            }
        }
    });
    glib::timeout_add_local(Duration::from_millis(100), {
        let bar = bar.downgrade();
        move || {
            let Some(bar) = bar.upgrade() else {
                return glib::ControlFlow::Break;
            };
            match meter.fraction() {
                Some(f) => {
                    bar.set_fraction(f);
                    let (d, t) = meter.counts();
                    bar.set_text(Some(&format!("{} of {}", human_size(d), human_size(t))));
                }
                None => bar.pulse(),
            }
            glib::ControlFlow::Continue
        }
    });

    glib::spawn_future_local(async move {
        while let Ok(ev) = events.recv().await {
            match ev {
                Event::Step(s) => step.set_text(&capitalized(&safe(&s))),
                Event::Note(n) => {
                    // Shown on the review page, as the CLI prints them
                    // above its question; escaped again, as any text.
                    let n = berth_app::text::escape_lines(&n).into_owned();
                    bar.set_tooltip_text(Some(&n));
                    notes.borrow_mut().push(n);
                }
                Event::Reviewed(r) => {
                    let page = review_page(
                        &r,
                        &notes.borrow(),
                        &win,
                        &stack,
                        &step,
                        answer.clone(),
                        working.clone(),
                    );
                    stack.add_named(&page, Some("review"));
                    stack.set_visible_child_name("review");
                }
                Event::Installed { id, name, exported } => {
                    working.set(false);
                    let page = done_page(&win, &root, &id, &name, exported);
                    stack.add_named(&page, Some("done"));
                    stack.set_visible_child_name("done");
                }
                Event::Failed(msg) => {
                    working.set(false);
                    show_error(&win, &stack, &msg);
                }
            }
        }
        // The worker ended without a word (it panicked): say so, and let
        // the window close.
        if working.get() || stack.visible_child_name().as_deref() == Some("busy") {
            working.set(false);
            show_error(
                &win,
                &stack,
                "berth stopped unexpectedly; nothing more was done.",
            );
        }
    });
}

fn show_error(win: &adw::ApplicationWindow, stack: &gtk::Stack, msg: &str) {
    let (page, buttons) = status_page("dialog-error-symbolic", "Could not install", msg);
    let close = button("Close", None);
    closes(&close, win);
    buttons.append(&close);
    stack.add_named(&page, Some("error"));
    stack.set_visible_child_name("error");
}

/// Clicking `b` closes the window.
fn closes(b: &gtk::Button, win: &adw::ApplicationWindow) {
    let win = win.downgrade();
    b.connect_clicked(move |_| {
        if let Some(w) = win.upgrade() {
            w.close();
        }
    });
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + "…",
        None => String::new(),
    }
}

/// A spinner, the current step and a progress bar.
fn busy_page(text: &str) -> (gtk::Box, gtk::Label, gtk::ProgressBar) {
    let page = vbox(16);
    page.set_valign(gtk::Align::Center);
    page.set_margin_start(48);
    page.set_margin_end(48);
    let spinner = gtk::Spinner::new();
    spinner.set_size_request(32, 32);
    spinner.start();
    page.append(&spinner);
    let step = label(&format!("{text}…"), &["title-4"]);
    step.set_xalign(0.5);
    page.append(&step);
    let bar = gtk::ProgressBar::new();
    bar.set_show_text(true);
    page.append(&bar);
    (page, step, bar)
}

/// The icon, decoded at the size it is shown (an SVG that declares a
/// huge canvas is rendered at 64×64, never at its own size).
fn icon_widget(bytes: Option<&[u8]>) -> gtk::Image {
    let img = bytes
        .and_then(|b| {
            let stream = gio::MemoryInputStream::from_bytes(&glib::Bytes::from(b));
            gdk_pixbuf::Pixbuf::from_stream_at_scale(&stream, 64, 64, true, gio::Cancellable::NONE)
                .ok()
        })
        .map(|p| gdk::Texture::for_pixbuf(&p))
        .map_or_else(
            || gtk::Image::from_icon_name("application-x-executable"),
            |t| gtk::Image::from_paintable(Some(&t)),
        );
    img.set_pixel_size(64);
    img
}

fn sizes(r: &ReviewView) -> String {
    let mut s = format!("Size: {}", human_size(r.size));
    if r.shared > 0 {
        s += &format!(
            " ({} shared with installed runtimes and apps, {} new on disk)",
            human_size(r.shared),
            human_size(r.new_on_disk)
        );
    }
    if r.downloaded > 0 {
        s += &format!("; downloaded {}", human_size(r.downloaded));
    }
    s
}

fn review_page(
    r: &ReviewView,
    notes: &[String],
    win: &adw::ApplicationWindow,
    stack: &gtk::Stack,
    step: &gtk::Label,
    answer: std::sync::mpsc::Sender<bool>,
    working: Rc<Cell<bool>>,
) -> gtk::Box {
    let page = vbox(0);
    let scroll = gtk::ScrolledWindow::new();
    scroll.set_vexpand(true);
    scroll.set_hscrollbar_policy(gtk::PolicyType::Never);
    let body = vbox(18);
    body.set_margin_start(24);
    body.set_margin_end(24);
    body.set_margin_top(18);
    body.set_margin_bottom(18);

    let head = hbox(16);
    head.append(&icon_widget(r.icon.as_deref()));
    let names = vbox(4);
    names.set_valign(gtk::Align::Center);
    names.append(&label(&safe(&r.name), &["title-1"]));
    names.append(&label(&safe(&r.id), &["dim-label", "monospace"]));
    head.append(&names);
    body.append(&head);

    let facts = vbox(4);
    facts.append(&label(&sizes(r), &[]));
    let origin = label(
        &format!("From: {}", safe(&r.origin)),
        &["dim-label", "caption"],
    );
    facts.append(&origin);
    if let Some(rt) = &r.runtime {
        facts.append(&label(
            &format!("Runs on the Flatpak runtime {}", safe(rt)),
            &["dim-label", "caption"],
        ));
    }
    if let Some(c) = &r.runtime_change {
        facts.append(&label(
            &format!("Moves to another image of that runtime: {}", safe(c)),
            &[],
        ));
    }
    body.append(&facts);

    let heading = match (r.action, r.lines.is_empty()) {
        (Action::Install, true) => "It asks for no permissions: fully sandboxed.",
        (Action::Install, false) => "It asks to:",
        (_, true) => "No new permissions.",
        (_, false) => "It asks for new permissions:",
    };
    body.append(&label(heading, &["title-4"]));
    if !r.lines.is_empty() {
        let list = boxed_list();
        for l in &r.lines {
            list.append(&widgets::permission_row(
                l.risk,
                &l.description,
                &l.permission,
                None,
            ));
        }
        body.append(&list);
        body.append(&label(&risk_summary(&r.lines), &["dim-label"]));
    }
    if !r.left_out.is_empty() {
        body.append(&label(
            &format!(
                "Not granted (berth has no such permission): {}",
                r.left_out
                    .iter()
                    .map(|s| safe(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &["dim-label"],
        ));
    }
    for n in notes {
        body.append(&label(n, &["dim-label", "caption"]));
    }
    scroll.set_child(Some(&body));
    page.append(&scroll);

    let bar = hbox(12);
    bar.set_halign(gtk::Align::End);
    bar.set_margin_start(24);
    bar.set_margin_end(24);
    bar.set_margin_top(12);
    bar.set_margin_bottom(12);
    let cancel = button("Cancel", None);
    closes(&cancel, win);
    let verb = match r.action {
        Action::Install => "Install",
        Action::Reinstall => "Reinstall",
        Action::Update => "Update",
    };
    let install = button(verb, Some("suggested-action"));
    install.connect_clicked({
        let stack = stack.downgrade();
        let step = step.downgrade();
        let name = safe(&r.name);
        let action = r.action;
        move |_| {
            working.set(true);
            let _ = answer.send(true);
            if let (Some(stack), Some(step)) = (stack.upgrade(), step.upgrade()) {
                step.set_text(&format!("{} {name}…", action.verb()));
                stack.set_visible_child_name("busy");
            }
        }
    });
    bar.append(&cancel);
    bar.append(&install);
    page.append(&gtk::Separator::new(gtk::Orientation::Horizontal));
    page.append(&bar);
    win.set_default_widget(Some(&cancel));
    page
}

fn done_page(
    win: &adw::ApplicationWindow,
    root: &std::path::Path,
    id: &str,
    name: &str,
    exported: bool,
) -> gtk::Box {
    let message = if exported {
        format!("{} is in your apps menu.", safe(name))
    } else {
        format!(
            "{} is installed; start it with `berth run {}`.",
            safe(name),
            safe(id)
        )
    };
    let (page, buttons) = status_page("emblem-ok-symbolic", "Installed", &message);
    let close = button("Close", None);
    closes(&close, win);
    let launch = button("Launch", Some("suggested-action"));
    launch.connect_clicked({
        let win = win.downgrade();
        let root = root.to_owned();
        let id = id.to_owned();
        move |b| match widgets::launch(&root, &id) {
            Ok(()) => {
                if let Some(w) = win.upgrade() {
                    w.close();
                }
            }
            Err(e) => {
                b.set_sensitive(false);
                b.set_tooltip_text(Some(&format!("could not start berth: {e}")));
            }
        }
    });
    buttons.append(&close);
    buttons.append(&launch);
    page
}
