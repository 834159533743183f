//! Small building blocks both windows share. Every string from an image
//! or a store goes through `safe` and into `Label::set_text`: never into
//! markup, and never with its control or bidi characters live.

use std::path::PathBuf;

use berth_app::Risk;
use gtk::prelude::*;
use gtk4 as gtk;

/// Image-supplied text, escaped as the CLI escapes it.
pub fn safe(s: &str) -> String {
    berth_app::text::escape(s).into_owned()
}

/// A plain-text label; `classes` are libadwaita style classes.
pub fn label(text: &str, classes: &[&str]) -> gtk::Label {
    let l = gtk::Label::new(None);
    l.set_text(text);
    l.set_use_markup(false);
    l.set_xalign(0.0);
    l.set_wrap(true);
    l.set_wrap_mode(gtk::pango::WrapMode::WordChar);
    for c in classes {
        l.add_css_class(c);
    }
    l
}

pub fn vbox(spacing: i32) -> gtk::Box {
    gtk::Box::new(gtk::Orientation::Vertical, spacing)
}

pub fn hbox(spacing: i32) -> gtk::Box {
    gtk::Box::new(gtk::Orientation::Horizontal, spacing)
}

/// "high risk" in red, "medium risk" in amber, "low risk" dimmed: the
/// CLI's words.
pub fn risk_label(r: Risk) -> gtk::Label {
    let l = label(
        &r.to_string(),
        &[match r {
            Risk::High => "error",
            Risk::Medium => "warning",
            Risk::Low => "dim-label",
        }],
    );
    l.set_wrap(false);
    l.set_width_chars(12);
    l.add_css_class("heading");
    l
}

/// One permission: its risk, what it means, and its canonical text.
pub fn permission_row(
    risk: Risk,
    description: &str,
    permission: &str,
    note: Option<&str>,
) -> gtk::Box {
    let row = hbox(12);
    row.set_margin_top(8);
    row.set_margin_bottom(8);
    row.set_margin_start(12);
    row.set_margin_end(12);
    let r = risk_label(risk);
    r.set_valign(gtk::Align::Start);
    row.append(&r);
    let text = vbox(2);
    text.set_hexpand(true);
    text.append(&label(&safe(description), &[]));
    let perm = label(&safe(permission), &["dim-label", "caption", "monospace"]);
    text.append(&perm);
    if let Some(n) = note {
        text.append(&label(n, &["dim-label", "caption"]));
    }
    row.append(&text);
    row
}

/// A list in libadwaita's card style.
pub fn boxed_list() -> gtk::ListBox {
    let list = gtk::ListBox::new();
    list.set_selection_mode(gtk::SelectionMode::None);
    list.add_css_class("boxed-list");
    list
}

/// A centred page: an icon, a title and a message.
pub fn status_page(icon: &str, title: &str, message: &str) -> (gtk::Box, gtk::Box) {
    let page = vbox(12);
    page.set_valign(gtk::Align::Center);
    page.set_margin_start(32);
    page.set_margin_end(32);
    page.set_margin_top(24);
    page.set_margin_bottom(24);
    let img = gtk::Image::from_icon_name(icon);
    img.set_pixel_size(64);
    img.add_css_class("dim-label");
    page.append(&img);
    let t = label(title, &["title-2"]);
    t.set_xalign(0.5);
    t.set_justify(gtk::Justification::Center);
    page.append(&t);
    let m = label(message, &[]);
    m.set_xalign(0.5);
    m.set_justify(gtk::Justification::Center);
    m.set_selectable(true);
    page.append(&m);
    let buttons = hbox(12);
    buttons.set_halign(gtk::Align::Center);
    buttons.set_margin_top(12);
    page.append(&buttons);
    (page, buttons)
}

pub fn button(text: &str, class: Option<&str>) -> gtk::Button {
    let b = gtk::Button::with_label(text);
    if let Some(c) = class {
        b.add_css_class(c);
    }
    b
}

/// The `berth` program to start apps with: the one installed beside this
/// binary (as `berth integrate` and `cargo install` place them), else the
/// one on PATH.
pub fn berth_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|e| e.with_file_name("berth"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth"))
}

/// Start an installed app as its menu entry would, without waiting.
pub fn launch(store: &std::path::Path, id: &str) -> std::io::Result<()> {
    let mut child = std::process::Command::new(berth_program())
        .env("BERTH_HOME", store)
        .args(["run", id])
        .stdin(std::process::Stdio::null())
        .spawn()?;
    // Reap it whenever it ends; the window may close first.
    std::thread::spawn(move || child.wait());
    Ok(())
}
