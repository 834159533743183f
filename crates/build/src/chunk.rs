//! A runtime split into layers by Debian package, so that an update of one
//! package changes one small layer (rpm-ostree's chunked container images
//! are the model). The plan is a pure function of the package list and
//! sizes, so the same packages give the same layers:
//!
//! - packages of at least [`OWN_LAYER_BYTES`] get a layer each, largest
//!   first, while there is room (a big package alone: its update costs
//!   itself);
//! - the others go to a fixed number of buckets by a hash of their name,
//!   never by size or rank, so one package's update moves nothing else;
//! - what no package owns (dpkg's database, files maintainer scripts
//!   wrote, ld.so.cache) goes to layer 0, the last of the stack.
//!
//! rpm-ostree's known pitfall, one large unpackaged layer, is avoided by
//! giving dpkg's per-package files (`var/lib/dpkg/info/PKG.*`) to their
//! package's layer.

use std::collections::{BTreeMap, HashMap};

/// A package at least this big (installed bytes) gets a layer of its own.
pub const OWN_LAYER_BYTES: u64 = 1 << 20;

/// Which layer each package goes to, for `layers` layers in all.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub layers: usize,
    pub of_package: BTreeMap<String, usize>,
}

/// FNV-1a: stable across builds and machines, unlike std's hasher.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Plan `layers` layers (at least 2: the rest, and one bucket) for these
/// packages and their installed sizes.
pub fn plan(sizes: &BTreeMap<String, u64>, layers: usize) -> Plan {
    let layers = layers.max(2);
    // A fixed share of buckets, so the bucket of a small package depends
    // on its name and the layer count only.
    let buckets = (layers / 2).max(1);
    let own_room = layers - 1 - buckets;
    let mut big: Vec<(&String, u64)> = sizes
        .iter()
        .filter(|(_, s)| **s >= OWN_LAYER_BYTES)
        .map(|(n, s)| (n, *s))
        .collect();
    big.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    big.truncate(own_room);
    let mut of_package = BTreeMap::new();
    for (i, (name, _)) in big.iter().enumerate() {
        of_package.insert((*name).clone(), 1 + buckets + i);
    }
    for name in sizes.keys() {
        of_package
            .entry(name.clone())
            .or_insert_with(|| 1 + (fnv(name) % buckets as u64) as usize);
    }
    Plan { layers, of_package }
}

/// Top directories that are links into /usr on a merged-/usr system.
const MERGED: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// dpkg's file lists (`var/lib/dpkg/info/PKG[:ARCH].list` text, one path
/// per line) as path -> package. A path several packages list (their
/// shared directories) goes to the first by name.
pub fn owners(lists: &BTreeMap<String, String>) -> HashMap<Vec<u8>, String> {
    let mut out: HashMap<Vec<u8>, String> = HashMap::new();
    for (pkg, text) in lists {
        for line in text.lines() {
            let p = line.trim_start_matches('/');
            if p.is_empty() || p == "." {
                continue;
            }
            out.entry(p.as_bytes().to_vec())
                .or_insert_with(|| pkg.clone());
            // Merged /usr: dpkg lists `/lib/x/libc.so.6`, the tree holds
            // it at `usr/lib/x/libc.so.6` (`/lib` is a link to `usr/lib`).
            let top = p.split('/').next().unwrap_or_default();
            if MERGED.contains(&top) {
                out.entry(format!("usr/{p}").into_bytes())
                    .or_insert_with(|| pkg.clone());
            }
        }
    }
    out
}

/// The package a `var/lib/dpkg/info/` file belongs to (`PKG.list`,
/// `PKG:amd64.md5sums`, ...).
pub fn info_package(path: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(path.strip_prefix(b"var/lib/dpkg/info/")?).ok()?;
    let (stem, _ext) = name.rsplit_once('.')?;
    let pkg = stem.split_once(':').map_or(stem, |(p, _)| p);
    (!pkg.is_empty() && !pkg.contains('/')).then(|| pkg.to_owned())
}

