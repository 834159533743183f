//! The permission manager: installed apps on the left; on the right what
//! the selected one may do, each permission with its risk, where it comes
//! from (the app asked for it, or the user added it) and a switch. The
//! switches, "Grant", "Reset", "Roll back" and "Uninstall" write exactly
//! what `berth override`, `berth rollback` and `berth uninstall` write:
//! they are the same engine calls.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use adw::prelude::*;
use berth_engine::{Engine, PermissionRow};
use gtk::glib;
use {gtk4 as gtk, libadwaita as adw};

use crate::widgets::{self, boxed_list, button, hbox, label, safe, status_page, vbox};
use crate::worker::{Notes, message};

struct Manager {
    engine: Engine,
    win: adw::ApplicationWindow,
    apps: gtk::ListBox,
    /// The installed apps' IDs, in the order of `apps`' rows.
    ids: RefCell<Vec<String>>,
    detail: gtk::ScrolledWindow,
    status: gtk::Label,
}

pub fn open(app: &adw::Application, root: PathBuf, select: Option<String>) {
    let win = adw::ApplicationWindow::builder()
        .application(app)
        .title("App permissions")
        .default_width(920)
        .default_height(660)
        .build();
    let content = vbox(0);
    content.append(&adw::HeaderBar::new());
    win.set_content(Some(&content));
    let engine = match Engine::open(&root) {
        Ok(e) => e,
        Err(e) => {
            let (page, _) = status_page(
                "dialog-error-symbolic",
                "Cannot open the app store",
                &message(&e),
            );
            page.set_vexpand(true);
            content.append(&page);
            win.present();
            return;
        }
    };

    let paned = gtk::Paned::new(gtk::Orientation::Horizontal);
    paned.set_vexpand(true);
    paned.set_position(280);
    let apps = gtk::ListBox::new();
    apps.add_css_class("navigation-sidebar");
    let side = gtk::ScrolledWindow::new();
    side.set_hscrollbar_policy(gtk::PolicyType::Never);
    side.set_child(Some(&apps));
    paned.set_start_child(Some(&side));
    paned.set_shrink_start_child(false);
    let detail = gtk::ScrolledWindow::new();
    detail.set_hscrollbar_policy(gtk::PolicyType::Never);
    paned.set_end_child(Some(&detail));
    content.append(&paned);
    let status = label("", &[]);
    status.set_margin_start(12);
    status.set_margin_end(12);
    status.set_margin_top(6);
    status.set_margin_bottom(6);
    content.append(&status);

    let m = Rc::new(Manager {
        engine,
        win: win.clone(),
        apps: apps.clone(),
        ids: RefCell::new(Vec::new()),
        detail,
        status,
    });
    apps.connect_row_selected({
        let m = m.clone();
        move |_, row| {
            let id = row.and_then(|r| m.ids.borrow().get(r.index() as usize).cloned());
            if let Some(id) = id {
                m.show(&id);
            }
        }
    });
    m.fill(select.as_deref());
    win.present();
}

impl Manager {
    /// List the installed apps again and select `select` (or the first).
    fn fill(self: &Rc<Self>, select: Option<&str>) {
        while let Some(row) = self.apps.row_at_index(0) {
            self.apps.remove(&row);
        }
        let apps = match self.engine.list() {
            Ok(a) => a,
            Err(e) => {
                self.error(&message(&e));
                Vec::new()
            }
        };
        *self.ids.borrow_mut() = apps.iter().map(|a| a.id.clone()).collect();
        if apps.is_empty() {
            let (page, _) = status_page(
                "system-software-install-symbolic",
                "No berth apps are installed",
                "Open a .berth file to install one.",
            );
            self.detail.set_child(Some(&page));
            return;
        }
        for a in &apps {
            let row = vbox(2);
            row.set_margin_top(6);
            row.set_margin_bottom(6);
            row.append(&label(&safe(&a.name), &[]));
            row.append(&label(&safe(&a.id), &["dim-label", "caption"]));
            self.apps.append(&row);
        }
        let i = select
            .and_then(|s| apps.iter().position(|a| a.id == s))
            .unwrap_or(0);
        if let Some(row) = self.apps.row_at_index(i as i32) {
            self.apps.select_row(Some(&row));
        }
    }

