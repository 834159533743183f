//! Install a reviewed app, uninstall it, and read and change what it may
//! do (the permission manager's two sides).

use std::time::{SystemTime, UNIX_EPOCH};

use berth_app::deploy::{Deployment, Overrides, Source, effective};
use berth_app::{Permission, Risk};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::{Engine, Frontend, Review, desktop, user_home};

/// A finished install.
#[derive(Debug, Serialize)]
pub struct Installed {
    pub id: String,
    pub name: String,
    pub deployment: u64,
    pub image: String,
    /// A menu entry was written to the exports.
    pub exported: bool,
    /// Said once per store: how the exports reach the desktop menu.
    #[serde(skip)]
    pub menu_hint: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Uninstalled {
    pub id: String,
    pub data_deleted: bool,
    /// Where the app's data stays, when it was kept.
    pub data_kept: Option<String>,
}

/// One permission in force, where it comes from and what it means.
#[derive(Debug, Clone, Serialize)]
pub struct EffectivePermission {
    pub permission: String,
    pub source: Source,
    pub description: String,
    pub risk: Risk,
}

/// One row of the permission manager: a permission the app asked for
/// (switched on or off by the user), or one the user added.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PermissionRow {
    pub permission: String,
    pub description: String,
    pub risk: Risk,
    /// The app asked for it and the user consented at install.
    pub requested: bool,
    /// In force at the next launch.
    pub enabled: bool,
}

/// An installed app, as `list` and `info` show it.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub deployment: u64,
    pub image: String,
    pub origin: String,
    pub permissions: Vec<String>,
}

impl Engine {
    /// Deploy what `review` describes. `consent` is the user's yes to its
    /// new permissions; a review that needs none installs without it.
    pub fn install(&self, review: Review, consent: bool, fe: &dyn Frontend) -> Result<Installed> {
        if review.needs_consent() && !consent {
            return Err(Error::NoConsent);
        }
        let _lock = self.lock_shared(fe)?;
        let p = &review.pending;
        // What was reviewed is what gets installed: the same previous
        // deployment, and the image still whole in the store (a gc between
        // the review and the yes may have taken it).
        let now = self.apps.current(&p.meta.id)?.map(|d| d.serial);
        if now != p.previous {
            return Err(Error::Stale(p.meta.id.clone()));
        }
        for e in std::iter::once(&p.entry).chain(&p.runtime) {
            self.store
                .entry_by_digest(&e.digest)
                .map_err(|_| Error::Stale(p.meta.id.clone()))?;
        }
        let d = self.apps.deploy(Deployment {
            serial: 0,
            app_id: p.meta.id.clone(),
            name: p.meta.name.clone(),
            image: p.entry.digest.to_string(),
            origin: review.origin.clone(),
            command: p.meta.command.clone(),
            granted: p.meta.permissions.to_string(),
            installed_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            runtime: p.runtime.as_ref().map(|r| r.digest.to_string()),
        })?;
        let exported = desktop::export(self.store.root(), &p.exports, &self.store.tmp_dir())?;
        self.after_export(fe);
        // So that the next .berth file opens in the installer; not fatal.
        if let Err(e) = desktop::register_bundle_type(self.store.root(), &self.store.tmp_dir()) {
            fe.warn(&format!(
                "warning: could not register the .berth file type: {e}"
            ));
        }
        Ok(Installed {
            id: d.app_id,
            name: d.name,
            deployment: d.serial,
            image: d.image,
            exported,
            menu_hint: if exported {
                desktop::hint_once(self.store.root())
            } else {
                None
            },
        })
    }

    /// Remove an app, its menu entry and, with `delete_data`, its data.
    /// `running`: how many instances of it run now (data waits for them).
    pub fn uninstall(&self, id: &str, delete_data: bool, running: usize) -> Result<Uninstalled> {
        self.apps.require(id)?;
        let data = self.data_dir(id);
        // The app's image stays while it runs (running instances are gc
        // roots); its data would not, so that waits until it ends.
        if delete_data && running > 0 && data.exists() {
            return Err(Error::Refused(format!(
                "{id} is running ({running} instance(s)); stop it first (`berth ps`, `berth kill`) to delete its data"
            )));
        }
        desktop::unexport(self.store.root(), id)?;
        self.apps.remove(
            id,
            &self
                .store
                .tmp_dir()
                .join(berth_image::fsutil::unique_name("trash-")),
        )?;
        let deleted = delete_data && data.exists();
        if deleted {
            berth_image::fsutil::remove_tree(&data)?;
        }
        Ok(Uninstalled {
            id: id.to_owned(),
            data_deleted: deleted,
            data_kept: (!deleted && data.exists()).then(|| data.display().to_string()),
        })
    }

