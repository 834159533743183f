//! Apps from Debian packages (`packages = [...]`, `debs = [...]` in a build
//! manifest). apt runs in a sandbox on the runtime itself, as the user, so
//! it resolves against the runtime's own dpkg status and its apt sources:
//! only what the runtime lacks is downloaded. Each package is unpacked
//! with dpkg-deb and tar into one tree, which becomes one layer over the
//! runtime's unchanged layers. Maintainer scripts do not run (they need
//! root and would change the runtime's files); the few caches a desktop app
//! needs from them are made here: GSettings schemas, gdk-pixbuf loaders and
//! the shared MIME database. The script is fixed text; package names and
//! file paths reach it only as arguments.

use std::path::Path;

use crate::dpkg::Package;
use crate::error::{Error, Result};

/// Where the sandbox sees its scratch directory.
pub const WORK: &str = "/work";
/// Where the sandbox sees the manifest's directory (local `.deb` files).
pub const SOURCE: &str = "/source";
/// The tree the packages are unpacked into, under the scratch directory.
pub const ROOT: &str = "root";
/// The list of unpacked packages, under the scratch directory.
pub const LIST: &str = "packages.tsv";

/// The script run as `/bin/sh -c SCRIPT berth-packages NAME... /source/X.deb...`.
pub const SCRIPT: &str = r#"set -eu
W=/work
R=$W/root
mkdir -p "$W/lists/partial" "$W/cache/archives/partial" "$W/log" "$W/tools" "$R"
A="-q -o Dir::State::Lists=$W/lists -o Dir::Cache=$W/cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Debug::NoLocking=1 -o Dir::State::extended_states=$W/extended_states -o Dir::Log=$W/log -o APT::Install-Recommends=false -o APT::Install-Suggests=false"
echo "berth: the runtime has $(grep -c '^Package:' /var/lib/dpkg/status) packages; fetching what it lacks" >&2
apt-get $A update >&2
apt-get $A install -y --download-only "$@" >&2
: > "$W/packages.tsv"
for deb in "$W"/cache/archives/*.deb "$@"; do
  case "$deb" in *.deb) ;; *) continue ;; esac
  [ -f "$deb" ] || continue
  # Not `dpkg-deb -x`: as root in a user namespace it would give files
  # owners the namespace cannot map. The layer makes everything root's.
  dpkg-deb --fsys-tarfile "$deb" | tar -x --no-same-owner -C "$R"
  dpkg-deb --show --showformat='${Package}\t${Version}\t${Architecture}\n' "$deb" >> "$W/packages.tsv"
done
# A merged-/usr runtime has /lib -> usr/lib: a real lib/ in the layer would
# hide the runtime's whole /usr/lib.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ] && [ -d "$R/$d" ] && [ ! -L "$R/$d" ]; then
    t=$(readlink "/$d"); t=${t#/}
    mkdir -p "$R/$t"
    cp -a "$R/$d/." "$R/$t/"
    rm -rf "${R:?}/$d"
  fi
done
LIBS=$(for l in "$R"/usr/lib/*-linux-gnu /usr/lib/*-linux-gnu; do [ -d "$l" ] && printf '%s:' "$l"; done)
LIBS=${LIBS%:}
tool() { # a program of the runtime, of the new packages, or fetched alone
  for p in /usr/bin/"$1" /usr/lib/*/glib-2.0/"$1" "$R"/usr/bin/"$1" "$R"/usr/lib/*/glib-2.0/"$1"; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  (cd "$W/tools" && apt-get $A download "$2" >&2 \
    && dpkg-deb --fsys-tarfile "$W"/tools/"$2"_*.deb | tar -x --no-same-owner -C "$W/tools") || return 0
  for p in "$W"/tools/usr/bin/"$1" "$W"/tools/usr/lib/*/glib-2.0/"$1"; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  return 0
}
S=usr/share/glib-2.0/schemas
if ls "$R/$S"/*.xml >/dev/null 2>&1; then
  mkdir -p "$W/schemas"
  for f in "/$S"/* "$R/$S"/*; do
    case "$f" in *.xml|*.override) cp "$f" "$W/schemas/" ;; esac
  done
  gcs=$(tool glib-compile-schemas libglib2.0-bin)
  if [ -n "$gcs" ]; then
    LD_LIBRARY_PATH=$LIBS "$gcs" --targetdir="$R/$S" "$W/schemas"
  else
    echo "berth: warning: no glib-compile-schemas; the app's settings schemas are not compiled" >&2
  fi
fi
for q in "$R"/usr/lib/*/gdk-pixbuf-2.0/gdk-pixbuf-query-loaders /usr/lib/*/gdk-pixbuf-2.0/gdk-pixbuf-query-loaders; do
  [ -x "$q" ] || continue
  dir=$(dirname "$q" | sed "s|^$R||")
  new=$(ls "$R$dir"/2.10.0/loaders/*.so 2>/dev/null || true)
  [ -n "$new" ] || break
  mkdir -p "$R$dir/2.10.0"
  LD_LIBRARY_PATH=$LIBS "$q" "$R$dir"/2.10.0/loaders/*.so $(ls "$dir"/2.10.0/loaders/*.so 2>/dev/null || true) \
    | sed "s|$R/|/|g" > "$R$dir/2.10.0/loaders.cache"
  break
done
if ls "$R"/usr/share/mime/packages/*.xml >/dev/null 2>&1; then
  umd=$(tool update-mime-database shared-mime-info)
  if [ -n "$umd" ]; then
    cp -n /usr/share/mime/packages/*.xml "$R/usr/share/mime/packages/" 2>/dev/null || true
    LD_LIBRARY_PATH=$LIBS "$umd" "$R/usr/share/mime"
  fi
fi
"#;

/// The packages unpacked, from the script's list (`name\tversion\tarch`),
/// sorted and without duplicates. A line that is not three fields is an
/// error: the list is what the image records about itself.
pub fn parse_list(text: &str) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            [n, v, a] if crate::debian::valid_package(n) && !v.is_empty() && !a.is_empty() => {
                out.push(Package {
                    name: (*n).to_owned(),
                    version: (*v).to_owned(),
                    arch: (*a).to_owned(),
                });
            }
            _ => {
                return Err(Error::invalid("unpacked package list", format!("{line:?}")));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The arguments for [`SCRIPT`]: package names as they are, local `.deb`
/// files by their path in the sandbox.
pub fn script_args(packages: &[String], debs: &[String]) -> Vec<String> {
    packages
        .iter()
        .cloned()
        .chain(debs.iter().map(|d| format!("{SOURCE}/{d}")))
        .collect()
}

/// What the unpacked packages say about the app `id`: its desktop entry
/// (`usr/share/applications/ID.desktop`; its main group, without
/// translations or actions: the review and the menu show berth's checked
/// words, and translations carry invisible formatting characters berth
/// refuses in labels) and the path in the image of its largest icon
/// (`Icon=` in the hicolor theme), if they have them.
///
/// The tree was made in the sandbox: it is read only beneath `root`, never
/// through a symlink that leaves it, and only regular files.
pub fn desktop_and_icon(root: &Path, id: &str) -> (Option<String>, Option<String>) {
    use berth_image::source::{DirSource, Source};
    let Ok(tree) = DirSource::open(root) else {
        return (None, None);
    };
    let entry = tree
        .read_small(&format!("usr/share/applications/{id}.desktop"), 256 * 1024)
        .ok()
        .map(|b| main_group(&String::from_utf8_lossy(&b)));
    let icon_name = entry.as_deref().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("Icon="))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && !s.contains('/') && !s.contains(".."))
    });
    let icon = icon_name.and_then(|name| {
        [
            "scalable", "512x512", "256x256", "128x128", "96x96", "64x64", "48x48",
        ]
        .iter()
        .flat_map(|size| {
            ["svg", "png"].map(|ext| format!("usr/share/icons/hicolor/{size}/apps/{name}.{ext}"))
        })
        .find(|rel| tree.open(rel).is_ok())
        .map(|rel| format!("/{rel}"))
    });
    (entry, icon)
}

/// `[Desktop Entry]` and its untranslated keys (no `Key[locale]`, no
/// `Actions`, no other groups), comments and blank lines dropped.
fn main_group(text: &str) -> String {
    let mut out = String::from("[Desktop Entry]\n");
    let mut inside = false;
    for line in text.lines() {
        let l = line.trim_end();
        if l.starts_with('[') {
            inside = l == "[Desktop Entry]";
            continue;
        }
        if !inside || l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((k, _)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.contains('[') || k == "Actions" || k == "Version" {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_strictly() {
        let l = parse_list("mousepad\t0.5.10-2\tamd64\nlibxfce4ui-2-0\t4.18.2-2\tamd64\n\nmousepad\t0.5.10-2\tamd64\n")
            .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "libxfce4ui-2-0");
        assert!(parse_list("mousepad 0.5 amd64").is_err());
        assert!(parse_list("Bad\t1\tamd64").is_err());
        assert!(parse_list("").unwrap().is_empty());
    }

    #[test]
    fn local_debs_are_arguments_by_path() {
        assert_eq!(
            script_args(&["mousepad".into()], &["pkgs/x.deb".into()]),
            vec!["mousepad".to_owned(), "/source/pkgs/x.deb".to_owned()]
        );
    }

    #[test]
    fn desktop_entry_and_largest_icon() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/share/applications")).unwrap();
        std::fs::write(
            r.join("usr/share/applications/org.example.Ed.desktop"),
            "# c\n[Desktop Entry]\nName=Ed\nName[te]=\u{c2e}\u{200c}x\nIcon=org.example.Ed\nExec=ed %F\nActions=p;\n\n[Desktop Action p]\nName=Prefs\n",
        )
        .unwrap();
        for size in ["48x48", "128x128"] {
            let dir = r.join(format!("usr/share/icons/hicolor/{size}/apps"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("org.example.Ed.png"), b"png").unwrap();
        }
        // A symlink out of the tree is not followed.
        std::os::unix::fs::symlink(
            "/etc/hostname",
            r.join("usr/share/applications/org.example.Out.desktop"),
        )
        .unwrap();
        assert_eq!(desktop_and_icon(r, "org.example.Out").0, None);
        let (e, i) = desktop_and_icon(r, "org.example.Ed");
        assert_eq!(
            e.as_deref(),
            Some("[Desktop Entry]\nName=Ed\nIcon=org.example.Ed\nExec=ed %F\n")
        );
        assert_eq!(
            i.as_deref(),
            Some("/usr/share/icons/hicolor/128x128/apps/org.example.Ed.png")
        );
        assert_eq!(desktop_and_icon(r, "org.example.Other"), (None, None));
    }
}