    fn error(&self, msg: &str) {
        self.status.set_text(msg);
        self.status.add_css_class("error");
    }

    fn say(&self, msg: &str) {
        self.status.set_text(msg);
        self.status.remove_css_class("error");
    }

    /// Draw `id`'s page again once the current signal handler is done.
    fn reshow_later(self: &Rc<Self>, id: &str) {
        let m = self.clone();
        let id = id.to_owned();
        glib::idle_add_local_once(move || m.show(&id));
    }

    fn show(self: &Rc<Self>, id: &str) {
        let (info, rows) = match (self.engine.info(id), self.engine.permission_table(id)) {
            (Ok(i), Ok(r)) => (i, r),
            (Err(e), _) | (_, Err(e)) => {
                let (page, _) = status_page(
                    "dialog-error-symbolic",
                    "Cannot read this app",
                    &message(&e),
                );
                self.detail.set_child(Some(&page));
                return;
            }
        };
        let body = vbox(16);
        body.set_margin_start(24);
        body.set_margin_end(24);
        body.set_margin_top(18);
        body.set_margin_bottom(18);
        body.append(&label(&safe(&info.name), &["title-2"]));
        body.append(&label(&safe(&info.id), &["dim-label", "monospace"]));
        body.append(&label(
            &format!(
                "Deployment {}, from {}",
                info.deployment,
                safe(&info.origin)
            ),
            &["dim-label", "caption"],
        ));

        body.append(&label("What it may do", &["title-4"]));
        if rows.is_empty() {
            body.append(&label(
                "Nothing: it asked for no permissions and runs fully sandboxed.",
                &[],
            ));
        } else {
            let list = boxed_list();
            for r in &rows {
                list.append(&self.permission(id, r));
            }
            body.append(&list);
        }

        // What the portals remember (camera, notifications, documents...),
        // when a session bus is there to ask.
        if let Ok(remembered) = self.engine.portal_permissions(id)
            && !remembered.is_empty()
        {
            body.append(&label("What the portals remember", &["title-4"]));
            let list = boxed_list();
            for e in &remembered {
                let row = label(
                    &safe(&format!(
                        "{}: {} ({})",
                        e.id,
                        e.permissions.join(", "),
                        e.table
                    )),
                    &[],
                );
                row.set_margin_start(12);
                row.set_margin_end(12);
                row.set_margin_top(10);
                row.set_margin_bottom(10);
                list.append(&row);
            }
            body.append(&list);
            let forget = button("Forget portal permissions", None);
            forget.set_tooltip_text(Some(
                "The portals ask again the next time the app wants the camera, a document...",
            ));
            forget.connect_clicked({
                let m = self.clone();
                let id = id.to_owned();
                move |_| match m.engine.reset_portal_permissions(&id) {
                    Ok(gone) => {
                        m.say(&format!("Forgot {} portal permission(s).", gone.len()));
                        m.reshow_later(&id);
                    }
                    Err(e) => m.error(&message(&e)),
                }
            });
            let line = hbox(12);
            line.append(&forget);
            body.append(&line);
        }

        // Grant something the app did not ask for.
        let add = hbox(8);
        let entry = gtk::Entry::new();
        entry.set_hexpand(true);
        entry.set_placeholder_text(Some("Grant another permission, e.g. filesystem=~/Music:ro"));
        entry.update_property(&[gtk::accessible::Property::Label("New permission")]);
        let grant = button("Grant", None);
        let do_grant = {
            let m = self.clone();
            let id = id.to_owned();
            let entry = entry.downgrade();
            move || {
                let Some(entry) = entry.upgrade() else { return };
                let text = entry.text().trim().to_owned();
                if text.is_empty() {
                    return;
                }
                match m.engine.set_override(&id, &[text], &[], false) {
                    Ok(_) => {
                        m.say("Granted; it applies the next time the app starts.");
                        m.reshow_later(&id);
                    }
                    Err(e) => m.error(&message(&e)),
                }
            }
        };
        entry.connect_activate({
            let f = do_grant.clone();
            move |_| f()
        });
        grant.connect_clicked(move |_| do_grant());
        add.append(&entry);
        add.append(&grant);
        body.append(&add);

        let actions = hbox(12);
        actions.set_margin_top(12);
        let reset = button("Reset permissions", None);
        reset.set_tooltip_text(Some("Back to exactly what the app asked for at install"));
        reset.connect_clicked({
            let m = self.clone();
            let id = id.to_owned();
            move |_| match m.engine.set_override(&id, &[], &[], true) {
                Ok(_) => {
                    m.say("Permissions reset to what the app asked for.");
                    m.reshow_later(&id);
                }
                Err(e) => m.error(&message(&e)),
            }
        });
        let rollback = button("Roll back", None);
        rollback.set_tooltip_text(Some("Go back to the previous deployment"));
        rollback.connect_clicked({
            let m = self.clone();
            let id = id.to_owned();
            move |_| {
                let notes = Notes::default();
                match m.engine.rollback(&id, &notes) {
                    Ok(r) => {
                        m.say(&format!(
                            "Rolled back from deployment {} to {}.",
                            r.from_deployment, r.to_deployment
                        ));
                        m.reshow_later(&id);
                    }
                    Err(e) => m.error(&message(&e)),
                }
            }
        });
        let uninstall = button("Uninstall", Some("destructive-action"));
        uninstall.connect_clicked({
            let m = self.clone();
            let id = id.to_owned();
            let name = safe(&info.name);
            move |_| m.confirm_uninstall(&id, &name)
        });
        actions.append(&reset);
        actions.append(&rollback);
        actions.append(&uninstall);
        body.append(&actions);
        self.detail.set_child(Some(&body));
    }