    /// Installed apps, with their effective permissions.
    pub fn list(&self) -> Result<Vec<AppInfo>> {
        self.apps.list().iter().map(|d| self.info_of(d)).collect()
    }

    pub fn info(&self, id: &str) -> Result<AppInfo> {
        self.info_of(&self.apps.require(id)?)
    }

    fn info_of(&self, d: &Deployment) -> Result<AppInfo> {
        let eff = effective(&d.granted()?, &self.apps.overrides(&d.app_id)?)?;
        Ok(AppInfo {
            id: d.app_id.clone(),
            name: d.name.clone(),
            deployment: d.serial,
            image: d.image.clone(),
            origin: d.origin.clone(),
            permissions: eff.iter().map(|(p, _)| p.to_string()).collect(),
        })
    }

    /// What the app may do now: its consented permissions with the user's
    /// overrides applied, each with its source.
    pub fn permissions(&self, id: &str) -> Result<Vec<EffectivePermission>> {
        let d = self.apps.require(id)?;
        let eff = effective(&d.granted()?, &self.apps.overrides(id)?)?;
        let home = user_home();
        Ok(eff
            .iter()
            .map(|(p, s)| {
                let (description, risk) = p.describe(&home);
                EffectivePermission {
                    permission: p.to_string(),
                    source: *s,
                    description,
                    risk,
                }
            })
            .collect())
    }

    /// The permission manager's view: every permission the app asked for,
    /// on or off, then the ones the user added.
    pub fn permission_table(&self, id: &str) -> Result<Vec<PermissionRow>> {
        let d = self.apps.require(id)?;
        let granted = d.granted()?;
        let o = self.apps.overrides(id)?;
        let eff = effective(&granted, &o)?;
        let home = user_home();
        let row = |p: &Permission, requested: bool| {
            let (description, risk) = p.describe(&home);
            PermissionRow {
                permission: p.to_string(),
                description,
                risk,
                requested,
                enabled: eff.iter().any(|(q, _)| q == p),
            }
        };
        let mut rows: Vec<PermissionRow> = granted.iter().map(|p| row(p, true)).collect();
        rows.extend(
            eff.iter()
                .filter(|(_, s)| *s == Source::Override)
                .map(|(p, _)| row(p, false)),
        );
        Ok(rows)
    }

    /// Switch one permission on or off, as a toggle in the permission
    /// manager does. Turning off something the user added removes it;
    /// turning off something the app asked for records a revoke.
    pub fn set_permission(
        &self,
        id: &str,
        permission: &str,
        on: bool,
    ) -> Result<Vec<PermissionRow>> {
        let d = self.apps.require(id)?;
        let p = Permission::parse(permission)?;
        let requested = d.granted()?.iter().any(|q| q == &p);
        let text = p.to_string();
        self.apps.update_overrides(id, |o| {
            o.grant.retain(|g| g != &text);
            o.revoke.retain(|r| r != &text);
            match (requested, on) {
                (true, false) => o.revoke.push(text),
                (false, true) => o.grant.push(text),
                _ => {}
            }
        })?;
        self.permission_table(id)
    }

