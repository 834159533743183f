//! Debian root filesystems from mmdebstrap, the tool Debian itself uses for
//! reproducible chroots. As root it runs in "root" mode; as a user in
//! "unshare" mode, which needs subordinate ids in /etc/subuid.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::error::{Error, IoContext, Result};

/// `--from debian:SUITE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    pub suite: String,
}

impl From {
    pub fn parse(s: &str) -> Result<From> {
        let (distro, suite) = s.split_once(':').unwrap_or((s, ""));
        if distro != "debian" {
            return Err(Error::invalid(
                "--from",
                format!("{s:?}: only debian:SUITE (for example debian:bookworm) is supported"),
            ));
        }
        if suite.is_empty()
            || !suite
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::invalid(
                "--from",
                format!("{s:?}: the suite must be a name like bookworm or stable"),
            ));
        }
        Ok(From {
            suite: suite.to_owned(),
        })
    }
}

/// Debian policy: lowercase letters, digits, `+ - .`, at least 2 long,
/// starting alphanumeric.
pub fn valid_package(p: &str) -> bool {
    p.len() >= 2
        && p.as_bytes()[0].is_ascii_alphanumeric()
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Split `a,b c` into checked package names.
pub fn parse_packages(list: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in list.iter().flat_map(|s| s.split([',', ' '])) {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        // A local package file (an absolute path) is passed on to mmdebstrap.
        let local = p.starts_with('/') && p.ends_with(".deb") && !p.contains("/../");
        if !valid_package(p) && !local {
            return Err(Error::invalid("package name", format!("{p:?}")));
        }
        if !out.iter().any(|x| x == p) {
            out.push(p.to_owned());
        }
    }
    Ok(out)
}

#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub from: From,
    pub packages: Vec<String>,
    /// Mirror URLs or full `deb ...` lines; empty: mmdebstrap's default.
    pub mirrors: Vec<String>,
}

impl Bootstrap {
    /// The mmdebstrap command line (pure, for tests and `--help` text).
    pub fn args(&self, out: &Path, root: bool) -> Vec<String> {
        let mut a = vec![
            "--variant=minbase".to_owned(),
            format!("--mode={}", if root { "root" } else { "unshare" }),
            "--format=tar".to_owned(),
        ];
        // dpkg installs from inside the chroot, so a local .deb must exist
        // there at the same path while packages are installed, and not after.
        for p in self.packages.iter().filter(|p| p.starts_with('/')) {
            let dir = Path::new(p)
                .parent()
                .map_or("/".into(), |d| d.display().to_string());
            a.push(format!("--setup-hook=mkdir -p \"$1\"{dir}"));
            a.push(format!("--setup-hook=copy-in {p} {dir}"));
            a.push(format!("--customize-hook=rm -f \"$1\"{p}"));
        }
        if !self.packages.is_empty() {
            a.push(format!("--include={}", self.packages.join(",")));
        }
        a.push(self.from.suite.clone());
        a.push(out.display().to_string());
        a.extend(self.mirrors.iter().cloned());
        a
    }

    /// Start mmdebstrap writing `out`, its output going to `log`.
    pub fn spawn(&self, out: &Path, log: &Path) -> Result<Child> {
        let root = rustix::process::geteuid().is_root();
        let logf = std::fs::File::create(log).ctx(|| format!("creating {}", log.display()))?;
        let errf = logf.try_clone().ctx(|| "duplicating the log file".into())?;
        Command::new("mmdebstrap")
            .args(self.args(out, root))
            .stdin(Stdio::null())
            .stdout(logf)
            .stderr(errf)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::Tool(
                        "mmdebstrap is not installed; install it with `apt-get install mmdebstrap`"
                            .into(),
                    )
                } else {
                    Error::Io {
                        context: "starting mmdebstrap".into(),
                        source: e,
                    }
                }
            })
    }
}

/// A clear error from a failed mmdebstrap: its last lines, and the usual
/// cause for users.
pub fn failure(what: &str, status: std::process::ExitStatus, log: &Path) -> Error {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let mut msg = format!(
        "mmdebstrap failed building the {what} ({status}):\n  {}",
        tail.join("\n  ")
    );
    if text.contains("subuid") || text.contains("newuidmap") {
        msg.push_str(
            "\nhint: as a normal user mmdebstrap needs subordinate ids: an entry for you in /etc/subuid and /etc/subgid, and the uidmap package",
        );
    }
    Error::Tool(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_and_packages() {
        assert_eq!(From::parse("debian:bookworm").unwrap().suite, "bookworm");
        assert!(From::parse("ubuntu:jammy").is_err());
        assert!(From::parse("debian:").is_err());
        assert!(From::parse("debian:../x").is_err());
        assert_eq!(
            parse_packages(&["libx11-6,gcc".into(), "g++ gcc".into()]).unwrap(),
            ["libx11-6", "gcc", "g++"]
        );
        assert!(parse_packages(&["rm -rf /".into()]).is_err());
        assert_eq!(
            parse_packages(&["/tmp/x_1.deb".into()]).unwrap(),
            ["/tmp/x_1.deb"]
        );
        assert!(parse_packages(&["/tmp/../etc/x.deb".into()]).is_err());
        assert!(parse_packages(&["--mode=chrootless".into()]).is_err());
    }

    #[test]
    fn command_line() {
        let b = Bootstrap {
            from: From::parse("debian:bookworm").unwrap(),
            packages: vec!["libx11-6".into()],
            mirrors: vec![],
        };
        let a = b.args(Path::new("/t/rt.tar"), false);
        assert!(a.contains(&"--mode=unshare".to_owned()));
        assert!(a.contains(&"--include=libx11-6".to_owned()));
        assert_eq!(a[a.len() - 2..], ["bookworm", "/t/rt.tar"]);
        let local = Bootstrap {
            packages: vec!["/srv/debs/x_1.deb".into()],
            ..b
        };
        let a = local.args(Path::new("/t/rt.tar"), true);
        assert!(a.contains(&"--setup-hook=copy-in /srv/debs/x_1.deb /srv/debs".to_owned()));
        assert!(a.contains(&"--customize-hook=rm -f \"$1\"/srv/debs/x_1.deb".to_owned()));
    }
}
