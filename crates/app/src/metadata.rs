//! App metadata from image config labels (`org.berth.app.*`), so a
//! Dockerfile author needs only `LABEL` lines. See docs/app-labels.md.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::flatpak_image::{self, FlatpakApp, FlatpakError};
use crate::permissions::{ParseError, PermissionSet};

pub const LABEL_ID: &str = "org.berth.app.id";
pub const LABEL_NAME: &str = "org.berth.app.name";
pub const LABEL_COMMAND: &str = "org.berth.app.command";
pub const LABEL_PERMISSIONS: &str = "org.berth.app.permissions";
pub const LABEL_DESKTOP: &str = "org.berth.app.desktop";
pub const LABEL_ICON: &str = "org.berth.app.icon";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    #[error(
        "label {LABEL_ID} = {0:?} is not an app ID like org.example.App (3 or more dot-separated parts of letters, digits, _ and -)"
    )]
    BadId(String),
    #[error("label {LABEL_COMMAND}: {0}")]
    BadCommand(String),
    #[error("label {LABEL_PERMISSIONS}: {0}")]
    BadPermissions(#[from] ParseError),
    #[error("label {LABEL_DESKTOP}: {0}")]
    BadDesktop(String),
    #[error("label {LABEL_ICON} = {0:?} must be an absolute path inside the image")]
    BadIcon(String),
    #[error(transparent)]
    Flatpak(#[from] FlatpakError),
    #[error(
        "the image is labelled both as a berth app ({LABEL_ID}) and as a Flatpak ({}); it must be one or the other",
        flatpak_image::LABEL_REF
    )]
    BothKinds,
    #[error("label {0} holds control or invisible formatting characters: {1:?}")]
    ControlChars(String, String),
    #[error(
        "app ID {0:?} is in a namespace that belongs to the desktop or to berth ({1}); an app may not take it"
    )]
    ReservedId(String, String),
}

/// ID namespaces an app may not take: its desktop entry, D-Bus name and
/// icon would stand in for the desktop's own services.
pub const RESERVED_ID_PREFIXES: &[&str] = &[
    "org.freedesktop.",
    "org.gtk.",
    "org.gnome.Shell",
    "org.gnome.SessionManager",
    "org.gnome.Settings",
    "org.gnome.SettingsDaemon",
    "org.gnome.keyring",
    "org.gnome.ScreenSaver",
    "org.gnome.Mutter",
    "org.kde.KWin",
    "org.kde.plasmashell",
    "org.kde.kded",
    "org.kde.klauncher",
    "org.kde.kwalletd",
    "org.kde.ksmserver",
    "org.kde.Solid",
    "org.a11y.",
    "org.berth.Installer",
    "org.berth.Permissions",
    "org.berth.Bundle",
    "org.berth.Berth",
    "ca.desrt.dconf",
];

