//! Flatpak OCI images (`flatpak build-bundle --oci`, or a registry of
//! Flatpaks): the `org.flatpak.ref` and `org.flatpak.metadata` labels read
//! into an app, its runtime's ref and berth permissions.
//!
//! The metadata's `[Context]`, `[Session Bus Policy]` and `[Environment]`
//! become berth permissions in their one canonical form, so the review,
//! the stored grant and the run are berth's as for any app. What berth
//! has no permission for (a PC/SC socket, `see` on the bus, the system
//! bus policy, `host-os`...) is not granted, and listed as left out.

use std::fmt;

use crate::keyfile;
use crate::metadata::valid_app_id;
use crate::permissions::{MAX_PERMISSIONS, Permission, PermissionSet};

pub const LABEL_REF: &str = "org.flatpak.ref";
pub const LABEL_METADATA: &str = "org.flatpak.metadata";

/// Metadata larger than this is refused: real ones are a few hundred
/// bytes, and it is read at every launch.
pub const MAX_METADATA: usize = 64 * 1024;

/// Items listed as left out at most; the rest are counted.
const MAX_LEFT_OUT: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlatpakError {
    #[error(
        "label {LABEL_REF} = {0:?} is not a Flatpak ref like app/org.example.App/x86_64/stable"
    )]
    BadRef(String),
    #[error("label {LABEL_METADATA}: {0}")]
    BadMetadata(String),
}

fn bad(s: impl Into<String>) -> FlatpakError {
    FlatpakError::BadMetadata(s.into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    App,
    Runtime,
}

/// `KIND/ID/ARCH/BRANCH`, Flatpak's name for an app or a runtime.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FlatpakRef {
    pub kind: RefKind,
    pub id: String,
    pub arch: String,
    pub branch: String,
}

fn valid_part(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b) || extra.contains(&b))
}

impl FlatpakRef {
    /// A full ref, `app/...` or `runtime/...`.
    pub fn parse(text: &str) -> Result<FlatpakRef, FlatpakError> {
        let t = text.trim();
        let (kind, rest) = match t.split_once('/') {
            Some(("app", r)) => (RefKind::App, r),
            Some(("runtime", r)) => (RefKind::Runtime, r),
            _ => return Err(FlatpakError::BadRef(text.to_owned())),
        };
        Self::parse_partial(kind, rest).ok_or_else(|| FlatpakError::BadRef(text.to_owned()))
    }

    /// `ID/ARCH/BRANCH` of a known kind (the metadata's `runtime=`).
    pub fn parse_partial(kind: RefKind, text: &str) -> Option<FlatpakRef> {
        let mut it = text.split('/');
        let (id, arch, branch) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some()
            || !valid_app_id(id)
            || !valid_part(arch, b"")
            || arch.contains('.')
            || !valid_part(branch, b"")
            || branch.starts_with(['.', '-'])
        {
            return None;
        }
        Some(FlatpakRef {
            kind,
            id: id.to_owned(),
            arch: arch.to_owned(),
            branch: branch.to_owned(),
        })
    }

    /// Flatpak's architecture name for this machine's.
    pub fn host_arch() -> &'static str {
        match std::env::consts::ARCH {
            "x86_64" => "x86_64",
            "aarch64" => "aarch64",
            "x86" => "i386",
            "arm" => "arm",
            other => other,
        }
    }
}

impl fmt::Display for FlatpakRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RefKind::App => "app",
            RefKind::Runtime => "runtime",
        };
        write!(f, "{kind}/{}/{}/{}", self.id, self.arch, self.branch)
    }
}

/// A Flatpak app, as its image's labels declare it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FlatpakApp {
    pub app: FlatpakRef,
    pub runtime: FlatpakRef,
    /// `[Application] command=`, looked up in `/app/bin:/usr/bin`.
    pub command: String,
    pub permissions: PermissionSet,
    /// What the metadata asks for that berth does not grant, in the
    /// metadata's own words.
    pub left_out: Vec<String>,
}

/// Key names in Flatpak's metadata: bus names (with `*`), variables.
fn metadata_key(k: &str) -> bool {
    k.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b))
}

