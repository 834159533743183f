//! The containers configuration podman and skopeo users already have:
//! `registries.conf` (v2: short-name search, prefix rewrites, mirrors,
//! insecure and blocked registries), `policy.json` (reject,
//! insecureAcceptAnything; signedBy and sigstoreSigned, which berth cannot
//! verify, refuse) and `certs.d/HOST:PORT/*.crt` (private CAs). The formats
//! are small TOML and JSON documents; the parsers here are pure (text in,
//! typed values out) and the loaders only find the files. No crate parses
//! them outside containers/image (Go); delegating the transport to skopeo
//! would add a process and its start-up to every pull (docs/registries.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A `[[registry]]` table, or what stands for an unconfigured registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    /// What references it covers: `host[:port][/path]`, or `*.domain`.
    pub prefix: String,
    /// Where they are fetched from (the prefix is replaced by it).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirrors: Vec<Mirror>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
}

/// `registries.conf` and its drop-ins, merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registries {
    pub unqualified_search: Vec<String>,
    pub registries: Vec<Registry>,
}

/// One place to fetch a reference from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference, rewritten to the mirror or location.
    pub reference: String,
    pub insecure: bool,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ConfFile {
    #[serde(default)]
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<RegistryTable>,
    /// v1 tables (`[registries.search]`...) are not read; say so.
    #[serde(default)]
    registries: Option<toml::Value>,
}

#[derive(serde::Deserialize)]
struct RegistryTable {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror: Vec<MirrorTable>,
}

#[derive(serde::Deserialize)]
struct MirrorTable {
    location: String,
    #[serde(default)]
    insecure: bool,
}

fn conf_err(file: &str, reason: impl Into<String>) -> Error {
    Error::Invalid(format!("{file}: {}", reason.into()))
}

/// A host, `host:port`, or host and path, without a scheme.
fn valid_location(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("://")
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:/[]".contains(&b))
        && !s.split('/').any(|c| c.is_empty() || c == "..")
}

impl Registries {
    /// Parse one file (v2); `file` names it in errors. Later files are
    /// merged over earlier ones with [`Registries::merge`].
    pub fn parse(text: &str, file: &str) -> Result<Registries> {
        let f: ConfFile = toml::from_str(text).map_err(|e| conf_err(file, e.to_string()))?;
        if f.registries.is_some() {
            return Err(conf_err(
                file,
                "[registries.*] is the v1 format; berth reads v2 (unqualified-search-registries, [[registry]])",
            ));
        }
        let mut out = Registries {
            unqualified_search: f.unqualified_search_registries.unwrap_or_default(),
            registries: Vec::new(),
        };
        for r in &out.unqualified_search {
            if !valid_location(r) || r.contains('/') {
                return Err(conf_err(
                    file,
                    format!("unqualified-search-registries: {r:?} is not a registry host"),
                ));
            }
        }
        for t in f.registry {
            let prefix = t
                .prefix
                .clone()
                .or_else(|| t.location.clone())
                .ok_or_else(|| conf_err(file, "a [[registry]] has neither prefix nor location"))?;
            let location = t.location.clone().unwrap_or_else(|| prefix.clone());
            let wildcard = prefix.strip_prefix("*.");
            if wildcard.is_some_and(|d| !valid_location(d) || d.contains('/'))
                || (wildcard.is_none() && !valid_location(&prefix))
            {
                return Err(conf_err(
                    file,
                    format!("prefix {prefix:?} is not HOST[/PATH] or *.DOMAIN"),
                ));
            }
            if wildcard.is_some() && t.location.is_some() {
                return Err(conf_err(
                    file,
                    format!("prefix {prefix:?}: a wildcard prefix cannot have a location"),
                ));
            }
            if !valid_location(&location.replace("*.", "")) {
                return Err(conf_err(
                    file,
                    format!("location {location:?} is not HOST[/PATH]"),
                ));
            }
            let mut mirrors = Vec::new();
            for m in t.mirror {
                if !valid_location(&m.location) {
                    return Err(conf_err(
                        file,
                        format!("mirror {:?} is not HOST[/PATH]", m.location),
                    ));
                }
                mirrors.push(Mirror {
                    location: m.location,
                    insecure: m.insecure,
                });
            }
            out.registries.push(Registry {
                prefix,
                location,
                insecure: t.insecure,
                blocked: t.blocked,
                mirrors,
            });
        }
        Ok(out)
    }

