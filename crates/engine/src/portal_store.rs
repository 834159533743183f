//! What the portals remember for an app: the entries xdg-desktop-portal's
//! permission store (`org.freedesktop.impl.portal.PermissionStore` on the
//! session bus) holds for its ID, as `flatpak permission-show` lists them,
//! and removing them (`flatpak permission-reset`). The store has no list of
//! its tables: these are the ones xdg-desktop-portal and the document
//! portal write.

use serde::Serialize;

use crate::Engine;
use crate::error::{Error, Result};

const DEST: &str = "org.freedesktop.impl.portal.PermissionStore";
const PATH: &str = "/org/freedesktop/impl/portal/PermissionStore";
const IFACE: &str = "org.freedesktop.impl.portal.PermissionStore";

/// Tables xdg-desktop-portal 1.16 and xdg-document-portal keep.
pub const TABLES: &[&str] = &[
    "background",
    "devices",
    "documents",
    "gamemode",
    "inhibit",
    "location",
    "notifications",
    "realtime",
    "screenshot",
    "wallpaper",
];

/// One entry: in `table`, for the resource `id` (a device such as
/// `camera`, a document ID...), what the app was allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortalPermission {
    pub table: String,
    pub id: String,
    pub permissions: Vec<String>,
}

type Entries = std::collections::HashMap<String, Vec<String>>;

fn bus() -> Result<zbus::blocking::Connection> {
    zbus::blocking::Connection::session().map_err(|e| {
        Error::Invalid(format!(
            "no session bus to ask the portals' permission store: {e}"
        ))
    })
}

fn call<B>(conn: &zbus::blocking::Connection, method: &str, body: &B) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    conn.call_method(Some(DEST), PATH, Some(IFACE), method, body)
}

impl Engine {
    /// What the portals' permission store holds for the installed app `id`.
    pub fn portal_permissions(&self, id: &str) -> Result<Vec<PortalPermission>> {
        let app = berth_app::metadata::app_id_of(&self.apps.require(id)?.app_id).to_owned();
        let conn = bus()?;
        let mut out = Vec::new();
        for table in TABLES {
            // A table nothing has written to yet does not exist.
            let Ok(reply) = call(&conn, "List", &(*table,)) else {
                continue;
            };
            let ids: Vec<String> = reply.body().deserialize().unwrap_or_default();
            for rid in ids {
                let Ok(reply) = call(&conn, "Lookup", &(*table, rid.as_str())) else {
                    continue;
                };
                let Ok((entries, _data)): std::result::Result<
                    (Entries, zbus::zvariant::OwnedValue),
                    _,
                > = reply.body().deserialize() else {
                    continue;
                };
                if let Some(perms) = entries.get(&app) {
                    out.push(PortalPermission {
                        table: (*table).to_owned(),
                        id: rid,
                        permissions: perms.clone(),
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.table, &a.id).cmp(&(&b.table, &b.id)));
        Ok(out)
    }

    /// Remove every entry the permission store holds for the app; returns
    /// what was removed.
    pub fn reset_portal_permissions(&self, id: &str) -> Result<Vec<PortalPermission>> {
        let gone = self.portal_permissions(id)?;
        let app = berth_app::metadata::app_id_of(&self.apps.require(id)?.app_id).to_owned();
        let conn = bus()?;
        for p in &gone {
            call(
                &conn,
                "DeletePermission",
                &(p.table.as_str(), p.id.as_str(), app.as_str()),
            )
            .map_err(|e| {
                Error::Invalid(format!(
                    "the permission store kept {}/{}: {e}",
                    p.table, p.id
                ))
            })?;
        }
        Ok(gone)
    }
}