/// Backups dpkg and debconf keep of their databases: nothing reads them
/// in a runtime, and they would double what every update changes.
pub fn is_backup(path: &[u8]) -> bool {
    (path.starts_with(b"var/lib/dpkg/") || path.starts_with(b"var/cache/debconf/"))
        && path.ends_with(b"-old")
}

impl Plan {
    /// The layer of a path (relative, no leading `/`), given the owners.
    /// debconf's database goes with debconf: it changes only when a
    /// package with questions does, unlike dpkg's status in layer 0.
    pub fn layer_of(&self, path: &[u8], owners: &HashMap<Vec<u8>, String>) -> usize {
        let pkg = owners
            .get(path)
            .cloned()
            .or_else(|| info_package(path))
            .or_else(|| {
                path.starts_with(b"var/cache/debconf/")
                    .then(|| "debconf".to_owned())
            });
        pkg.and_then(|p| self.of_package.get(&p).copied())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sizes(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
        list.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    #[test]
    fn big_packages_alone_small_ones_by_name_and_stable() {
        let s = sizes(&[
            ("libc6", 13 << 20),
            ("coreutils", 18 << 20),
            ("hostname", 50 << 10),
            ("libx11-6", 1400 << 10),
            ("tzdata", 3 << 20),
            ("zlib1g", 160 << 10),
        ]);
        let p = plan(&s, 8);
        assert_eq!(p.layers, 8);
        // 4 buckets (1..=4), room for 3 own layers (5..=7): the three largest.
        assert_eq!(p.of_package["coreutils"], 5);
        assert_eq!(p.of_package["libc6"], 6);
        assert_eq!(p.of_package["tzdata"], 7);
        assert!((1..=4).contains(&p.of_package["libx11-6"]));
        assert!(p.of_package.values().all(|l| *l < 8));
        // Same input, same plan; a small package's update moves nothing.
        assert_eq!(plan(&s, 8), p);
        let mut s2 = s.clone();
        s2.insert("hostname".into(), 52 << 10);
        assert_eq!(plan(&s2, 8), p);
        // A new small package goes to a bucket; the others stay.
        s2.insert("libxau6".into(), 30 << 10);
        let p2 = plan(&s2, 8);
        for (k, v) in &p.of_package {
            assert_eq!(p2.of_package[k], *v, "{k}");
        }
    }

    #[test]
    fn paths_go_to_their_package_or_the_rest() {
        let lists = BTreeMap::from([
            (
                "hostname".to_owned(),
                "/.\n/bin\n/bin/hostname\n".to_owned(),
            ),
            (
                "libc6".to_owned(),
                "/lib/x86_64-linux-gnu/libc.so.6\n".to_owned(),
            ),
            ("coreutils".to_owned(), "/.\n/bin\n/bin/ls\n".to_owned()),
        ]);
        let o = owners(&lists);
        assert_eq!(o[b"bin/hostname".as_slice()], "hostname");
        assert_eq!(o[b"usr/bin/hostname".as_slice()], "hostname");
        assert_eq!(o[b"usr/lib/x86_64-linux-gnu/libc.so.6".as_slice()], "libc6");
        assert_eq!(o[b"bin".as_slice()], "coreutils");
        let p = plan(&sizes(&[("hostname", 10), ("coreutils", 10)]), 4);
        assert_eq!(p.layer_of(b"bin/hostname", &o), p.of_package["hostname"]);
        assert_eq!(
            p.layer_of(b"var/lib/dpkg/info/hostname.md5sums", &o),
            p.of_package["hostname"]
        );
        assert_eq!(
            p.layer_of(b"var/lib/dpkg/info/coreutils:amd64.list", &o),
            p.of_package["coreutils"]
        );
        assert_eq!(p.layer_of(b"var/lib/dpkg/status", &o), 0);
        assert_eq!(p.layer_of(b"etc/ld.so.cache", &o), 0);
        assert!(is_backup(b"var/lib/dpkg/status-old"));
        assert!(is_backup(b"var/cache/debconf/templates.dat-old"));
        assert!(!is_backup(b"var/lib/dpkg/status"));
        assert!(!is_backup(b"etc/foo-old"));
        assert_eq!(info_package(b"var/lib/dpkg/info/x/y.list"), None);
    }
}