/// The runtime ref an image declares itself to be, if it is a Flatpak
/// runtime (`org.flatpak.ref` = `runtime/...`).
pub fn runtime_ref_of(ref_label: Option<&str>) -> Option<FlatpakRef> {
    FlatpakRef::parse(ref_label?)
        .ok()
        .filter(|r| r.kind == RefKind::Runtime)
}

/// The app an image's labels declare. `Ok(None)`: not a Flatpak app.
pub fn parse_app(
    ref_label: Option<&str>,
    metadata: Option<&str>,
) -> Result<Option<FlatpakApp>, FlatpakError> {
    let Some(r) = ref_label else {
        return Ok(None);
    };
    let app = FlatpakRef::parse(r)?;
    if app.kind != RefKind::App {
        return Ok(None);
    }
    let text =
        metadata.ok_or_else(|| bad("missing: the image has a Flatpak ref but no metadata"))?;
    if text.len() > MAX_METADATA {
        return Err(bad(format!(
            "{} bytes; berth reads at most {MAX_METADATA}",
            text.len()
        )));
    }
    let groups = keyfile::parse(text, &metadata_key).map_err(bad)?;
    // Nothing that reaches the review may rewrite it.
    for g in &groups {
        if let Some((k, _, _)) = g
            .attrs
            .iter()
            .find(|(_, _, v)| v.chars().any(crate::text::is_unsafe))
        {
            return Err(bad(format!(
                "[{}] {k} holds control or invisible formatting characters",
                g.title
            )));
        }
    }
    let main = groups
        .iter()
        .find(|g| g.title == "Application")
        .ok_or_else(|| bad("no [Application] group"))?;
    if main.get("name") != Some(app.id.as_str()) {
        return Err(bad(format!(
            "[Application] name is {:?}, but the ref is {app}",
            main.get("name").unwrap_or_default()
        )));
    }
    let runtime = main
        .get("runtime")
        .and_then(|r| FlatpakRef::parse_partial(RefKind::Runtime, r.trim()))
        .ok_or_else(|| bad("[Application] runtime= is missing or not ID/ARCH/BRANCH"))?;
    let command = main
        .get("command")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("[Application] command= is missing"))?;
    if command.chars().any(crate::text::is_unsafe) {
        return Err(bad("[Application] command= holds control characters"));
    }
    let mut out = FlatpakApp {
        app,
        runtime,
        command: command.to_owned(),
        permissions: PermissionSet::default(),
        left_out: Vec::new(),
    };
    let mut system_bus = Vec::new();
    let mut grant =
        |berth: Option<String>, theirs: String| match berth.as_deref().map(Permission::parse) {
            Some(Ok(p)) => out.permissions.insert(p),
            _ => out.left_out.push(theirs),
        };
    if let Some(ctx) = groups.iter().find(|g| g.title == "Context") {
        for (key, _, value) in ctx.attrs.iter().filter(|(_, p, _)| p.is_none()) {
            // Flatpak reads a list in order: `!x` takes away an `x` given
            // before it (or by the runtime: berth starts from nothing).
            let mut items: Vec<&str> = Vec::new();
            for item in list(value) {
                match item.strip_prefix('!') {
                    Some(not) => items.retain(|i| *i != not),
                    None if !items.contains(&item) => items.push(item),
                    None => {}
                }
            }
            for item in items {
                let theirs = format!("{key}={item}");
                let berth = match key.as_str() {
                    "shared" => Some(format!("share={item}")).filter(|_| item != "host-network"),
                    "sockets" => Some(format!("socket={item}")),
                    "devices" => Some(format!("device={item}"))
                        .filter(|_| ["dri", "all", "kvm", "input", "usb"].contains(&item)),
                    "features" => match item {
                        "devel" | "multiarch" => Some(format!("allow={item}")),
                        _ => None,
                    },
                    "filesystems" => filesystem(item).map(|f| format!("filesystem={f}")),
                    "persistent" => Some(format!("persist={item}")),
                    _ => None,
                };
                grant(berth, theirs);
            }
        }
    }
    // Localized keys (`NAME[de]=`) mean nothing in these groups; Flatpak
    // does not read them, nor does berth.
    if let Some(bus) = groups.iter().find(|g| g.title == "Session Bus Policy") {
        for (name, _, policy) in bus.attrs.iter().filter(|(_, p, _)| p.is_none()) {
            let berth = match policy.trim() {
                "talk" => Some(format!("talk-name={name}")),
                "own" => Some(format!("own-name={name}")),
                "none" => continue,
                _ => None,
            };
            grant(berth, format!("session bus {name}={}", policy.trim()));
        }
    }
    if let Some(bus) = groups.iter().find(|g| g.title == "System Bus Policy") {
        for (name, _, policy) in bus.attrs.iter().filter(|(_, p, _)| p.is_none()) {
            if policy.trim() != "none" {
                system_bus.push(format!("system bus {name}={}", policy.trim()));
            }
        }
    }
    if let Some(env) = groups.iter().find(|g| g.title == "Environment") {
        for (name, _, value) in env.attrs.iter().filter(|(_, p, _)| p.is_none()) {
            grant(
                Some(format!("env={name}={value}")),
                format!("environment {name}={value}"),
            );
        }
    }
    out.left_out.extend(system_bus);
    if out.permissions.0.len() > MAX_PERMISSIONS {
        return Err(bad(format!(
            "it asks for {} permissions; an app may ask for at most {MAX_PERMISSIONS}",
            out.permissions.0.len()
        )));
    }
    if out.left_out.len() > MAX_LEFT_OUT {
        let more = out.left_out.len() - MAX_LEFT_OUT;
        out.left_out.truncate(MAX_LEFT_OUT);
        out.left_out.push(format!("and {more} more"));
    }
    Ok(Some(out))
}

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(';').map(str::trim).filter(|i| !i.is_empty())
}

