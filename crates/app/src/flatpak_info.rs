//! The app's identity for xdg-desktop-portal: a `/.flatpak-info` in
//! Flatpak's key-file format, bound read-only at the root of the app's
//! sandbox and of its bus proxy's. xdg-desktop-portal (1.16, Debian 12)
//! knows a caller by `/proc/PID/root/.flatpak-info` of the D-Bus peer; with
//! it, FileChooser hands out document-portal paths and the permission
//! store keys its entries by the app ID. Pure: values in, text out.

use crate::permissions::Permission;

/// What the file says.
#[derive(Clone, Debug)]
pub struct Identity<'a> {
    pub app_id: &'a str,
    /// The image the app runs from (`runtime=`; berth apps carry their
    /// runtime in their layers).
    pub runtime: &'a str,
    pub instance_id: &'a str,
    /// The app's own files on the host (its top layer).
    pub app_path: &'a str,
    pub permissions: &'a [Permission],
}

/// A key-file value: GLib's escapes for backslash and control characters,
/// and a leading space kept.
fn value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' ' if i == 0 => out.push_str("\\s"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A key-file list: each element escaped, `;` inside one escaped too.
fn list(items: &[String]) -> String {
    let mut out = String::new();
    for i in items {
        out.push_str(&value(i).replace(';', "\\;"));
        out.push(';');
    }
    out
}

/// The permissions in Flatpak's `[Context]` words (berth's are Flatpak's),
/// and the bus names for `[Session Bus Policy]`.
/// `[Context]` keys with their lists, and `[Session Bus Policy]` entries.
type Context = (
    Vec<(&'static str, Vec<String>)>,
    Vec<(String, &'static str)>,
);

fn context(perms: &[Permission]) -> Context {
    let (mut shared, mut sockets, mut devices, mut fs, mut features, mut persistent) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut bus = Vec::new();
    for p in perms {
        match p {
            Permission::Share(s) => {
                // Flatpak has no host-network or lan of its own: both are
                // network there.
                let s = if matches!(s.as_str(), "host-network" | "lan") {
                    "network"
                } else {
                    s.as_str()
                };
                if !shared.iter().any(|x| x == s) {
                    shared.push(s.to_owned());
                }
            }
            Permission::Socket(s) => sockets.push(s.as_str().to_owned()),
            Permission::Device(d) => devices.push(d.as_str().to_owned()),
            // Flatpak's words are berth's: `PLACE[:ro|:create]`.
            Permission::Filesystem(..) => fs.push(
                p.to_string()
                    .strip_prefix("filesystem=")
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Permission::Devel => features.push("devel".to_owned()),
            Permission::Multiarch => features.push("multiarch".to_owned()),
            Permission::Persist(d) => persistent.push(d.clone()),
            Permission::TalkName(n) => bus.push((n.clone(), "talk")),
            Permission::OwnName(n) => bus.push((n.clone(), "own")),
            Permission::Env(..)
            | Permission::Memory(_)
            | Permission::CpuWeight(_)
            | Permission::IoWeight(_)
            | Permission::IoRead(_)
            | Permission::Dns(_)
            | Permission::IoWrite(_)
            | Permission::Pids(_)
            | Permission::Edit(_) => {}
        }
    }
    let keys = [
        ("shared", shared),
        ("sockets", sockets),
        ("devices", devices),
        ("filesystems", fs),
        ("features", features),
        ("persistent", persistent),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    (keys, bus)
}

/// The file's text.
pub fn render(id: &Identity<'_>) -> String {
    let mut out = format!(
        "[Application]\nname={}\nruntime={}\n\n[Instance]\ninstance-id={}\napp-path={}\n\
         session-bus-proxy=true\nsystem-bus-proxy=false\n",
        value(id.app_id),
        value(id.runtime),
        value(id.instance_id),
        value(id.app_path),
    );
    let (keys, bus) = context(id.permissions);
    out.push_str("\n[Context]\n");
    for (k, v) in keys {
        out.push_str(&format!("{k}={}\n", list(&v)));
    }
    if !bus.is_empty() {
        out.push_str("\n[Session Bus Policy]\n");
        for (name, policy) in bus {
            // Bus names are checked when parsed: no `=`, `[` or spaces.
            out.push_str(&format!("{}={policy}\n", value(&name)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PermissionSet;
    use crate::permissions::{Access, Place};

    fn perms(s: &str) -> Vec<Permission> {
        PermissionSet::parse_list(s)
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }

    #[test]
    fn flatpak_words() {
        let p = perms(
            "share=network;share=host-network;socket=x11;device=dri;filesystem=~/Music:ro;\
             filesystem=xdg-download;allow=devel;talk-name=org.freedesktop.Notifications;\
             own-name=org.example.App.Helper;memory=1G",
        );
        let t = render(&Identity {
            app_id: "org.example.App",
            runtime: "example/app:1",
            instance_id: "0123abcd",
            app_path: "/s/layers/abc",
            permissions: &p,
        });
        assert!(t.starts_with("[Application]\nname=org.example.App\nruntime=example/app:1\n"));
        assert!(t.contains("[Instance]\ninstance-id=0123abcd\napp-path=/s/layers/abc\n"));
        assert!(t.contains("\nshared=network;\n"), "{t}");
        assert!(t.contains("\nsockets=x11;\n"));
        assert!(t.contains("\ndevices=dri;\n"));
        assert!(
            t.contains("\nfilesystems=~/Music:ro;xdg-download;\n"),
            "{t}"
        );
        assert!(t.contains("\nfeatures=devel;\n"));
        assert!(t.contains(
            "[Session Bus Policy]\norg.freedesktop.Notifications=talk\norg.example.App.Helper=own\n"
        ));
        assert!(!t.contains("memory"));
    }

    #[test]
    fn values_stay_on_their_line() {
        let p = vec![Permission::Filesystem(
            Place::Absolute("/opt/a;b".into()),
            Access::ReadWrite,
        )];
        let t = render(&Identity {
            app_id: "org.example.App",
            runtime: " x\ny\\z",
            instance_id: "1",
            app_path: "/p",
            permissions: &p,
        });
        assert!(t.contains("runtime=\\sx\\ny\\\\z\n"), "{t}");
        assert!(t.contains("filesystems=/opt/a\\;b;\n"), "{t}");
        assert_eq!(t.lines().filter(|l| l.starts_with("runtime")).count(), 1);
    }
}
