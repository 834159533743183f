//! The difference between two root filesystem tarballs as one layer: what
//! an SDK adds on top of its runtime. Both trees come from mmdebstrap, so
//! the SDK reuses the runtime's layer unchanged and ships only this diff.
//!
//! Written here because no crate diffs tar streams: three sequential passes
//! (index the lower tree; find changed paths in the upper; write them), so
//! neither tree is ever extracted and no root is needed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::layer::{LayerWriter, header};

/// Everything about an entry that matters to the merged tree.
#[derive(PartialEq, Eq, Debug)]
struct Sig {
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    link: Option<Vec<u8>>,
    content: [u8; 32],
    xattrs: Vec<(String, Vec<u8>)>,
}

/// `./usr/bin/` → `usr/bin`; the root itself is "".
fn norm(p: &[u8]) -> Vec<u8> {
    let mut p = p;
    while let Some(r) = p.strip_prefix(b"./") {
        p = r;
    }
    if p == b"." {
        p = b"";
    }
    p.strip_suffix(b"/").unwrap_or(p).to_vec()
}

fn xattrs<R: Read>(e: &mut tar::Entry<R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = e.pax_extensions()? {
        for x in exts {
            let x = x?;
            if let Ok(k) = x.key()
                && k.starts_with("SCHILY.xattr.")
            {
                out.push((k.to_owned(), x.value_bytes().to_vec()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn sig<R: Read>(e: &mut tar::Entry<R>) -> io::Result<Sig> {
    let h = e.header();
    let (kind, mode, uid, gid, size) = (
        h.entry_type().as_byte(),
        h.mode()?,
        h.uid()?,
        h.gid()?,
        e.size(),
    );
    let link = e.link_name_bytes().map(|l| norm_link(kind, &l));
    let xattrs = xattrs(e)?;
    let mut hasher = Sha256::new();
    if kind == b'0' || kind == b'\0' || kind == b'7' {
        io::copy(e, &mut HashWrite(&mut hasher))?;
    }
    Ok(Sig {
        kind,
        mode,
        uid,
        gid,
        size,
        link,
        content: hasher.finalize().into(),
        xattrs,
    })
}

/// Hard link targets are paths in the archive; symlink targets are text.
fn norm_link(kind: u8, l: &[u8]) -> Vec<u8> {
    if kind == b'1' { norm(l) } else { l.to_vec() }
}

struct HashWrite<'a>(&'a mut Sha256);
impl Write for HashWrite<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn open(path: &Path) -> Result<tar::Archive<BufReader<File>>> {
    let f = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    Ok(tar::Archive::new(BufReader::with_capacity(1 << 20, f)))
}

fn each<F>(path: &Path, mut f: F) -> Result<()>
where
    F: FnMut(Vec<u8>, &mut tar::Entry<BufReader<File>>) -> Result<()>,
{
    let mut ar = open(path)?;
    let rerr = |e: io::Error| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    };
    for e in ar.entries().map_err(rerr)? {
        let mut e = e.map_err(rerr)?;
        let p = norm(&e.path_bytes());
        f(p, &mut e)?;
    }
    Ok(())
}

/// What the diff holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub changed: usize,
    pub removed: usize,
}

/// Write `upper` minus `lower` into `w`: changed and new entries (with
/// their parent directories), and a whiteout for each topmost removed path.
/// Without `lower`, all of `upper`. Either way device nodes and fifos are
/// left out and setuid/setgid bits cleared: the sandbox provides /dev and
/// never raises privileges, so the layer does not carry what import would
/// drop with a warning.
pub fn diff(lower: Option<&Path>, upper: &Path, w: &mut LayerWriter) -> Result<DiffStats> {
    let rerr = |p: &Path| {
        let p = p.display().to_string();
        move |e: io::Error| Error::Io {
            context: format!("reading {p}"),
            source: e,
        }
    };
    // Pass 1: the lower tree's signatures.
    let mut low: HashMap<Vec<u8>, Sig> = HashMap::new();
    if let Some(lower) = lower {
        each(lower, |p, e| {
            low.insert(p, sig(e).map_err(rerr(lower))?);
            Ok(())
        })?;
    }
    // Pass 2: which upper paths differ; hard links tie paths together.
    let mut changed: HashSet<Vec<u8>> = HashSet::new();
    let mut present: HashSet<Vec<u8>> = HashSet::new();
    let mut hardlinks: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    each(upper, |p, e| {
        let s = sig(e).map_err(rerr(upper))?;
        if s.kind == b'1'
            && let Some(t) = &s.link
        {
            hardlinks.push((p.clone(), t.clone()));
        }
        if !p.is_empty() && low.get(&p) != Some(&s) {
            changed.insert(p.clone());
        }
        present.insert(p);
        Ok(())
    })?;
    // A layer cannot link to a file in a lower layer: if either end of a
    // hard link changed, both go into this one.
    loop {
        let before = changed.len();
        for (l, t) in &hardlinks {
            if changed.contains(l) || changed.contains(t) {
                changed.insert(l.clone());
                changed.insert(t.clone());
            }
        }
        if changed.len() == before {
            break;
        }
    }
    let mut removed: Vec<Vec<u8>> = low
        .keys()
        .filter(|p| !p.is_empty() && !present.contains(*p))
        .filter(|p| present.contains(&parent(p)))
        .cloned()
        .collect();
    removed.sort();

    // Pass 3: write. Directory headers are kept so parents can be written
    // before a changed child even when the directory itself did not change.
    let mut tar = tar::Builder::new(&mut *w);
    let mut dirs: HashMap<Vec<u8>, tar::Header> = HashMap::new();
    let mut written: HashSet<Vec<u8>> = HashSet::new();
    each(upper, |p, e| {
        let kind = e.header().entry_type();
        if kind.is_dir() {
            let mut h = e.header().clone();
            h.set_size(0);
            dirs.insert(p.clone(), h);
        }
        if p.is_empty() || !changed.contains(&p) {
            return Ok(());
        }
        if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
            return Ok(());
        }
        ensure_parents(&p, &mut tar, &dirs, &mut written, None)?;
        append_entry(&mut tar, e, &p, upper, None)?;
        written.insert(p);
        Ok(())
    })?;
    for p in &removed {
        ensure_parents(p, &mut tar, &dirs, &mut written, None)?;
        let par = parent(p);
        let base = &p[par.len() + usize::from(!par.is_empty())..];
        let mut name = par.clone();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(b".wh.");
        name.extend_from_slice(base);
        let mut h = header(tar::EntryType::Regular, 0o644, 0);
        tar.append_data(&mut h, bytes_path(&name), io::empty())
            .map_err(werr)?;
    }
    tar.finish().map_err(werr)?;
    Ok(DiffStats {
        changed: changed.len(),
        removed: removed.len(),
    })
}

fn werr(e: io::Error) -> Error {
    Error::Io {
        context: "writing a layer".into(),
        source: e,
    }
}

fn parent(p: &[u8]) -> Vec<u8> {
    p.iter()
        .rposition(|&c| c == b'/')
        .map_or(Vec::new(), |i| p[..i].to_vec())
}

/// Write the directories above `p` that this layer lacks, with the
/// upper tree's own headers (so their modes stay), before `p` itself.
fn ensure_parents(
    p: &[u8],
    tar: &mut tar::Builder<&mut LayerWriter>,
    dirs: &HashMap<Vec<u8>, tar::Header>,
    written: &mut HashSet<Vec<u8>>,
    mtime: Option<u64>,
) -> Result<()> {
    let mut chain = Vec::new();
    let mut q = parent(p);
    while !q.is_empty() && !written.contains(&q) {
        chain.push(q.clone());
        q = parent(&q);
    }
    for d in chain.into_iter().rev() {
        let mut h = dirs
            .get(&d)
            .cloned()
            .unwrap_or_else(|| header(tar::EntryType::Directory, 0o755, 0));
        if let Some(t) = mtime {
            h.set_mtime(t);
        }
        let mut name = d.clone();
        name.push(b'/');
        tar.append_data(&mut h, bytes_path(&name), io::empty())
            .map_err(werr)?;
        written.insert(d);
    }
    Ok(())
}

/// Copy one entry of `upper` (at `p`) into `tar`: its xattrs, its header
/// without setuid/setgid bits, and its data or link target.
fn append_entry(
    tar: &mut tar::Builder<&mut LayerWriter>,
    e: &mut tar::Entry<BufReader<File>>,
    p: &[u8],
    upper: &Path,
    mtime: Option<u64>,
) -> Result<()> {
    let rerr = |e: io::Error| Error::Io {
        context: format!("reading {}", upper.display()),
        source: e,
    };
    let kind = e.header().entry_type();
    let exts = xattrs(e).map_err(rerr)?;
    if !exts.is_empty() {
        tar.append_pax_extensions(exts.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(werr)?;
    }
    let mut h = e.header().clone();
    h.set_mode(h.mode().map_err(rerr)? & !0o6000);
    if let Some(t) = mtime {
        h.set_mtime(t);
    }
    let mut name = p.to_vec();
    if kind.is_dir() {
        name.push(b'/');
    }
    if kind.is_hard_link() || kind.is_symlink() {
        let target = e.link_name_bytes().map(|l| norm_link(kind.as_byte(), &l));
        let target = target.unwrap_or_default();
        h.set_size(0);
        tar.append_link(&mut h, bytes_path(&name), bytes_path(&target))
            .map_err(werr)?;
    } else {
        tar.append_data(&mut h, bytes_path(&name), &mut *e)
            .map_err(werr)?;
    }
    Ok(())
}

/// Write all of `upper` into the layers of `w`: each entry into the one
/// `layer_of` names (`None`: left out; a hard link into its target's), each layer with the
/// parent directories its entries need, and every modification time 0.
/// Device nodes and fifos are left out and setuid/setgid bits cleared, as
/// by [`diff`]. Returns how many entries each layer got.
pub fn split(
    upper: &Path,
    layer_of: &dyn Fn(&[u8]) -> Option<usize>,
    w: &mut [LayerWriter],
) -> Result<Vec<usize>> {
    let n = w.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut tars: Vec<tar::Builder<&mut LayerWriter>> =
        w.iter_mut().map(tar::Builder::new).collect();
    let mut written: Vec<HashSet<Vec<u8>>> = vec![HashSet::new(); n];
    let mut dirs: HashMap<Vec<u8>, tar::Header> = HashMap::new();
    let mut placed: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut counts = vec![0; n];
    each(upper, |p, e| {
        let kind = e.header().entry_type();
        if kind.is_dir() {
            let mut h = e.header().clone();
            h.set_size(0);
            dirs.insert(p.clone(), h);
        }
        if p.is_empty() || kind.is_block_special() || kind.is_character_special() || kind.is_fifo()
        {
            return Ok(());
        }
        // A layer cannot link to a file in another: the link goes where
        // its target went.
        let target = kind
            .is_hard_link()
            .then(|| e.link_name_bytes().map(|l| norm(&l)))
            .flatten();
        let Some(i) = target
            .and_then(|t| placed.get(&t).copied())
            .or_else(|| layer_of(&p))
        else {
            return Ok(());
        };
        let i = i.min(n - 1);
        if written[i].contains(&p) {
            return Ok(());
        }
        // Every time is 0, as OSTree stores them: the times dpkg and the
        // build wrote (its database, directories) would make each build's
        // layers differ, and the same packages must give the same layers.
        ensure_parents(&p, &mut tars[i], &dirs, &mut written[i], Some(0))?;
        append_entry(&mut tars[i], e, &p, upper, Some(0))?;
        written[i].insert(p.clone());
        placed.insert(p, i);
        counts[i] += 1;
        Ok(())
    })?;
    for t in &mut tars {
        t.finish().map_err(werr)?;
    }
    Ok(counts)
}

fn bytes_path(b: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(b))
}

/// Package -> the text of its `var/lib/dpkg/info/PKG.list`; path -> size.
pub type Lists = (BTreeMap<String, String>, HashMap<Vec<u8>, u64>);

/// dpkg's file lists in a root filesystem tarball (package -> the text
/// of `var/lib/dpkg/info/PKG.list`), and the size of every regular file.
pub fn dpkg_lists(tarball: &Path) -> Result<Lists> {
    let mut lists = BTreeMap::new();
    let mut sizes = HashMap::new();
    each(tarball, |p, e| {
        if !e.header().entry_type().is_file() {
            return Ok(());
        }
        let size = e.header().size().unwrap_or(0);
        if p.ends_with(b".list")
            && let Some(pkg) = crate::chunk::info_package(&p)
            && size <= 16 << 20
        {
            let mut text = String::new();
            e.read_to_string(&mut text).map_err(|source| Error::Io {
                context: format!("reading {}", String::from_utf8_lossy(&p)),
                source,
            })?;
            lists.insert(pkg, text);
        }
        sizes.insert(p, size);
        Ok(())
    })?;
    Ok((lists, sizes))
}

/// Read one small file (at most `limit` bytes) out of a tarball.
pub fn read_file(tarball: &Path, want: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    let want = norm(want.trim_start_matches('/').as_bytes());
    let mut found = None;
    each(tarball, |p, e| {
        if found.is_none() && p == want && e.header().entry_type().is_file() {
            let mut buf = Vec::new();
            e.take(limit).read_to_end(&mut buf).ctx(|| {
                format!(
                    "reading {} from {}",
                    String::from_utf8_lossy(&want),
                    tarball.display()
                )
            })?;
            found = Some(buf);
        }
        Ok(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        Link(&'a str, &'a str),
    }

    fn tarball(path: &Path, entries: &[E]) {
        let mut b = tar::Builder::new(File::create(path).unwrap());
        for e in entries {
            match e {
                E::Dir(p) => {
                    let mut h = header(tar::EntryType::Directory, 0o755, 5);
                    b.append_data(&mut h, p, io::empty()).unwrap();
                }
                E::File(p, c) => {
                    let mut h = header(tar::EntryType::Regular, 0o644, 5);
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, p, c.as_bytes()).unwrap();
                }
                E::Link(p, t) => {
                    let mut h = header(tar::EntryType::Link, 0o644, 5);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        b.finish().unwrap();
    }

    fn read_layer(path: &Path) -> BTreeMap<String, String> {
        let f = File::open(path).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut out = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().display().to_string();
            let mut s = String::new();
            if let Some(l) = e.link_name().unwrap() {
                s = format!("-> {}", l.display());
            } else {
                e.read_to_string(&mut s).unwrap();
            }
            out.insert(p, s);
        }
        out
    }

    #[test]
    fn adds_changes_removes_and_links() {
        let t = tempfile::tempdir().unwrap();
        let (lo, up, out) = (t.path().join("lo"), t.path().join("up"), t.path().join("l"));
        tarball(
            &lo,
            &[
                E::Dir("./"),
                E::Dir("./usr/"),
                E::Dir("./usr/bin/"),
                E::File("./usr/bin/same", "same"),
                E::File("./usr/bin/edit", "old"),
                E::File("./usr/bin/hl", "shared"),
                E::Dir("./gone/"),
                E::File("./gone/x", "x"),
                E::File("./usr/bin/rm", "rm"),
            ],
        );
        tarball(
            &up,
            &[
                E::Dir("./"),
                E::Dir("./usr/"),
                E::Dir("./usr/bin/"),
                E::File("./usr/bin/same", "same"),
                E::File("./usr/bin/edit", "new"),
                E::File("./usr/bin/hl", "shared"),
                E::Link("./usr/bin/hl2", "./usr/bin/hl"),
                E::Dir("./usr/include/"),
                E::File("./usr/include/x.h", "int x;"),
            ],
        );
        let mut w = LayerWriter::create(&out).unwrap();
        let stats = diff(Some(&lo), &up, &mut w).unwrap();
        w.finish().unwrap();
        let got = read_layer(&out);
        let want: BTreeMap<String, String> = [
            ("usr/", ""),
            ("usr/bin/", ""),
            ("usr/bin/edit", "new"),
            // The link is new, so its unchanged target comes along.
            ("usr/bin/hl", "shared"),
            ("usr/bin/hl2", "-> usr/bin/hl"),
            ("usr/include/", ""),
            ("usr/include/x.h", "int x;"),
            (".wh.gone", ""),
            ("usr/bin/.wh.rm", ""),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(stats.removed, 2);
    }

    #[test]
    fn split_puts_each_entry_in_its_layer_with_its_parents() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path().join("up");
        tarball(
            &up,
            &[
                E::Dir("./"),
                E::Dir("./usr/"),
                E::Dir("./usr/bin/"),
                E::File("./usr/bin/a", "a"),
                E::File("./usr/bin/b", "b"),
                E::Link("./usr/bin/b2", "./usr/bin/b"),
                E::Dir("./etc/"),
                E::File("./etc/rest", "rest"),
                E::File("./etc/gone", "left out"),
            ],
        );
        let paths: Vec<_> = (0..3).map(|i| t.path().join(format!("l{i}"))).collect();
        let mut w: Vec<LayerWriter> = paths
            .iter()
            .map(|p| LayerWriter::create(p).unwrap())
            .collect();
        let layer_of = |p: &[u8]| match p {
            b"usr/bin/a" => Some(1),
            b"usr/bin/b" | b"usr/bin/b2" => Some(2),
            b"etc/gone" => None,
            // The link follows its target, whatever this says.
            _ => Some(0),
        };
        let counts = split(&up, &layer_of, &mut w).unwrap();
        for w in w {
            w.finish().unwrap();
        }
        let got: Vec<Vec<String>> = paths
            .iter()
            .map(|p| read_layer(p).into_keys().collect())
            .collect();
        assert_eq!(got[0], ["etc/", "etc/rest", "usr/", "usr/bin/"]);
        assert_eq!(got[1], ["usr/", "usr/bin/", "usr/bin/a"]);
        assert_eq!(got[2], ["usr/", "usr/bin/", "usr/bin/b", "usr/bin/b2"]);
        assert_eq!(counts, [4, 1, 2]);
    }

    #[test]
    fn identical_trees_give_an_empty_layer() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        tarball(&a, &[E::Dir("./"), E::File("./f", "x")]);
        let mut w = LayerWriter::create(&t.path().join("l")).unwrap();
        assert_eq!(diff(Some(&a), &a, &mut w).unwrap(), DiffStats::default());
        w.finish().unwrap();
        assert!(read_layer(&t.path().join("l")).is_empty());
    }

    #[test]
    fn whole_tree_without_devices_or_setid_bits() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let mut b = tar::Builder::new(File::create(&a).unwrap());
        let mut h = header(tar::EntryType::Char, 0o666, 5);
        b.append_data(&mut h, "./dev/null", io::empty()).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o4755, 5);
        h.set_size(2);
        b.append_data(&mut h, "./usr/bin/su", &b"su"[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let out = t.path().join("l");
        let mut w = LayerWriter::create(&out).unwrap();
        diff(None, &a, &mut w).unwrap();
        w.finish().unwrap();
        let f = File::open(&out).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut seen = vec![];
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            seen.push((
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("usr/".into(), 0o755),
                ("usr/bin/".into(), 0o755),
                ("usr/bin/su".into(), 0o755)
            ]
        );
    }

    #[test]
    fn reads_one_file() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        tarball(
            &a,
            &[E::Dir("./var/"), E::File("./var/status", "Package: x")],
        );
        assert_eq!(
            read_file(&a, "/var/status", 100).unwrap().as_deref(),
            Some(&b"Package: x"[..])
        );
        assert_eq!(read_file(&a, "var/nope", 100).unwrap(), None);
    }
}
