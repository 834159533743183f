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
                    if matches!(o, "memory" | "cpu" | "pids" | "freezer") || o.starts_with("name=")
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

/// v2 `cpu.weight` (1-10000, default 100) as v1 `cpu.shares` (default 1024).
pub fn weight_to_shares(w: u64) -> u64 {
    (w.clamp(1, 10_000) * 1024 / 100).max(2)
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

    if let Some(v2) = &layout.v2 {
        let controllers = crate::sys::read_proc(v2.join("cgroup.controllers")).unwrap_or_default();
        let parent = if root {
            // Enable what we need along the way; failures only lose limits.
            let slice = v2.join("berth.slice");
            let _ = fs::create_dir_all(&slice);
            for d in [v2.as_path(), slice.as_path()] {
                for c in ["memory", "cpu", "pids"] {
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
                _ => {}
            }
            cg.dirs.push(dir);
        }
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
}

#[cfg(test)]
mod tests {
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