/// The reserved namespace `id` falls in, if any (a prefix ending in `.`
/// holds everything under it; otherwise the name itself and its children).
pub fn reserved_namespace(id: &str) -> Option<&'static str> {
    let lower = id.to_ascii_lowercase();
    RESERVED_ID_PREFIXES.iter().copied().find(|p| {
        let p = p.to_ascii_lowercase();
        if p.ends_with('.') {
            lower.starts_with(&p)
        } else {
            lower == p || lower.starts_with(&format!("{p}."))
        }
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppMeta {
    pub id: String,
    pub name: String,
    /// Empty: the image's entrypoint and cmd.
    pub command: Vec<String>,
    pub permissions: PermissionSet,
    pub desktop: Option<String>,
    pub icon: Option<String>,
    /// A Flatpak OCI image: its ref, runtime and what berth left out.
    pub flatpak: Option<FlatpakApp>,
}

/// Flatpak's rules for application IDs.
pub fn valid_app_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('.').collect();
    id.len() <= 255
        && parts.len() >= 3
        && parts.iter().all(|p| {
            p.as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// An install key: an app ID, or `ID@CHANNEL` for a second copy installed
/// with `install --as CHANNEL` (CHANNEL: 1-32 of a-z, 0-9, -).
pub fn valid_install_key(key: &str) -> bool {
    match key.split_once('@') {
        None => valid_app_id(key),
        Some((id, ch)) => {
            valid_app_id(id)
                && (1..=32).contains(&ch.len())
                && ch
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
    }
}

/// The app ID in an install key.
pub fn app_id_of(key: &str) -> &str {
    key.split_once('@').map_or(key, |(id, _)| id)
}

impl AppMeta {
    /// A Flatpak app image (`org.flatpak.ref` = `app/...`): its name,
    /// desktop entry and icon are files in the image, read at review.
    fn from_flatpak_labels(
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<AppMeta>, MetaError> {
        let Some(app) = flatpak_image::parse_app(
            labels.get(flatpak_image::LABEL_REF).map(String::as_str),
            labels
                .get(flatpak_image::LABEL_METADATA)
                .map(String::as_str),
        )?
        else {
            return Ok(None);
        };
        let id = app.app.id.clone();
        if let Some(ns) = reserved_namespace(&id) {
            return Err(MetaError::ReservedId(id, ns.to_owned()));
        }
        Ok(Some(AppMeta {
            name: id.clone(),
            id,
            command: vec![app.command.clone()],
            permissions: app.permissions.clone(),
            desktop: None,
            icon: None,
            flatpak: Some(app),
        }))
    }

    /// `Ok(None)`: the image declares no app (no `org.berth.app.id`).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Option<AppMeta>, MetaError> {
        let Some(id) = labels.get(LABEL_ID).map(|s| s.trim().to_owned()) else {
            return Self::from_flatpak_labels(labels);
        };
        // One image, one way to run it: a berth app's layers stack at /,
        // a Flatpak's are mounted at /app on a runtime.
        if labels.contains_key(flatpak_image::LABEL_REF) {
            return Err(MetaError::BothKinds);
        }
        if !valid_app_id(&id) {
            return Err(MetaError::BadId(id));
        }
        if let Some(ns) = reserved_namespace(&id) {
            return Err(MetaError::ReservedId(id, ns.to_owned()));
        }
        // No label reaches a review, a menu or a terminal with characters
        // that would rewrite what is shown. The desktop entry is multi-line
        // and its values are checked when it is generated.
        for (k, v) in labels
            .iter()
            .filter(|(k, _)| k.starts_with("org.berth.app."))
        {
            let multiline = k == LABEL_DESKTOP;
            if v.chars().any(|c| {
                crate::text::is_unsafe(c) && !(multiline && (c == '\n' || c == '\t' || c == '\r'))
            }) {
                return Err(MetaError::ControlChars(k.clone(), v.clone()));
            }
        }
        let command = match labels.get(LABEL_COMMAND).map(|s| s.trim()) {
            None | Some("") => Vec::new(),
            // A JSON array for arguments with spaces, else words.
            Some(c) if c.starts_with('[') => serde_json::from_str::<Vec<String>>(c)
                .map_err(|e| MetaError::BadCommand(format!("not a JSON array of strings: {e}")))?,
            Some(c) => c.split_whitespace().map(str::to_owned).collect(),
        };
        if command
            .first()
            .is_some_and(|c| c.is_empty() || c.contains('\0'))
        {
            return Err(MetaError::BadCommand("empty program name".into()));
        }
        let permissions =
            PermissionSet::parse_list(labels.get(LABEL_PERMISSIONS).map_or("", String::as_str))?;
        // LABEL values usually carry newlines as `\n` escapes.
        let desktop = labels
            .get(LABEL_DESKTOP)
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.replace("\\n", "\n"));
        if desktop
            .as_ref()
            .is_some_and(|d| !d.lines().any(|l| l.trim() == "[Desktop Entry]"))
        {
            return Err(MetaError::BadDesktop(
                "missing the [Desktop Entry] group".into(),
            ));
        }
        let icon = labels
            .get(LABEL_ICON)
            .filter(|i| !i.trim().is_empty())
            .cloned();
        if let Some(i) = icon
            .as_ref()
            .filter(|i| !i.starts_with('/') || i.split('/').any(|c| c == ".."))
        {
            return Err(MetaError::BadIcon(i.clone()));
        }
        let name = labels
            .get(LABEL_NAME)
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.clone());
        Ok(Some(AppMeta {
            id,
            name,
            command,
            permissions,
            desktop,
            icon,
            flatpak: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_all_labels() {
        let m = AppMeta::from_labels(&labels(&[
            (LABEL_ID, "org.example.Viewer"),
            (LABEL_NAME, "Viewer"),
            (LABEL_COMMAND, r#"["/usr/bin/viewer", "--new window"]"#),
            (
                LABEL_PERMISSIONS,
                "socket=wayland;filesystem=xdg-pictures:ro",
            ),
            (
                LABEL_DESKTOP,
                "[Desktop Entry]\nName=Viewer\nExec=viewer %f\n",
            ),
            (
                LABEL_ICON,
                "/usr/share/icons/hicolor/128x128/apps/org.example.Viewer.png",
            ),
        ]))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("an app"));
        assert_eq!(m.command, vec!["/usr/bin/viewer", "--new window"]);
        assert_eq!(m.permissions.0.len(), 2);
        assert_eq!(m.name, "Viewer");
    }

    #[test]
    fn plain_images_are_not_apps_and_defaults_apply() {
        assert_eq!(AppMeta::from_labels(&labels(&[("other", "x")])), Ok(None));
        let m = AppMeta::from_labels(&labels(&[
            (LABEL_ID, "org.berth.Demo"),
            (LABEL_COMMAND, "/bin/demo --flag"),
        ]))
        .ok()
        .flatten();
        let m = m.unwrap_or_else(|| panic!("an app"));
        assert_eq!(m.name, "org.berth.Demo");
        assert_eq!(m.command, vec!["/bin/demo", "--flag"]);
        assert!(m.permissions.0.is_empty());
    }

    #[test]
    fn desktop_entries_may_use_escaped_newlines() {
        let m = AppMeta::from_labels(&labels(&[
            (LABEL_ID, "org.example.App"),
            (LABEL_DESKTOP, "[Desktop Entry]\\nName=App\\nExec=app\\n"),
        ]));
        let d = m.ok().flatten().and_then(|m| m.desktop).unwrap_or_default();
        assert_eq!(
            d.lines().collect::<Vec<_>>(),
            vec!["[Desktop Entry]", "Name=App", "Exec=app"]
        );
    }

    #[test]
    fn refuses_bad_labels() {
        for (k, v) in [
            (LABEL_ID, "demo"),
            (LABEL_ID, "org.example"),
            (LABEL_ID, "org.1example.App"),
            (LABEL_ID, "org.example.App/../x"),
            (LABEL_PERMISSIONS, "socket=everything"),
            (LABEL_COMMAND, "[not json"),
            (LABEL_DESKTOP, "Name=x"),
            (LABEL_ICON, "relative.png"),
            (LABEL_ICON, "/usr/../../etc/shadow"),
            (LABEL_NAME, "Fine\nExec=sh -c evil"),
            (LABEL_NAME, "Fine\u{1b}[1A\u{1b}[2K"),
            (LABEL_NAME, "\u{202e}gpj.exe"),
            (LABEL_COMMAND, "/bin/app \u{7}"),
            (LABEL_PERMISSIONS, "env=A=\u{1b}]0;title\u{7}"),
        ] {
            let mut l = labels(&[(LABEL_ID, "org.example.App")]);
            l.insert(k.to_owned(), v.to_owned());
            assert!(
                AppMeta::from_labels(&l).is_err(),
                "{k}={v:?} should be refused"
            );
        }
    }

    #[test]
    fn desktop_namespaces_are_reserved() {
        for id in [
            "org.freedesktop.DBus",
            "org.freedesktop.portal.Desktop",
            "org.gnome.Shell",
            "org.gnome.Shell.Extensions",
            "org.kde.KWin",
            "org.gtk.Settings",
            "org.berth.Installer",
            "org.berth.Permissions",
            "ORG.FREEDESKTOP.Notifications",
        ] {
            let l = labels(&[(LABEL_ID, id)]);
            assert!(
                matches!(AppMeta::from_labels(&l), Err(MetaError::ReservedId(..))),
                "{id}"
            );
        }
        assert_eq!(reserved_namespace("org.gnome.ShellX"), None);
        assert_eq!(reserved_namespace("org.berth.Demo"), None);
    }
}
