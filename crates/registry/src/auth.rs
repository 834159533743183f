//! Registry credentials from the files Docker and Podman already write, in
//! podman's order: `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$XDG_CONFIG_HOME/containers/auth.json`, `~/.docker/config.json`,
//! `~/.dockercfg`; in each, `credHelpers` for the registry, then `auths`,
//! then `credsStore`. Helpers are Docker's `docker-credential-NAME get`
//! programs. The parser is pure; running a helper is apart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;

use crate::error::{Error, Result};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

/// What an auth file says about a registry.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Credentials(Credentials),
    /// Ask `docker-credential-NAME`.
    Helper(String),
}

/// A helper's name becomes part of a program name: letters, digits, `-_.`.
fn valid_helper(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !n.starts_with('.')
}

#[derive(serde::Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `https://host:port/v1/` and `host:port` both name `host:port`.
fn host_of(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Credentials for `registry` in an auth file's text (plain ones only).
pub fn lookup(text: &str, file: &str, registry: &str) -> Result<Option<Credentials>> {
    Ok(match lookup_any(text, file, registry)? {
        Some(Found::Credentials(c)) => Some(c),
        _ => None,
    })
}

/// What an auth file's text says for `registry`: its credential helper,
/// else its `auths` entry, else the file's `credsStore`. `.dockercfg`'s
/// older form (entries at the top level) is read too.
pub fn lookup_any(text: &str, file: &str, registry: &str) -> Result<Option<Found>> {
    let bad = |reason: String| Error::Auth {
        file: file.to_owned(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let legacy = v.is_object()
        && !["auths", "credHelpers", "credsStore"]
            .iter()
            .any(|k| v.get(k).is_some())
        && v.as_object()
            .is_some_and(|o| o.values().all(|e| e.get("auth").is_some()));
    let f: File = if legacy {
        File {
            auths: serde_json::from_value(v).map_err(|e| bad(e.to_string()))?,
            cred_helpers: BTreeMap::new(),
            creds_store: None,
        }
    } else {
        serde_json::from_value(v).map_err(|e| bad(e.to_string()))?
    };
    let helper = |n: &String| -> Result<Option<Found>> {
        if valid_helper(n) {
            Ok(Some(Found::Helper(n.clone())))
        } else {
            Err(bad(format!("credential helper {n:?} is not a helper name")))
        }
    };
    if let Some((_, h)) = f.cred_helpers.iter().find(|(k, _)| host_of(k) == registry) {
        return helper(h);
    }
    let Some((_, e)) = f.auths.iter().find(|(k, _)| host_of(k) == registry) else {
        return match &f.creds_store {
            Some(h) => helper(h),
            None => Ok(None),
        };
    };
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Some(Found::Credentials(Credentials {
            username: u.clone(),
            password: p.clone(),
        })));
    }
    let Some(a) = e.auth.as_ref().filter(|a| !a.is_empty()) else {
        return match &f.creds_store {
            Some(h) => helper(h),
            None => Ok(None),
        };
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(a.trim())
        .map_err(|_| bad(format!("the auth for {registry} is not base64")))?;
    let s =
        String::from_utf8(raw).map_err(|_| bad(format!("the auth for {registry} is not text")))?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| bad(format!("the auth for {registry} is not USER:PASSWORD")))?;
    Ok(Some(Found::Credentials(Credentials {
        username: u.to_owned(),
        password: p.to_owned(),
    })))
}

/// Parse a credential helper's answer to `get`.
pub fn parse_helper_output(out: &[u8], helper: &str) -> Result<Credentials> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let a: Answer = serde_json::from_slice(out).map_err(|e| Error::Auth {
        file: format!("docker-credential-{helper}"),
        reason: format!("its answer is not the JSON Docker defines: {e}"),
    })?;
    Ok(Credentials {
        username: a.username,
        password: a.secret,
    })
}

/// Ask `docker-credential-HELPER get` for `registry`'s credentials. None
/// when it has none; an error when it is missing or fails otherwise.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| Error::Io {
            context: format!("running the credential helper {program} (from an auth file's credHelpers or credsStore)"),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| Error::Io {
        context: format!("running {program}"),
        source,
    })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if why.contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::Auth {
            file: program,
            reason: format!("get {registry} failed: {}", why.trim()),
        });
    }
    parse_helper_output(&out.stdout, helper).map(Some)
}

/// The auth files to read, in order.
pub fn auth_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        v.push(PathBuf::from(f));
    }
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR").filter(|f| !f.is_empty()) {
        v.push(PathBuf::from(r).join("containers/auth.json"));
    }
    let home = std::env::var_os("HOME")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(c) = config {
        v.push(c.join("containers/auth.json"));
    }
    if let Some(h) = home {
        v.push(h.join(".docker/config.json"));
        v.push(h.join(".dockercfg"));
    }
    v
}

/// Credentials for `registry` from the first auth file that has them.
pub fn for_registry(registry: &str) -> Result<Option<Credentials>> {
    for f in auth_files() {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match lookup_any(&text, &f.display().to_string(), registry)? {
            Some(Found::Credentials(c)) => return Ok(Some(c)),
            Some(Found::Helper(h)) => {
                if let Some(c) = run_helper(&h, registry)? {
                    return Ok(Some(c));
                }
            }
            None => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_and_podman_forms() {
        let t = r#"{"auths":{"https://localhost:5000/v1/":{"auth":"YWxpY2U6czNjcjN0"},
                   "reg.example":{"username":"bob","password":"pw"}}}"#;
        let c = lookup(t, "f", "localhost:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cr3t")
        );
        assert_eq!(
            lookup(t, "f", "reg.example").unwrap().unwrap().username,
            "bob"
        );
        assert_eq!(lookup(t, "f", "other:1").unwrap(), None);
        assert!(format!("{c:?}").contains("<hidden>"));
    }

    #[test]
    fn helpers_and_the_old_format() {
        let t = r#"{"auths":{"a:1":{"auth":"YTpi"}, "c:3":{}},
                   "credHelpers":{"h:2":"pass"},"credsStore":"secretservice"}"#;
        assert_eq!(
            lookup_any(t, "f", "h:2").unwrap(),
            Some(Found::Helper("pass".into()))
        );
        assert!(matches!(
            lookup_any(t, "f", "a:1").unwrap(),
            Some(Found::Credentials(_))
        ));
        assert_eq!(
            lookup_any(t, "f", "c:3").unwrap(),
            Some(Found::Helper("secretservice".into()))
        );
        assert_eq!(
            lookup_any(t, "f", "other").unwrap(),
            Some(Found::Helper("secretservice".into()))
        );
        let bad = r#"{"credHelpers":{"h":"../../bin/sh"}}"#;
        assert!(lookup_any(bad, "f", "h").is_err());
        let old = r#"{"https://old.example":{"auth":"dTpw","email":"x"}}"#;
        let c = lookup(old, "f", "old.example").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let out = br#"{"ServerURL":"h:2","Username":"u","Secret":"s"}"#;
        assert_eq!(parse_helper_output(out, "pass").unwrap().password, "s");
        assert!(parse_helper_output(b"nope", "pass").is_err());
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(lookup("{", "f", "x").is_err());
        let t = r#"{"auths":{"x":{"auth":"%%%"}}}"#;
        assert!(
            lookup(t, "f", "x")
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
        let t = r#"{"auths":{"x":{"auth":"bm9jb2xvbg=="}}}"#;
        assert!(lookup(t, "f", "x").is_err());
    }
}
