//! Registry credentials from the files Docker and Podman already write:
//! `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.docker/config.json` (first that exists). The parser is pure.

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
struct File {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
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

/// Credentials for `registry` in an auth file's text.
pub fn lookup(text: &str, file: &str, registry: &str) -> Result<Option<Credentials>> {
    let bad = |reason: String| Error::Auth {
        file: file.to_owned(),
        reason,
    };
    let f: File = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Some((_, e)) = f.auths.iter().find(|(k, _)| host_of(k) == registry) else {
        return Ok(None);
    };
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    let Some(a) = &e.auth else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(a.trim())
        .map_err(|_| bad(format!("the auth for {registry} is not base64")))?;
    let s =
        String::from_utf8(raw).map_err(|_| bad(format!("the auth for {registry} is not text")))?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| bad(format!("the auth for {registry} is not USER:PASSWORD")))?;
    Ok(Some(Credentials {
        username: u.to_owned(),
        password: p.to_owned(),
    }))
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
    if let Some(h) = std::env::var_os("HOME").filter(|f| !f.is_empty()) {
        v.push(PathBuf::from(h).join(".docker/config.json"));
    }
    v
}

/// Credentials for `registry` from the first auth file that has them.
pub fn for_registry(registry: &str) -> Result<Option<Credentials>> {
    for f in auth_files() {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        if let Some(c) = lookup(&text, &f.display().to_string(), registry)? {
            return Ok(Some(c));
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