    /// Grant and revoke permissions on top of what the image asked for
    /// (the user's overrides), or `reset` them all. Every value is parsed
    /// and stored in its one canonical form; nothing is written if any
    /// does not parse.
    pub fn set_override(
        &self,
        id: &str,
        grant: &[String],
        revoke: &[String],
        reset: bool,
    ) -> Result<Vec<EffectivePermission>> {
        self.apps.require(id)?;
        if reset {
            self.apps
                .update_overrides(id, |o| *o = Overrides::default())?;
            return self.permissions(id);
        }
        if grant.is_empty() && revoke.is_empty() {
            return Err(Error::Invalid(
                "nothing to change: give --grant PERMISSION, --revoke PERMISSION or --reset".into(),
            ));
        }
        // Every value parses before anything is written.
        let grant: Vec<String> = grant
            .iter()
            .map(|g| Permission::parse(g).map(|p| p.to_string()))
            .collect::<std::result::Result<_, _>>()?;
        let revoke: Vec<String> = revoke
            .iter()
            .map(|r| Permission::parse(r).map(|p| p.to_string()))
            .collect::<std::result::Result<_, _>>()?;
        self.apps.update_overrides(id, |o| {
            for p in grant {
                o.revoke.retain(|r| r != &p);
                if !o.grant.contains(&p) {
                    o.grant.push(p);
                }
            }
            for p in revoke {
                o.grant.retain(|g| g != &p);
                if !o.revoke.contains(&p) {
                    o.revoke.push(p);
                }
            }
        })?;
        self.permissions(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn engine_with_app(granted: &str) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(dir.path()).unwrap();
        e.apps
            .deploy(Deployment {
                serial: 0,
                app_id: "org.example.T".into(),
                name: "T".into(),
                image: "sha256:00".into(),
                origin: "test".into(),
                command: vec!["/bin/true".into()],
                granted: granted.into(),
                installed_unix: 0,
                runtime: None,
            })
            .unwrap();
        (dir, e)
    }

    fn state(rows: &[PermissionRow]) -> Vec<(&str, bool, bool)> {
        rows.iter()
            .map(|r| (r.permission.as_str(), r.requested, r.enabled))
            .collect()
    }

    #[test]
    fn switches_write_the_same_overrides_as_the_cli() {
        let (_d, e) = engine_with_app("share=network;socket=wayland");
        let id = "org.example.T";
        let rows = e.permission_table(id).unwrap();
        assert_eq!(
            state(&rows),
            [
                ("share=network", true, true),
                ("socket=wayland", true, true)
            ]
        );
        // Off: a revoke, as `override --revoke` writes it.
        let rows = e.set_permission(id, "share=network", false).unwrap();
        assert_eq!(state(&rows)[0], ("share=network", true, false));
        assert_eq!(e.apps.overrides(id).unwrap().revoke, ["share=network"]);
        assert!(
            !e.info(id)
                .unwrap()
                .permissions
                .contains(&"share=network".into())
        );
        // On again: the revoke goes, nothing is granted twice.
        e.set_permission(id, "share=network", true).unwrap();
        let o = e.apps.overrides(id).unwrap();
        assert!(o.revoke.is_empty() && o.grant.is_empty());
        // A permission the app never asked for, spelled loosely, is
        // stored canonically and listed after the requested ones.
        let rows = e
            .set_permission(id, "filesystem=~/Music/:ro", true)
            .unwrap();
        let added = rows.last().unwrap();
        assert_eq!((added.requested, added.enabled), (false, true));
        assert_eq!(
            e.apps.overrides(id).unwrap().grant,
            vec![added.permission.clone()]
        );
        // Off again: removed, not revoked.
        let rows = e
            .set_permission(id, &added.permission.clone(), false)
            .unwrap();
        assert_eq!(rows.len(), 2);
        let o = e.apps.overrides(id).unwrap();
        assert!(o.revoke.is_empty() && o.grant.is_empty());
        // Nonsense changes nothing.
        assert!(e.set_permission(id, "share=everything", true).is_err());
        assert!(e.apps.overrides(id).unwrap().grant.is_empty());
        assert!(
            e.set_permission("org.example.Nope", "share=network", true)
                .is_err()
        );
    }

    #[test]
    fn concurrent_changes_are_all_kept() {
        let (dir, e) = engine_with_app("share=network");
        let id = "org.example.T";
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let root = dir.path().to_owned();
                std::thread::spawn(move || {
                    let e = Engine::open(&root).unwrap();
                    e.set_override(id, &[format!("filesystem=~/d{i}:ro")], &[], false)
                        .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(e.apps.overrides(id).unwrap().grant.len(), 12);
    }
}