    /// `other` read after `self` (a drop-in): its search list replaces
    /// ours if it has one; its registries replace ours of the same prefix.
    pub fn merge(&mut self, other: Registries) {
        if !other.unqualified_search.is_empty() {
            self.unqualified_search = other.unqualified_search;
        }
        for r in other.registries {
            self.registries.retain(|o| o.prefix != r.prefix);
            self.registries.push(r);
        }
    }

    /// The table covering `name` (`host[:port]/path`, no tag): the longest
    /// matching prefix, on a path-component boundary; `*.domain` covers the
    /// domain's sub-domains.
    pub fn find(&self, name: &str) -> Option<&Registry> {
        let host = name.split('/').next().unwrap_or(name);
        self.registries
            .iter()
            .filter(|r| match r.prefix.strip_prefix("*.") {
                Some(d) => host.ends_with(&format!(".{d}")),
                None => {
                    name == r.prefix
                        || name
                            .strip_prefix(r.prefix.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                }
            })
            .max_by_key(|r| {
                if r.prefix.starts_with("*.") {
                    0
                } else {
                    r.prefix.len()
                }
            })
    }

    /// Where to fetch `reference` (`host/path[:tag|@digest]`): its mirrors
    /// in order, then its location. A blocked registry is an error.
    pub fn endpoints(&self, reference: &str) -> Result<Vec<Endpoint>> {
        let normal = normalize(reference);
        let (name, suffix) = split_suffix(&normal);
        let Some(r) = self.find(name) else {
            return Ok(vec![Endpoint {
                reference: reference.to_owned(),
                insecure: false,
            }]);
        };
        if r.blocked {
            return Err(Error::Invalid(format!(
                "registries.conf blocks {} (prefix {})",
                name, r.prefix
            )));
        }
        let rewrite = |location: &str| -> String {
            if r.prefix.starts_with("*.") {
                return format!("{name}{suffix}");
            }
            let rest = &name[r.prefix.len()..];
            format!("{location}{rest}{suffix}")
        };
        let mut out: Vec<Endpoint> = r
            .mirrors
            .iter()
            .map(|m| Endpoint {
                reference: rewrite(&m.location),
                insecure: m.insecure,
            })
            .collect();
        out.push(Endpoint {
            reference: rewrite(&r.location),
            insecure: r.insecure,
        });
        Ok(out)
    }

    /// The fully qualified candidates for a short name (`name[:tag]`), in
    /// the order of `unqualified-search-registries`.
    pub fn expand_short(&self, short: &str) -> Vec<String> {
        self.unqualified_search
            .iter()
            .map(|r| format!("{r}/{short}"))
            .collect()
    }

    /// `$CONTAINERS_REGISTRIES_CONF`, else the user's
    /// (`$XDG_CONFIG_HOME/containers/registries.conf`) if it exists, else
    /// `/etc/containers/registries.conf`; then that file's
    /// `registries.conf.d/*.conf` drop-ins in name order. Missing files are
    /// nothing; a malformed one is an error that names it.
    pub fn load() -> Result<Registries> {
        let main = match std::env::var_os("CONTAINERS_REGISTRIES_CONF").filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => {
                let user = config_home().map(|c| c.join("containers/registries.conf"));
                match user {
                    Some(u) if u.exists() => u,
                    _ => PathBuf::from("/etc/containers/registries.conf"),
                }
            }
        };
        let mut out = Registries::default();
        let mut files = vec![main.clone()];
        let dropins = main.with_extension("conf.d");
        if let Ok(rd) = std::fs::read_dir(&dropins) {
            let mut d: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            d.sort();
            files.extend(d);
        }
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                out.merge(Registries::parse(&text, &f.display().to_string())?);
            }
        }
        Ok(out)
    }
}

