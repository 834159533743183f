//! dpkg's status database (`/var/lib/dpkg/status`): a pure parser for the
//! package list a runtime records about itself.

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// Installed packages (status `install ok installed`), sorted by name.
/// Unknown fields and other states are skipped; a malformed paragraph is
/// skipped rather than failing the whole list.
pub fn parse_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut installed) = (None, None, None, false);
        for line in para.lines() {
            if line.starts_with([' ', '\t']) {
                continue; // continuation of a multi-line field
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k {
                "Package" => name = Some(v),
                "Version" => version = Some(v),
                "Architecture" => arch = Some(v),
                "Status" => installed = v.split_whitespace().last() == Some("installed"),
                _ => {}
            }
        }
        if let (Some(n), Some(v), Some(a), true) = (name, version, arch, installed) {
            out.push(Package {
                name: n.to_owned(),
                version: v.to_owned(),
                arch: a.to_owned(),
            });
        }
    }
    out.sort();
    out
}

/// The label form: one `name version arch` per line.
pub fn to_label(pkgs: &[Package]) -> String {
    pkgs.iter()
        .map(|p| format!("{} {} {}", p.name, p.version, p.arch))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse the label form back; bad lines are skipped.
pub fn from_label(s: &str) -> Vec<Package> {
    s.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(Package {
                name: w.next()?.to_owned(),
                version: w.next()?.to_owned(),
                arch: w.next()?.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: zlib1g\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\nDescription: compression\n library\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n";

    #[test]
    fn installed_only_and_sorted() {
        let p = parse_status(STATUS);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "base-files");
        assert_eq!(p[1].version, "1:1.2.13.dfsg-1");
    }

    #[test]
    fn label_round_trip() {
        let p = parse_status(STATUS);
        assert_eq!(from_label(&to_label(&p)), p);
    }

    #[test]
    fn garbage_is_empty() {
        assert!(parse_status("\0\0\n: :\n\nPackage\n").is_empty());
    }
}
