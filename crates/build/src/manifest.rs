//! The build manifest (`berth build MANIFEST`): a small TOML file. Pure:
//! text in, a validated `BuildManifest` out. docs/build-manifest.md
//! documents every key.

use std::collections::BTreeMap;

use berth_app::metadata::{
    AppMeta, LABEL_COMMAND, LABEL_DESKTOP, LABEL_ID, LABEL_NAME, LABEL_PERMISSIONS,
};
use berth_app::permissions::PermissionSet;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A command as words or as one string split on whitespace.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Command {
    Words(Vec<String>),
    Line(String),
}

impl Command {
    pub fn words(&self) -> Vec<String> {
        match self {
            Command::Words(w) => w.clone(),
            Command::Line(l) => l.split_whitespace().map(str::to_owned).collect(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BuildSection {
    /// Source directory, relative to the manifest. Copied, so the build
    /// never writes into it.
    #[serde(default = "dot")]
    pub source: String,
    /// Network during the steps (off by default).
    #[serde(default)]
    pub network: bool,
    /// Where the steps install the app; becomes the app's layer.
    #[serde(default = "app_dir")]
    pub install_dir: String,
    pub env: BTreeMap<String, String>,
    pub steps: Vec<String>,
}

impl Default for BuildSection {
    fn default() -> Self {
        BuildSection {
            source: dot(),
            network: false,
            install_dir: app_dir(),
            env: BTreeMap::new(),
            steps: Vec::new(),
        }
    }
}

fn dot() -> String {
    ".".into()
}
fn app_dir() -> String {
    "/app".into()
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildManifest {
    pub id: String,
    pub name: Option<String>,
    pub version: Option<String>,
    pub command: Command,
    #[serde(default)]
    pub permissions: Vec<String>,
    /// An image file relative to the manifest, or an absolute path the
    /// steps install under the install dir.
    pub icon: Option<String>,
    /// A desktop entry (its text). Default: one made from name and icon.
    pub desktop: Option<String>,
    /// Runtime the app runs on: its layers become the image's base.
    pub runtime: String,
    /// SDK the steps run on (default: the runtime).
    pub sdk: Option<String>,
    /// Name of the result (default: the ID in lower case, tag `latest`).
    pub image: Option<String>,
    /// Debian packages to install on the runtime: resolved against the
    /// runtime's own package list, only what it lacks becomes a layer.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Local `.deb` files (relative to the manifest), installed the same way.
    #[serde(default)]
    pub debs: Vec<String>,
    #[serde(default)]
    pub build: BuildSection,
}

/// Paths an install dir may not cover: it is mounted over the SDK's tree.
const SYSTEM_DIRS: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
    "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var",
];

impl BuildManifest {
    /// Parse and check. `file` names the manifest in errors.
    pub fn parse(text: &str, file: &str) -> Result<BuildManifest> {
        let bad = |reason: String| Error::Manifest {
            file: file.to_owned(),
            reason,
        };
        let m: BuildManifest = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if m.build.steps.is_empty() && m.packages.is_empty() && m.debs.is_empty() {
            return Err(bad(
                "no packages, debs or [build] steps: nothing would be built".into(),
            ));
        }
        for p in &m.packages {
            if !crate::debian::valid_package(p) {
                return Err(bad(format!("packages: {p:?} is not a Debian package name")));
            }
        }
        for d in &m.debs {
            if d.starts_with('/') || d.split('/').any(|c| c == "..") || !d.ends_with(".deb") {
                return Err(bad(format!(
                    "debs: {d:?} must be a .deb file inside the manifest's directory"
                )));
            }
        }
        let dir = &m.build.install_dir;
        let comps: Vec<&str> = dir.split('/').skip(1).collect();
        if !dir.starts_with('/')
            || comps
                .iter()
                .any(|c| c.is_empty() || *c == "." || *c == "..")
            || SYSTEM_DIRS
                .iter()
                .any(|s| dir == s || dir.starts_with(&format!("{s}/")))
        {
            return Err(bad(format!(
                "[build] install-dir = {dir:?}: use an absolute path of its own such as /app or /opt/NAME, not a system directory"
            )));
        }
        if m.build.source.starts_with('/') || m.build.source.split('/').any(|c| c == "..") {
            return Err(bad(format!(
                "[build] source = {:?} must be a path inside the manifest's directory",
                m.build.source
            )));
        }
        for k in m.build.env.keys() {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(bad(format!("[build.env] bad variable name {k:?}")));
            }
        }
        if m.command.words().is_empty() {
            return Err(bad("command is empty".into()));
        }
        if let Some(i) = &m.icon {
            if i.split('/').any(|c| c == "..") {
                return Err(bad(format!("icon = {i:?} may not contain ..")));
            }
            if i.starts_with('/') && !i.starts_with(&format!("{dir}/")) {
                return Err(bad(format!(
                    "icon = {i:?}: an absolute icon path must be under the install dir {dir}"
                )));
            }
        }
        // The labels must make a valid app; check now, not after building.
        AppMeta::from_labels(&m.labels(None)).map_err(|e| bad(e.to_string()))?;
        Ok(m)
    }

    /// The app labels of the result; `icon` is the icon's path in the image.
    pub fn labels(&self, icon: Option<&str>) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert(LABEL_ID.to_owned(), self.id.clone());
        if let Some(n) = &self.name {
            l.insert(LABEL_NAME.to_owned(), n.clone());
        }
        l.insert(
            LABEL_COMMAND.to_owned(),
            serde_json::to_string(&self.command.words()).unwrap_or_default(),
        );
        if !self.permissions.is_empty() {
            l.insert(LABEL_PERMISSIONS.to_owned(), self.permissions.join(";"));
        }
        if let Some(d) = &self.desktop {
            l.insert(LABEL_DESKTOP.to_owned(), d.clone());
        }
        if let Some(i) = icon {
            l.insert(berth_app::metadata::LABEL_ICON.to_owned(), i.to_owned());
        }
        if let Some(v) = &self.version {
            l.insert("org.opencontainers.image.version".to_owned(), v.clone());
        }
        l
    }

    pub fn permission_set(&self) -> Result<PermissionSet> {
        PermissionSet::parse_list(&self.permissions.join(";"))
            .map_err(|e| Error::invalid("permissions", e.to_string()))
    }

    /// The result's name.
    pub fn image_name(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| format!("{}:latest", self.id.to_lowercase()))
    }

    pub fn sdk(&self) -> &str {
        self.sdk.as_deref().unwrap_or(&self.runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_parse() {
        for (f, text) in [
            (
                "hello-x11",
                include_str!("../../../examples/hello-x11/berth.toml"),
            ),
            (
                "mousepad",
                include_str!("../../../examples/mousepad/berth.toml"),
            ),
            (
                "featherpad",
                include_str!("../../../examples/featherpad/berth.toml"),
            ),
        ] {
            BuildManifest::parse(text, f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn packages_alone_are_a_build() {
        let m = BuildManifest::parse(
            "id = \"org.xfce.mousepad\"\ncommand = \"mousepad\"\npermissions = [\"socket=x11\"]\nruntime = \"example/runtime:bookworm\"\npackages = [\"mousepad\"]\n",
            "m.toml",
        )
        .unwrap();
        assert_eq!(m.packages, vec!["mousepad"]);
        assert!(m.build.steps.is_empty());
        assert_eq!(m.build.install_dir, "/app");
    }

    const GOOD: &str = r#"
id = "org.example.Hello"
name = "Hello"
command = ["/app/bin/hello", "--big"]
permissions = ["socket=x11", "share=ipc"]
runtime = "example/runtime:bookworm"
sdk = "example/runtime-sdk:bookworm"

[build]
steps = ["make", "make install PREFIX=/app"]
env = { CFLAGS = "-O2" }
"#;

    #[test]
    fn parses_with_defaults() {
        let m = BuildManifest::parse(GOOD, "m.toml").unwrap();
        assert_eq!(m.build.install_dir, "/app");
        assert_eq!(m.build.source, ".");
        assert!(!m.build.network);
        assert_eq!(m.image_name(), "org.example.hello:latest");
        let l = m.labels(Some("/app/share/icon.png"));
        assert_eq!(l[LABEL_COMMAND], r#"["/app/bin/hello","--big"]"#);
        assert_eq!(l[LABEL_PERMISSIONS], "socket=x11;share=ipc");
        let meta = AppMeta::from_labels(&l).unwrap().unwrap();
        assert_eq!(meta.icon.as_deref(), Some("/app/share/icon.png"));
    }

    fn err(text: &str) -> String {
        BuildManifest::parse(text, "m.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn refuses_mistakes_with_reasons() {
        assert!(err(&GOOD.replace("steps", "stepz")).contains("stepz"));
        assert!(err(&GOOD.replace("Hello\"\nname", "Hello\"\nnam")).contains("m.toml"));
        assert!(err(&GOOD.replace("org.example.Hello", "hello")).contains("app ID"));
        assert!(err(&GOOD.replace("socket=x11", "socket=telepathy")).contains("telepathy"));
        let sys = GOOD.replace("[build]", "[build]\ninstall-dir = \"/usr\"");
        assert!(err(&sys).contains("system directory"));
        let up = GOOD.replace("[build]", "[build]\nsource = \"../..\"");
        assert!(err(&up).contains("inside the manifest"));
        let none = GOOD.replace(
            r#"steps = ["make", "make install PREFIX=/app"]"#,
            "steps = []",
        );
        assert!(err(&none).contains("nothing would be built"));
        assert!(
            err(&GOOD.replace("[build]", "packages = [\"Bad Name\"]\n[build]"))
                .contains("Debian package")
        );
        assert!(
            err(&GOOD.replace("[build]", "debs = [\"../x.deb\"]\n[build]")).contains(".deb file")
        );
        assert!(err("this is not toml [").contains("m.toml"));
    }
}