/// `name` and what follows it (`:tag`, `@digest`, or `:tag@digest`).
fn split_suffix(reference: &str) -> (&str, &str) {
    let before_digest = reference.find('@').unwrap_or(reference.len());
    let head = &reference[..before_digest];
    let last = head.rfind('/').map_or(0, |i| i + 1);
    match head[last..].rfind(':') {
        Some(i) => (&reference[..last + i], &reference[last + i..]),
        None => (head, &reference[before_digest..]),
    }
}

/// `host/path` of a reference, without its tag or digest.
pub fn repository_of(reference: &str) -> &str {
    split_suffix(reference).0
}

/// The form containers/image matches scopes and prefixes on: the host in
/// lower case, `index.docker.io` as `docker.io`, and Docker Hub's official
/// images under `library/`.
pub fn normalize(reference: &str) -> String {
    let (host, rest) = reference.split_once('/').unwrap_or((reference, ""));
    let mut host = host.to_ascii_lowercase();
    if host == "index.docker.io" || host == "registry-1.docker.io" {
        host = "docker.io".into();
    }
    let (name, _) = split_suffix(rest);
    if host == "docker.io" && !name.is_empty() && !name.contains('/') {
        return format!("{host}/library/{rest}");
    }
    format!("{host}/{rest}")
}

fn config_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
}

// ---- policy.json -------------------------------------------------------

/// What `policy.json` says of a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    /// A signature berth cannot verify (GPG `signedBy`, `sigstoreSigned`):
    /// refused, saying which.
    Unverifiable(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    default: Vec<Requirement>,
    /// Scopes of the `docker` transport, with their requirements.
    docker: BTreeMap<String, Vec<Requirement>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Accept,
    Reject,
    Signed(String),
}

fn requirements(v: &serde_json::Value, file: &str, at: &str) -> Result<Vec<Requirement>> {
    let list = v
        .as_array()
        .ok_or_else(|| conf_err(file, format!("{at} is not a list of requirements")))?;
    if list.is_empty() {
        return Err(conf_err(
            file,
            format!("{at} is an empty list (containers/image refuses it too)"),
        ));
    }
    list.iter()
        .map(|r| match r.get("type").and_then(|t| t.as_str()) {
            Some("insecureAcceptAnything") => Ok(Requirement::Accept),
            Some("reject") => Ok(Requirement::Reject),
            Some(t @ ("signedBy" | "sigstoreSigned" | "signedBaseLayer")) => {
                Ok(Requirement::Signed(t.to_owned()))
            }
            Some(t) => Err(conf_err(
                file,
                format!("{at}: unknown requirement type {t:?}"),
            )),
            None => Err(conf_err(
                file,
                format!("{at}: a requirement without a type"),
            )),
        })
        .collect()
}