    /// One row: risk, meaning, source, and the switch.
    fn permission(self: &Rc<Self>, id: &str, r: &PermissionRow) -> gtk::Box {
        let note = match (r.requested, r.enabled) {
            (true, true) => "asked for by the app",
            (true, false) => "asked for by the app; turned off by you",
            (false, _) => "added by you",
        };
        let row = widgets::permission_row(r.risk, &r.description, &r.permission, Some(note));
        let sw = gtk::Switch::new();
        sw.set_active(r.enabled);
        sw.set_state(r.enabled);
        sw.set_valign(gtk::Align::Center);
        sw.update_property(&[gtk::accessible::Property::Label(&safe(&r.permission))]);
        sw.set_tooltip_text(Some(if r.enabled { "Allowed" } else { "Not allowed" }));
        sw.connect_state_set({
            let m = self.clone();
            let id = id.to_owned();
            let perm = r.permission.clone();
            move |_, on| {
                match m.engine.set_permission(&id, &perm, on) {
                    Ok(_) => m.say(&format!(
                        "{} {}; it applies the next time the app starts.",
                        safe(&perm),
                        if on { "allowed" } else { "turned off" }
                    )),
                    Err(e) => m.error(&message(&e)),
                }
                // What the switch shows comes from the store, read again.
                m.reshow_later(&id);
                glib::Propagation::Stop
            }
        });
        row.append(&sw);
        row
    }

    fn confirm_uninstall(self: &Rc<Self>, id: &str, name: &str) {
        let data = self.engine.data_dir(id);
        let d = adw::MessageDialog::new(
            Some(&self.win),
            Some(&format!("Uninstall {name}?")),
            Some(&format!(
                "Its menu entry goes; its data in {} is kept.",
                data.display()
            )),
        );
        d.add_response("cancel", "Cancel");
        d.add_response("uninstall", "Uninstall");
        d.set_response_appearance("uninstall", adw::ResponseAppearance::Destructive);
        d.set_default_response(Some("cancel"));
        d.set_close_response("cancel");
        let m = self.clone();
        let id = id.to_owned();
        d.connect_response(None, move |_, resp| {
            if resp != "uninstall" {
                return;
            }
            match m.engine.uninstall(&id, false, 0) {
                Ok(_) => {
                    m.say(&format!("Uninstalled {}.", safe(&id)));
                    m.fill(None);
                }
                Err(e) => m.error(&message(&e)),
            }
        });
        d.present();
    }
}
