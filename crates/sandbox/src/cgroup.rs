//! One cgroup per instance, created directly in cgroupfs: pure v2, v1, or
//! hybrid (v1 controllers plus a v2 `unified` mount). Parsers are pure;
//! the rest writes to /sys/fs/cgroup.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::Limits;

/// Where cgroup hierarchies are mounted (from /proc/self/mountinfo).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub v2: Option<PathBuf>,
    /// v1 hierarchy name (controller, or `name=systemd`) -> mount point.
    pub v1: BTreeMap<String, PathBuf>,
}

pub fn parse_mountinfo(s: &str) -> Layout {
    let mut l = Layout::default();
    for line in s.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut r = right.split(' ');
        let (fstype, _src, opts) = (r.next(), r.next(), r.next().unwrap_or_default());
        match fstype {
            Some("cgroup2") => l.v2 = Some(PathBuf::from(mount_point)),
            Some("cgroup") => {
                for o in opts.split(',') {
                    if matches!(o, "memory" | "cpu" | "pids" | "freezer" | "blkio")
                        || o.starts_with("name=")
                    {
                        l.v1.insert(o.to_owned(), PathBuf::from(mount_point));
                    }
                }
            }
            _ => {}
        }
    }
    l
}

/// A process's cgroup paths (from /proc/PID/cgroup): v2 path and v1 paths
/// per hierarchy name.
pub fn parse_proc_cgroup(s: &str) -> (Option<String>, BTreeMap<String, String>) {
    let mut v2 = None;
    let mut v1 = BTreeMap::new();
    for line in s.lines() {
        let mut p = line.splitn(3, ':');
        let (_id, names, path) = (
            p.next(),
            p.next().unwrap_or_default(),
            p.next().unwrap_or_default(),
        );
        if names.is_empty() {
            v2 = Some(path.to_owned());
        } else {
            for n in names.split(',') {
                v1.insert(n.to_owned(), path.to_owned());
            }
        }
    }
    (v2, v1)
}

/// The scope (and cgroup) name of an instance of `app` (an app ID, or an
/// image name without its tag):
/// `app-berth-<app>-<instance>.scope`, the form desktops parse
/// (`app-<launcher>-<ApplicationID>-<RANDOM>.scope`, from systemd's
/// desktop-environment conventions), the app part escaped as systemd
/// escapes unit names, so `-` in it is `\x2d` and the last `-` ends it.
pub fn scope_name(app: &str, instance: &str) -> String {
    // An image run keeps its whole name: `/` and `:` are never in an app
    // ID, so an image named like an app (`evil.example/org.mozilla.firefox`)
    // is not taken for it. Its tag is left out.
    let base = match app.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => app,
    };
    let mut esc = String::new();
    for (i, b) in base.bytes().enumerate() {
        let piece = if b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && i > 0) {
            char::from(b).to_string()
        } else {
            format!("\\x{b:02x}")
        };
        // Unit names stop at 255 bytes.
        if esc.len() + piece.len() > 160 {
            break;
        }
        esc.push_str(&piece);
    }
    if esc.is_empty() {
        esc.push_str("app");
    }
    format!("app-berth-{esc}-{instance}.scope")
}

/// The app and instance a cgroup path names, if its last component is a
/// berth scope (`scope_name`).
pub fn parse_scope_name(path: &str) -> Option<(String, String)> {
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let rest = last.strip_prefix("app-berth-")?.strip_suffix(".scope")?;
    let (app, instance) = rest.rsplit_once('-')?;
    if app.is_empty() || instance.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    let b = app.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = b.get(i + 2..i + 4)?;
            if b.get(i + 1) != Some(&b'x') || !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let app = String::from_utf8(out).ok()?;
    // What berth escapes back is printable; anything else is not its name.
    if app.chars().any(char::is_control) {
        return None;
    }
    Some((app, instance.to_owned()))
}

/// v2 `cpu.weight` (1-10000, default 100) as v1 `cpu.shares` (default 1024).
pub fn weight_to_shares(w: u64) -> u64 {
    (w.clamp(1, 10_000) * 1024 / 100).max(2)
}