impl Policy {
    pub fn parse(text: &str, file: &str) -> Result<Policy> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| conf_err(file, e.to_string()))?;
        let default = requirements(
            v.get("default")
                .ok_or_else(|| conf_err(file, "no \"default\" policy"))?,
            file,
            "default",
        )?;
        let mut docker = BTreeMap::new();
        if let Some(scopes) = v
            .get("transports")
            .and_then(|t| t.get("docker"))
            .and_then(|d| d.as_object())
        {
            for (scope, reqs) in scopes {
                docker.insert(
                    scope.clone(),
                    requirements(reqs, file, &format!("docker {scope:?}"))?,
                );
            }
        }
        Ok(Policy { default, docker })
    }

    /// The verdict for `reference` (`host/path[:tag|@digest]`): the most
    /// specific docker scope that matches (the reference, its repository,
    /// its namespaces, its host, `*.domain` wildcards), else the docker
    /// transport's `""`, else `default`. Every requirement must hold.
    pub fn decide(&self, reference: &str) -> Verdict {
        let reference = normalize(reference);
        let (name, _) = split_suffix(&reference);
        let mut scopes: Vec<String> = vec![reference.clone()];
        let mut n = name;
        loop {
            scopes.push(n.to_owned());
            match n.rfind('/') {
                Some(i) => n = &n[..i],
                None => break,
            }
        }
        let host = name.split('/').next().unwrap_or(name);
        let mut h = host;
        while let Some(i) = h.find('.') {
            h = &h[i + 1..];
            scopes.push(format!("*.{h}"));
        }
        scopes.push(String::new());
        let reqs = scopes
            .iter()
            .find_map(|s| self.docker.get(s))
            .unwrap_or(&self.default);
        for r in reqs {
            match r {
                Requirement::Reject => return Verdict::Reject,
                Requirement::Signed(t) => return Verdict::Unverifiable(t.clone()),
                Requirement::Accept => {}
            }
        }
        Verdict::Accept
    }

    /// The user's `$XDG_CONFIG_HOME/containers/policy.json` if it exists,
    /// else `/etc/containers/policy.json`; none: accept (as berth's own
    /// policy then decides alone).
    pub fn load() -> Result<Option<(Policy, PathBuf)>> {
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(c) = config_home() {
            files.push(c.join("containers/policy.json"));
        }
        files.push(PathBuf::from("/etc/containers/policy.json"));
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                return Ok(Some((Policy::parse(&text, &f.display().to_string())?, f)));
            }
        }
        Ok(None)
    }
}

// ---- certs.d -------------------------------------------------------------

/// The `*.crt` files (PEM CAs) for `host[:port]` in the certs.d
/// directories podman reads: the user's, `/etc/containers/certs.d`,
/// `/etc/docker/certs.d`.
pub fn ca_files(registry: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(c) = config_home() {
        dirs.push(c.join("containers/certs.d"));
    }
    dirs.push(PathBuf::from("/etc/containers/certs.d"));
    dirs.push(PathBuf::from("/etc/docker/certs.d"));
    let mut out = Vec::new();
    // The registry name is a directory name: nothing that could climb.
    if registry.contains('/') || registry.contains("..") {
        return out;
    }
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d.join(registry)) else {
            continue;
        };
        let mut certs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "crt") && is_file(p))
            .collect();
        certs.sort();
        out.extend(certs);
    }
    out
}