/// A Flatpak `filesystems=` item in berth's words, where berth has one.
fn filesystem(item: &str) -> Option<String> {
    let (place, mode) = match item.rsplit_once(':') {
        Some((p, m)) => (p, Some(m)),
        None => (item, None),
    };
    let place = match place.split_once('/') {
        // Flatpak's base directories are the home's own folders here:
        // berth binds them at the same place in the sandbox's home.
        Some(("xdg-config", rest)) => format!("~/.config/{rest}"),
        Some(("xdg-data", rest)) => format!("~/.local/share/{rest}"),
        Some(("xdg-cache", rest)) => format!("~/.cache/{rest}"),
        _ => match place {
            "xdg-config" => "~/.config".into(),
            "xdg-data" => "~/.local/share".into(),
            "xdg-cache" => "~/.cache".into(),
            // The host's OS and /etc, under /run/host, and the runtime
            // dir: berth has no such grants.
            p if p.starts_with("host-") || p.starts_with("xdg-run") => return None,
            p => p.to_owned(),
        },
    };
    Some(match mode {
        Some(m) => format!("{place}:{m}"),
        None => place,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const META: &str = "[Application]\nname=org.test.Hello\nruntime=org.test.Platform/x86_64/1\n\
        sdk=org.test.Platform/x86_64/1\ncommand=hello\n\n[Context]\nshared=network;ipc;\n\
        sockets=x11;wayland;pcsc;!cups;\ndevices=dri;shm;\nfeatures=devel;bluetooth;\n\
        filesystems=xdg-download:ro;home;host-os;xdg-config/gtk-3.0;~/Music:create;xdg-run/pipewire-0;\n\
        persistent=.hello;\n\n[Session Bus Policy]\norg.freedesktop.Notifications=talk\n\
        org.test.Hello.Extra=own\norg.freedesktop.secrets=see\norg.a.B=none\n\n\
        [System Bus Policy]\norg.freedesktop.NetworkManager=talk\n\n[Environment]\nFOO=bar\n\
        LD_PRELOAD=x;y\n";

    #[test]
    fn metadata_becomes_berth_permissions_and_says_what_it_leaves_out() {
        let a = parse_app(Some("app/org.test.Hello/x86_64/1"), Some(META))
            .unwrap()
            .unwrap();
        assert_eq!(a.runtime.to_string(), "runtime/org.test.Platform/x86_64/1");
        assert_eq!(a.command, "hello");
        let got: Vec<String> = a.permissions.iter().map(ToString::to_string).collect();
        for want in [
            "share=network",
            "share=ipc",
            "socket=x11",
            "socket=wayland",
            "device=dri",
            "allow=devel",
            "filesystem=xdg-download:ro",
            "filesystem=home",
            "filesystem=~/.config/gtk-3.0",
            "filesystem=~/Music:create",
            "persist=.hello",
            "talk-name=org.freedesktop.Notifications",
            "own-name=org.test.Hello.Extra",
            "env=FOO=bar",
        ] {
            assert!(got.contains(&want.to_owned()), "{want} not in {got:?}");
        }
        assert!(!got.iter().any(|g| g.contains("cups")), "{got:?}");
        // In order, as Flatpak reads them; localized keys mean nothing.
        let m = META
            .replace(
                "sockets=x11;wayland;pcsc;!cups;",
                "sockets=x11;!x11;wayland;!wayland;wayland;",
            )
            .replace(
                "org.a.B=none\n",
                "org.a.B=none\norg.a.B[de]=talk\norg.freedesktop.Flatpak[de]=talk\n",
            )
            .replace("FOO=bar\n", "FOO=bar\nFOO[de]=baz\n");
        let b = parse_app(Some("app/org.test.Hello/x86_64/1"), Some(&m))
            .unwrap()
            .unwrap();
        let got: Vec<String> = b.permissions.iter().map(ToString::to_string).collect();
        assert!(!got.contains(&"socket=x11".to_owned()), "{got:?}");
        assert!(got.contains(&"socket=wayland".to_owned()), "{got:?}");
        assert!(
            !got.iter()
                .any(|g| g.contains("org.a.B") || g.contains("Flatpak")),
            "{got:?}"
        );
        assert!(got.contains(&"env=FOO=bar".to_owned()) && !got.iter().any(|g| g.contains("baz")));
        for left in [
            "sockets=pcsc",
            "devices=shm",
            "features=bluetooth",
            "filesystems=host-os",
            "filesystems=xdg-run/pipewire-0",
            "session bus org.freedesktop.secrets=see",
            "system bus org.freedesktop.NetworkManager=talk",
            "environment LD_PRELOAD=x;y",
        ] {
            assert!(
                a.left_out.contains(&left.to_owned()),
                "{left}: {:?}",
                a.left_out
            );
        }
    }

    #[test]
    fn refs_and_metadata_are_checked() {
        assert_eq!(parse_app(None, Some(META)), Ok(None));
        assert_eq!(
            parse_app(Some("runtime/org.test.Platform/x86_64/1"), None),
            Ok(None)
        );
        for r in [
            "app/org.test.Hello/x86_64",
            "app/org.test.Hello/x86_64/1/2",
            "app/hello/x86_64/1",
            "app/org.test.Hello/x86_64/../x",
            "app/org.test.Hello/x86_64/a b",
            "thing/org.test.Hello/x86_64/1",
        ] {
            assert!(parse_app(Some(r), Some(META)).is_err(), "{r}");
        }
        let r = Some("app/org.test.Hello/x86_64/1");
        assert!(parse_app(r, None).is_err());
        for m in [
            META.replace("name=org.test.Hello", "name=org.test.Other"),
            META.replace("command=hello\n", ""),
            META.replace("runtime=org.test.Platform/x86_64/1", "runtime=x"),
            META.replace("[Context]", "[Context]\nshared=network"),
            META.replace("sockets=x11;", "sockets=x11\r;"),
            META.replace("FOO=bar", "FOO=b\u{202e}ar"),
            "[Application]\nname=org.test.Hello\n".into(),
            format!("{META}# {}\n", "x".repeat(MAX_METADATA)),
            format!(
                "{META}{}",
                (0..100).map(|i| format!("V{i}=x\n")).collect::<String>()
            ),
        ] {
            assert!(parse_app(r, Some(&m)).is_err(), "{m}");
        }
        assert_eq!(
            runtime_ref_of(Some("runtime/org.test.Platform/x86_64/1"))
                .unwrap()
                .id,
            "org.test.Platform"
        );
        assert!(runtime_ref_of(Some("app/org.test.Platform/x86_64/1")).is_none());
    }
}