/// The whole disk (`MAJ:MIN`) a file system device is on, from sysfs: a
/// partition's parent (io.max and blkio take whole disks). None for a
/// device sysfs does not know (tmpfs, overlay, a network file system).
pub fn disk_of(dev: u64) -> Option<String> {
    let (maj, min) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
    let real = fs::canonicalize(&sys).ok()?;
    if real.join("partition").exists() {
        let parent = real.parent()?;
        return Some(
            fs::read_to_string(parent.join("dev"))
                .ok()?
                .trim()
                .to_owned(),
        );
    }
    Some(format!("{maj}:{min}"))
}

/// I/O limit lines to write, (file, line), and notes of what is not enforced.
type IoPlan = (Vec<(PathBuf, String)>, Vec<String>);

/// The I/O limit lines to write: (file, line) for the files that exist in
/// `dir`, and a note for each limit it has no file for.
fn io_files(dir: &Path, limits: &Limits, v1: bool) -> IoPlan {
    let (mut files, mut notes) = (Vec::new(), Vec::new());
    if let Some(w) = limits.io_weight {
        // v2: io.weight (io.cost) or io.bfq.weight (BFQ, 1-1000); v1:
        // blkio.weight (CFQ/BFQ, 10-1000).
        let choice = if v1 {
            [("blkio.weight", (w / 10).clamp(10, 1000).to_string())]
                .into_iter()
                .find(|(f, _)| dir.join(f).exists())
        } else {
            [
                ("io.weight", format!("default {}", w.clamp(1, 10_000))),
                ("io.bfq.weight", format!("default {}", w.clamp(1, 1000))),
            ]
            .into_iter()
            .find(|(f, _)| dir.join(f).exists())
        };
        match choice {
            Some((f, line)) => files.push((dir.join(f), line)),
            None => notes.push(format!(
                "io-weight={w} is not enforced: the {} cgroup has no I/O weight (the disk's scheduler has no weights, e.g. no BFQ)",
                if v1 { "blkio" } else { "io" }
            )),
        }
    }
    let throttled = limits.io_read.is_some() || limits.io_write.is_some();
    if throttled && limits.io_devices.is_empty() {
        notes.push(
            "io-read/io-write are not enforced: the app's files are on no disk the kernel can throttle"
                .into(),
        );
    } else if throttled && v1 {
        for (f, v) in [
            ("blkio.throttle.read_bps_device", limits.io_read),
            ("blkio.throttle.write_bps_device", limits.io_write),
        ] {
            let Some(v) = v else { continue };
            if !dir.join(f).exists() {
                notes.push(format!("{f} is missing: I/O bandwidth is not enforced"));
                continue;
            }
            for d in &limits.io_devices {
                files.push((dir.join(f), format!("{d} {v}")));
            }
        }
    } else if throttled {
        if dir.join("io.max").exists() {
            for d in &limits.io_devices {
                let mut line = d.clone();
                if let Some(r) = limits.io_read {
                    line.push_str(&format!(" rbps={r}"));
                }
                if let Some(w) = limits.io_write {
                    line.push_str(&format!(" wbps={w}"));
                }
                files.push((dir.join("io.max"), line));
            }
        } else {
            notes.push("io.max is missing: I/O bandwidth is not enforced".into());
        }
    }
    (files, notes)
}

/// An instance's cgroup: one directory per hierarchy it lives in.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cgroup {
    pub name: String,
    /// Every directory, v2 first (if any).
    pub dirs: Vec<PathBuf>,
    /// The v2 directory, which a child can be cloned straight into.
    #[serde(default)]
    pub v2: Option<PathBuf>,
    /// The path desktops see (v2 path, or the name=systemd v1 path).
    pub display: String,
    /// Created by systemd (a transient scope): systemd removes it.
    #[serde(default)]
    pub systemd: bool,
    /// Limits asked for that this host does not enforce, in words.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Create the instance cgroup and apply limits. `Err` is a one-line reason
