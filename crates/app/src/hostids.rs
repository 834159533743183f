//! Names the host already uses. An app whose ID matches a host desktop
//! file, D-Bus service or installed Flatpak would stand in for it in the
//! menu, in file associations and on the bus, so install refuses it.

use std::path::{Path, PathBuf};

/// The places to look, from the environment the way the XDG base
/// directory spec defines them.
#[derive(Clone, Debug, Default)]
pub struct HostDirs {
    /// `$XDG_DATA_HOME` and `$XDG_DATA_DIRS`, in order.
    pub data_dirs: Vec<PathBuf>,
    /// Flatpak installations (`/var/lib/flatpak`, `~/.local/share/flatpak`).
    pub flatpak_dirs: Vec<PathBuf>,
    /// berth's own exports: its entries are not a conflict (a reinstall).
    pub own_exports: PathBuf,
}

impl HostDirs {
    pub fn from_env(home: &Path, own_exports: PathBuf) -> HostDirs {
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".local/share"));
        let dirs = std::env::var("XDG_DATA_DIRS")
            .ok()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
        let mut data_dirs = vec![data_home.clone()];
        data_dirs.extend(
            dirs.split(':')
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
        );
        HostDirs {
            data_dirs,
            flatpak_dirs: vec!["/var/lib/flatpak".into(), data_home.join("flatpak")],
            own_exports,
        }
    }

    /// What already uses `id`, in words, if anything does.
    pub fn conflict(&self, id: &str) -> Option<String> {
        let lower = id.to_ascii_lowercase();
        for d in &self.data_dirs {
            if d == &self.own_exports || d.starts_with(&self.own_exports) {
                continue;
            }
            let apps = d.join("applications");
            // Desktop IDs are case-sensitive, but a case-twin still misleads.
            if let Ok(rd) = std::fs::read_dir(&apps) {
                for e in rd.flatten() {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    if n.strip_suffix(".desktop")
                        .is_some_and(|s| s.to_ascii_lowercase() == lower)
                    {
                        return Some(format!("the desktop file {}", apps.join(&*n).display()));
                    }
                }
            }
            let svc = d.join("dbus-1/services").join(format!("{id}.service"));
            if svc.exists() {
                return Some(format!("the D-Bus service {}", svc.display()));
            }
        }
        for f in &self.flatpak_dirs {
            let app = f.join("app").join(id);
            if app.exists() {
                return Some(format!("the installed Flatpak {}", app.display()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_host_entries_services_and_flatpaks() {
        let t = std::env::temp_dir().join(format!("berth-hostids-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let mk = |p: &str| {
            let p = t.join(p);
            let _ = std::fs::create_dir_all(p.parent().unwrap_or(&t));
            let _ = std::fs::write(&p, b"");
        };
        mk("share/applications/org.example.Host.desktop");
        mk("share/dbus-1/services/org.example.Svc.service");
        mk("own/applications/org.example.Mine.desktop");
        let _ = std::fs::create_dir_all(t.join("flatpak/app/org.example.Flat"));
        let h = HostDirs {
            data_dirs: vec![t.join("share"), t.join("own")],
            flatpak_dirs: vec![t.join("flatpak")],
            own_exports: t.join("own"),
        };
        assert!(h.conflict("org.example.Host").is_some());
        assert!(h.conflict("org.Example.host").is_some());
        assert!(h.conflict("org.example.Svc").is_some());
        assert!(h.conflict("org.example.Flat").is_some());
        assert_eq!(h.conflict("org.example.Mine"), None);
        assert_eq!(h.conflict("org.example.New"), None);
        let _ = std::fs::remove_dir_all(&t);
    }
}