fn is_file(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["reg.one:5000", "reg.two"]

[[registry]]
prefix = "example.com/apps"
location = "internal.example.com:5000/mirror/apps"
insecure = true
[[registry.mirror]]
location = "mirror.local:5001/apps"

[[registry]]
location = "evil.example"
blocked = true

[[registry]]
prefix = "*.corp"
insecure = true
"#;

    #[test]
    fn registries_conf_v2() {
        let r = Registries::parse(CONF, "r.conf").unwrap();
        assert_eq!(
            r.expand_short("hello:1"),
            vec!["reg.one:5000/hello:1", "reg.two/hello:1"]
        );
        let e = r.endpoints("example.com/apps/editor:2").unwrap();
        assert_eq!(
            e,
            vec![
                Endpoint {
                    reference: "mirror.local:5001/apps/editor:2".into(),
                    insecure: false
                },
                Endpoint {
                    reference: "internal.example.com:5000/mirror/apps/editor:2".into(),
                    insecure: true
                },
            ]
        );
        // A prefix matches whole components only.
        assert_eq!(
            r.endpoints("example.com/appsx/e:1").unwrap()[0].reference,
            "example.com/appsx/e:1"
        );
        let err = r
            .endpoints("evil.example/x@sha256:00")
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocks"), "{err}");
        let w = r.endpoints("reg.corp/x:1").unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].insecure && w[0].reference == "reg.corp/x:1");
    }

    #[test]
    fn bad_registries_conf_is_an_error_naming_the_file() {
        for bad in [
            "unqualified-search-registries = [\"a/b\"]",
            "[[registry]]\nprefix = \"https://x\"",
            "[[registry]]\ninsecure = true",
            "[registries.search]\nregistries = [\"x\"]",
            "[[registry]]\nprefix = \"*.x\"\nlocation = \"y\"",
            "not toml [",
        ] {
            let e = Registries::parse(bad, "r.conf").unwrap_err().to_string();
            assert!(e.contains("r.conf"), "{bad}: {e}");
        }
    }

    #[test]
    fn drop_ins_override() {
        let mut a = Registries::parse(CONF, "a").unwrap();
        a.merge(
            Registries::parse(
                "unqualified-search-registries = [\"x.y\"]\n[[registry]]\nlocation = \"evil.example\"\n",
                "b",
            )
            .unwrap(),
        );
        assert_eq!(a.unqualified_search, vec!["x.y"]);
        assert!(a.endpoints("evil.example/x:1").is_ok());
    }

    #[test]
    fn policy_json_scopes() {
        let p = Policy::parse(
            r#"{"default":[{"type":"reject"}],
                "transports":{"docker":{
                  "localhost:5000":[{"type":"insecureAcceptAnything"}],
                  "localhost:5000/secret":[{"type":"reject"}],
                  "*.example.com":[{"type":"insecureAcceptAnything"}],
                  "quay.io/signed":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}]}}}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(p.decide("localhost:5000/apps/a:1"), Verdict::Accept);
        assert_eq!(p.decide("localhost:5000/secret/a:1"), Verdict::Reject);
        assert_eq!(p.decide("localhost:5001/a:1"), Verdict::Reject);
        assert_eq!(p.decide("reg.example.com/a@sha256:ab"), Verdict::Accept);
        assert_eq!(
            p.decide("quay.io/signed/x:1"),
            Verdict::Unverifiable("signedBy".into())
        );
        let open =
            Policy::parse(r#"{"default":[{"type":"insecureAcceptAnything"}]}"#, "p").unwrap();
        assert_eq!(open.decide("anything/at:all"), Verdict::Accept);
        for bad in [
            "{}",
            r#"{"default":[]}"#,
            r#"{"default":[{"type":"maybe"}]}"#,
            "[",
        ] {
            assert!(Policy::parse(bad, "p.json").is_err(), "{bad}");
        }
    }

    #[test]
    fn suffixes_split_after_the_last_component() {
        assert_eq!(split_suffix("h:5000/a/b:1"), ("h:5000/a/b", ":1"));
        assert_eq!(split_suffix("h:5000/a/b"), ("h:5000/a/b", ""));
        assert_eq!(split_suffix("h/a@sha256:0"), ("h/a", "@sha256:0"));
        assert_eq!(split_suffix("h/a:1@sha256:0"), ("h/a", ":1@sha256:0"));
    }

    #[test]
    fn tags_with_digests_and_host_spellings_do_not_escape() {
        let p = Policy::parse(
            r#"{"default":[{"type":"insecureAcceptAnything"}],
                "transports":{"docker":{"reg.example/secret/app":[{"type":"reject"}],
                  "docker.io/library/alpine":[{"type":"reject"}]}}}"#,
            "p",
        )
        .unwrap();
        for r in [
            "reg.example/secret/app:1",
            "reg.example/secret/app:1@sha256:00",
            "Reg.Example/secret/app:1",
            "docker.io/alpine:3",
            "index.docker.io/library/alpine",
        ] {
            assert_eq!(p.decide(r), Verdict::Reject, "{r}");
        }
        let r = Registries::parse(
            "[[registry]]\nprefix = \"reg.example/secret\"\nblocked = true\n",
            "r",
        )
        .unwrap();
        assert!(r.endpoints("REG.example/secret/app:1@sha256:00").is_err());
    }
}