/// why no cgroup (or limit) is available; the caller warns and runs anyway.
pub fn create(name: &str, limits: &Limits) -> Result<Cgroup, String> {
    let mountinfo = crate::sys::read_proc("/proc/self/mountinfo")
        .map_err(|e| format!("reading mountinfo: {e}"))?;
    let own = crate::sys::read_proc("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let layout = parse_mountinfo(&mountinfo);
    let (own_v2, own_v1) = parse_proc_cgroup(&own);
    let root = rustix::process::geteuid().is_root();
    let mut cg = Cgroup {
        name: name.to_owned(),
        ..Default::default()
    };
    let mut limit_files: Vec<(PathBuf, String)> = Vec::new();
    // I/O limits: best effort, each one the host cannot take noted.
    let mut io_v2: Option<IoPlan> = None;
    let mut io_lines: Vec<(PathBuf, String)> = Vec::new();

    if let Some(v2) = &layout.v2 {
        let controllers = crate::sys::read_proc(v2.join("cgroup.controllers")).unwrap_or_default();
        let parent = if root {
            // Enable what we need along the way; failures only lose limits.
            let slice = v2.join("berth.slice");
            let _ = fs::create_dir_all(&slice);
            for d in [v2.as_path(), slice.as_path()] {
                for c in ["memory", "cpu", "pids", "io"] {
                    if controllers.split_whitespace().any(|x| x == c) {
                        let _ = fs::write(d.join("cgroup.subtree_control"), format!("+{c}"));
                    }
                }
            }
            Some(slice)
        } else {
            // Rootless: a sibling of our own cgroup, if it was delegated to us.
            own_v2
                .as_deref()
                .map(|p| v2.join(p.trim_start_matches('/')))
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|p| rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok())
        };
        if let Some(parent) = parent {
            let dir = parent.join(name);
            if fs::create_dir(&dir).is_ok() {
                cg.display = format!("/{}", dir.strip_prefix(v2).unwrap_or(&dir).display());
                let have = |f: &str| dir.join(f).exists();
                if let Some(m) = limits.memory.filter(|_| have("memory.max")) {
                    limit_files.push((dir.join("memory.max"), m.to_string()));
                }
                if let Some(w) = limits.cpu_weight.filter(|_| have("cpu.weight")) {
                    limit_files.push((dir.join("cpu.weight"), w.to_string()));
                }
                if let Some(p) = limits.pids.filter(|_| have("pids.max")) {
                    limit_files.push((dir.join("pids.max"), p.to_string()));
                }
                if limits.io() && controllers.split_whitespace().any(|c| c == "io") {
                    let (f, n) = io_files(&dir, limits, false);
                    io_v2 = Some((f, n));
                }
                cg.v2 = Some(dir.clone());
                cg.dirs.push(dir);
            }
        }
    }
    if root {
        // v1 hierarchies only where v2 cannot serve: a requested limit whose
        // controller v2 lacks, the freezer without v2, and the name=systemd
        // hierarchy (where desktops look) when there is no v2 at all. Each
        // extra hierarchy costs a migration at start.
        let in_v2: Vec<bool> = ["memory.max", "cpu.weight", "pids.max"]
            .iter()
            .map(|f| limit_files.iter().any(|(p, _)| p.ends_with(f)))
            .collect();
        let v2_freezer = cg
            .v2
            .as_ref()
            .is_some_and(|d| d.join("cgroup.freeze").exists());
        for (h, mount) in &layout.v1 {
            let wanted = match h.as_str() {
                "memory" => limits.memory.is_some() && !in_v2[0],
                "cpu" => limits.cpu_weight.is_some() && !in_v2[1],
                "pids" => limits.pids.is_some() && !in_v2[2],
                "blkio" => limits.io() && io_v2.is_none(),
                "freezer" => !v2_freezer,
                "name=systemd" => cg.v2.is_none(),
                _ => false,
            };
            if !wanted {
                continue;
            }
            let base = own_v1
                .get(h)
                .map(|p| p.trim_start_matches('/'))
                .unwrap_or("");
            let dir = mount.join(base).join("berth").join(name);
            if fs::create_dir_all(&dir).is_err() {
                continue;
            }
            match h.as_str() {
                "memory" => limit_files.push((
                    dir.join("memory.limit_in_bytes"),
                    limits.memory.unwrap_or_default().to_string(),
                )),
                "cpu" => limit_files.push((
                    dir.join("cpu.shares"),
                    weight_to_shares(limits.cpu_weight.unwrap_or(100)).to_string(),
                )),
                "pids" => limit_files.push((
                    dir.join("pids.max"),
                    limits.pids.unwrap_or_default().to_string(),
                )),
                "name=systemd" => {
                    cg.display = format!("/{}", dir.strip_prefix(mount).unwrap_or(&dir).display())
                }
                "blkio" => {
                    let (f, n) = io_files(&dir, limits, true);
                    io_lines.extend(f);
                    cg.notes.extend(n);
                }
                _ => {}
            }
            cg.dirs.push(dir);
        }
    }
    if let Some((f, n)) = io_v2 {
        io_lines.extend(f);
        cg.notes.extend(n);
    } else if limits.io() && !layout.v1.contains_key("blkio") {
        cg.notes
            .push("I/O limits are not enforced: no cgroup has the io or blkio controller".into());
    } else if limits.io() && !root && io_lines.is_empty() && cg.notes.is_empty() {
        cg.notes.push(
            "I/O limits are not enforced: the io controller is not delegated to this user".into(),
        );
    }
    if cg.dirs.is_empty() {
        return Err(if root {
            "no writable cgroup hierarchy".into()
        } else {
            "no cgroup was delegated to this user (no systemd user session)".into()
        });
    }
    for (f, v) in &limit_files {
        if let Err(e) = fs::write(f, v) {
            cg.remove();
            return Err(format!("setting {}: {e}", f.display()));
        }
    }
    for (f, v) in &io_lines {
        if let Err(e) = fs::write(f, v) {
            cg.notes
                .push(format!("{v:?} in {} is not enforced: {e}", f.display()));
        }
    }
    let wanted = [
        limits.memory.is_some(),
        limits.cpu_weight.is_some(),
        limits.pids.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if limit_files.len() < wanted {
        cg.remove();
        return Err("the cgroup has no controller for a requested limit".into());
    }
    Ok(cg)
}

impl Cgroup {
    /// Move `pid` into every directory (all but v2 when `skip_v2`, for a
    /// child already cloned into it).
    pub fn add(&self, pid: rustix::process::Pid, skip_v2: bool) -> Result<(), String> {
        for d in &self.dirs {
            if skip_v2 && Some(d) == self.v2.as_ref() {
                continue;
            }
            fs::write(d.join("cgroup.procs"), pid.as_raw_nonzero().to_string())
                .map_err(|e| format!("moving into {}: {e}", d.display()))?;
        }
        Ok(())
    }

    /// Freeze or thaw through the v2 freezer or the v1 freezer hierarchy.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), String> {
        for d in &self.dirs {
            if d.join("cgroup.freeze").exists() {
                return fs::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" })
                    .map_err(|e| format!("{}: {e}", d.display()));
            }
        }
        for d in &self.dirs {
            if d.join("freezer.state").exists() {
                return fs::write(
                    d.join("freezer.state"),
                    if frozen { "FROZEN" } else { "THAWED" },
                )
                .map_err(|e| format!("{}: {e}", d.display()));
            }
        }
        Err("this instance's cgroup has no freezer".into())
    }

    pub fn remove(&self) {
        if self.systemd {
            return;
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }

    /// Remove it, waiting up to `max` while processes outside the
    /// instance's pid namespace (a `berth enter` on its way out) keep it
    /// busy.
    pub fn remove_when_empty(&self, max: std::time::Duration) {
        if self.systemd {
            return;
        }
        let until = std::time::Instant::now() + max;
        for d in self.dirs.iter().rev() {
            while let Err(e) = fs::remove_dir(d) {
                if e.raw_os_error() != Some(rustix::io::Errno::BUSY.raw_os_error())
                    || std::time::Instant::now() >= until
                {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    #[test]
    fn hybrid_layout() {
        let l = parse_mountinfo(HYBRID);
        assert_eq!(l.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(l.v1["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(l.v1["name=systemd"], Path::new("/sys/fs/cgroup/systemd"));
        assert_eq!(l.v1.len(), 5);
    }

    #[test]
    fn pure_v2_layout() {
        let l = parse_mountinfo("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate");
        assert_eq!(l.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert!(l.v1.is_empty());
    }

    #[test]
    fn scope_names_carry_the_app_id() {
        let n = scope_name("org.example.My-App", "abc123");
        assert_eq!(n, "app-berth-org.example.My\\x2dApp-abc123.scope");
        assert_eq!(
            parse_scope_name(&format!("/user.slice/{n}")),
            Some(("org.example.My-App".into(), "abc123".into()))
        );
        assert_eq!(
            scope_name("localhost:5000/x/bb:1", "f00"),
            "app-berth-localhost:5000\\x2fx\\x2fbb-f00.scope"
        );
        assert_eq!(scope_name("bb:1", "f00"), "app-berth-bb-f00.scope");
        // An image named like an app is not that app.
        let spoof = scope_name("evil.example/org.mozilla.firefox", "1");
        assert_eq!(
            parse_scope_name(&spoof).unwrap().0,
            "evil.example/org.mozilla.firefox"
        );
        assert_eq!(scope_name("", "f00"), "app-berth-app-f00.scope");
        assert!(scope_name(&"é".repeat(300), "1").len() < 200);
        for bad in [
            "/x/app-berth-.scope",
            "/x/other.scope",
            "/x/app-berth-a\\xZZ-1.scope",
            "/x/app-berth-a\\x+2-1.scope",
            "/x/app-berth-a\\x07-1.scope",
        ] {
            assert_eq!(parse_scope_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn io_limits_go_where_the_files_are() {
        let dir = std::env::temp_dir().join(format!("berth-io-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let limits = Limits {
            io_weight: Some(300),
            io_read: Some(1 << 20),
            io_write: Some(2 << 20),
            io_devices: vec!["8:0".into(), "254:0".into()],
            ..Limits::default()
        };
        // A v1 blkio cgroup with throttling but no weight (no BFQ).
        for f in [
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
        ] {
            fs::write(dir.join(f), "").unwrap();
        }
        let (files, notes) = io_files(&dir, &limits, true);
        let lines: Vec<String> = files
            .iter()
            .map(|(f, l)| format!("{} {l}", f.file_name().unwrap().to_string_lossy()))
            .collect();
        assert_eq!(
            lines,
            [
                "blkio.throttle.read_bps_device 8:0 1048576",
                "blkio.throttle.read_bps_device 254:0 1048576",
                "blkio.throttle.write_bps_device 8:0 2097152",
                "blkio.throttle.write_bps_device 254:0 2097152",
            ]
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("io-weight=300 is not enforced"));
        // v2 with io.weight and io.max.
        for f in ["io.weight", "io.max"] {
            fs::write(dir.join(f), "").unwrap();
        }
        let (files, notes) = io_files(&dir, &limits, false);
        let lines: Vec<&str> = files.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "default 300",
                "8:0 rbps=1048576 wbps=2097152",
                "254:0 rbps=1048576 wbps=2097152"
            ]
        );
        assert!(notes.is_empty());
        // No disk to throttle (tmpfs, overlay): said.
        let (_, notes) = io_files(
            &dir,
            &Limits {
                io_read: Some(1),
                ..Limits::default()
            },
            false,
        );
        assert_eq!(notes.len(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn proc_cgroup() {
        let (v2, v1) = parse_proc_cgroup(
            "4:memory:/a/b\n9:name=systemd:/\n1:cpu,cpuacct:/c\n0::/user.slice/x.scope\n",
        );
        assert_eq!(v2.as_deref(), Some("/user.slice/x.scope"));
        assert_eq!(v1["memory"], "/a/b");
        assert_eq!(v1["cpuacct"], "/c");
    }

    #[test]
    fn shares() {
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(1), 10);
        assert_eq!(weight_to_shares(100_000), 102_400);
    }
}
