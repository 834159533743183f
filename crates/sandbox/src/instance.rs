//! Running instances: a state file per instance under
//! `$XDG_RUNTIME_DIR/berth/instances/<id>/`, checked against /proc so a
//! crashed instance never shows as running.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroup::Cgroup;
use crate::error::{Ctx, Error, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceState {
    pub id: String,
    pub name: String,
    pub image: String,
    /// Host pid of the sandbox's pid 1.
    pub pid: i32,
    /// Its start time in clock ticks since boot (guards against pid reuse).
    pub start_ticks: u64,
    pub started_unix: u64,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub cgroup: Option<Cgroup>,
    pub paused: bool,
    /// Frozen by `berth commit` (its pid and start ticks), not by the
    /// user: thawed by the next listing if that commit died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_by: Option<(i32, u64)>,
    /// The app's seccomp relaxations, which `enter` applies too.
    #[serde(default)]
    pub devel: bool,
    #[serde(default)]
    pub multiarch: bool,
    /// The store and image manifest the instance runs from (for `ps` and
    /// `info`; what keeps them from gc is the instance's pin in the store).
    #[serde(default)]
    pub store: String,
    #[serde(default)]
    pub image_digest: String,
    /// The app ID (or image name) as given, unlike `name`.
    #[serde(default)]
    pub app: String,
    /// The working container it runs (`berth run --container`).
    #[serde(default)]
    pub container: Option<String>,
    /// Its writable root's directory (`upper/`, `work/`), if it has one:
    /// what `berth commit` reads.
    #[serde(default)]
    pub upper: Option<String>,
}

/// Which app a process belongs to (`berth identify`).
#[derive(Clone, Debug, Serialize)]
pub struct Identity {
    pub pid: i32,
    /// The app ID, or the image name of a `berth run`.
    pub app: String,
    pub instance: String,
    /// Its cgroup path (v2, else the v1 `name=systemd` one), if any.
    pub cgroup: Option<String>,
    /// How it was found: `instance` (one of this user's running
    /// instances: same pid namespace or cgroup) or `scope` (only the
    /// cgroup's scope name says so: another user's instance, say).
    pub found_by: &'static str,
    /// The instance's image, when it is this user's.
    pub image: Option<String>,
}

/// Find the berth instance process `pid` belongs to. `Ok(None)`: it runs
/// outside every berth sandbox. A process inside a sandbox shares the
/// sandbox's pid namespace, which works without cgroups (a rootless user
/// with no delegated cgroup); otherwise the cgroup is compared, and last
/// its scope name read.
pub fn identify(state_dir: &Path, pid: i32) -> Result<Option<Identity>> {
    let cg = crate::sys::read_proc(format!("/proc/{pid}/cgroup"))
        .ctx(|| format!("reading /proc/{pid}/cgroup (is there a process {pid}?)"))?;
    let (v2, v1) = crate::cgroup::parse_proc_cgroup(&cg);
    let path = v2
        .filter(|p| p != "/")
        .or_else(|| v1.get("name=systemd").cloned());
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let own_ns = ns("self");
    let its_ns = ns(&pid.to_string());
    let within = |display: &str| {
        path.as_deref().is_some_and(|p| {
            p == display
                || p.strip_prefix(display)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    // The parent chain, from /proc/PID/stat (readable where the pid
    // namespace link is not: a sandbox that is not dumpable).
    let parent = |p: i32| -> Option<i32> {
        let stat = crate::sys::read_proc(format!("/proc/{p}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let mut chain = vec![pid];
    while chain.len() < 256 {
        match chain.last().copied().and_then(parent) {
            Some(p) if p > 1 && !chain.contains(&p) => chain.push(p),
            _ => break,
        }
    }
    for s in list(state_dir) {
        let same_ns = (its_ns.is_some() && its_ns != own_ns && ns(&s.pid.to_string()) == its_ns)
            || chain.contains(&s.pid);
        let same_cg = s.cgroup.as_ref().is_some_and(|c| within(&c.display));
        if same_ns || same_cg {
            return Ok(Some(Identity {
                pid,
                app: if s.app.is_empty() { s.name } else { s.app },
                instance: s.id,
                cgroup: path,
                found_by: "instance",
                image: Some(s.image),
            }));
        }
    }
    // Walk up: a process may sit in a child cgroup of the scope.
    let named = path.as_deref().and_then(|p| {
        let mut cur = p;
        loop {
            if let Some(x) = crate::cgroup::parse_scope_name(cur) {
                return Some(x);
            }
            cur = &cur[..cur.rfind('/')?];
        }
    });
    Ok(named.map(|(app, instance)| Identity {
        pid,
        app,
        instance,
        cgroup: path.clone(),
        found_by: "scope",
        image: None,
    }))
}

/// Field 22 of /proc/PID/stat (after the parenthesized command name), or
/// None for a zombie: a dead instance whose parent has not reaped it yet.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut f = after.split_whitespace();
    if f.next()? == "Z" {
        return None;
    }
    f.nth(18)?.parse().ok()
}

pub fn start_ticks(pid: i32) -> Option<u64> {
    parse_start_ticks(&crate::sys::read_proc(format!("/proc/{pid}/stat")).ok()?)
}

pub fn instances_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("instances")
}

impl InstanceState {
    pub fn dir(&self, state_dir: &Path) -> PathBuf {
        instances_dir(state_dir).join(&self.id)
    }

    /// Replace the state (pause, resume): atomically, since a reader that
    /// found it empty in an old instance directory would remove it.
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let dir = self.dir(state_dir);
        fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join("state.json.tmp");
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Setup(e.to_string()))?;
        fs::write(&tmp, bytes).ctx(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, dir.join("state.json"))
            .ctx(|| format!("writing state in {}", dir.display()))
    }

    /// Record a starting instance: a new file, written in place in one
    /// write. A reader that finds it empty or partial takes the instance
    /// for one being set up (see [`list`]), which it is while its
    /// directory is new; a rename would add a directory operation to
    /// every launch.
    pub fn save_new(&self, state_dir: &Path) -> Result<()> {
        let dir = self.dir(state_dir);
        fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let path = dir.join("state.json");
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Setup(e.to_string()))?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .ctx(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut f, &bytes).ctx(|| format!("writing {}", path.display()))
    }

    pub fn is_alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// All live instances; state left by crashed ones is removed on the way.
pub fn list(state_dir: &Path) -> Vec<InstanceState> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(instances_dir(state_dir)) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path().join("state.json");
        let state: Option<InstanceState> = fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match state {
            Some(mut s) if s.is_alive() => {
                if let Some((pid, ticks)) = s.frozen_by
                    && start_ticks(pid) != Some(ticks)
                {
                    // The commit that froze it was killed.
                    let thawed = s
                        .cgroup
                        .as_ref()
                        .is_some_and(|c| c.set_frozen(false).is_ok());
                    if thawed {
                        s.paused = false;
                        s.frozen_by = None;
                        let _ = s.save(state_dir);
                    }
                }
                out.push(s)
            }
            Some(s) => {
                // Its supervisor was killed: nothing stopped its pasta.
                crate::net::stop_stale_pasta(&e.path(), s.pid);
                cleanup(&e.path(), s.cgroup.as_ref())
            }
            None => {
                // Being set up right now, or left by a crash before the state
                // was written: only remove it once it is clearly old.
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|d| d.as_secs() > 60);
                if old {
                    cleanup(&e.path(), None);
                }
            }
        }
    }
    out.sort_by_key(|s| s.started_unix);
    out
}

pub fn cleanup(dir: &Path, cgroup: Option<&Cgroup>) {
    if let Some(c) = cgroup {
        c.remove();
    }
    // Most instances hold only their state: no directory walk for them.
    let _ = fs::remove_file(dir.join("state.json"));
    if fs::remove_dir(dir).is_err() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Find an instance by ID prefix or name.
pub fn find(state_dir: &Path, key: &str) -> Result<InstanceState> {
    let all = list(state_dir);
    let hits: Vec<_> = all
        .iter()
        .filter(|s| s.id.starts_with(key) || s.name == key)
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::NoInstance(key.to_owned())),
        _ => Err(Error::Usage(format!(
            "{key:?} matches {} instances; use the ID",
            hits.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_survive_odd_names() {
        let stat =
            "1234 (a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_start_ticks("garbage"), None);
        let zombie = stat.replace(") S ", ") Z ");
        assert_eq!(parse_start_ticks(&zombie), None);
    }
}
