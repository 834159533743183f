//! The sandbox plan: everything a run will do, as plain data. Built by a
//! pure function from the request; printed by `berth run --print-plan`;
//! checked by unit tests without root; applied by `exec`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::seccomp::SeccompPolicy;

/// What the user and the image ask for.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// Image or app name: the hostname and the cgroup name come from it.
    pub name: String,
    pub instance_id: String,
    /// Unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    pub image: ImageDefaults,
    /// Command from the command line; empty means the image's.
    pub command: Vec<String>,
    pub binds: Vec<BindSpec>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub network: bool,
    /// Share the host's IPC namespace (`share=ipc`).
    pub share_ipc: bool,
    /// Allow ptrace and perf (`allow=devel`).
    pub devel: bool,
    /// A host directory to use as the (persistent) home; else an empty tmpfs.
    pub home_source: Option<PathBuf>,
    /// Extra generated files for the top layer (path inside, contents).
    pub extra_files: Vec<(PathBuf, String)>,
    pub limits: Limits,
    pub host: HostInfo,
}

#[derive(Clone, Debug, Default)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpu_weight: Option<u64>,
    pub pids: Option<u64>,
}

/// Facts about the invoking user and terminal.
#[derive(Clone, Debug)]
pub struct HostInfo {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub home: String,
    pub term: Option<String>,
    pub tty: bool,
    /// `$XDG_RUNTIME_DIR/berth` (or `/run/berth` for root).
    pub state_dir: PathBuf,
}

/// `--bind SRC:DST[:ro|:rw]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BindSpec {
    pub src: PathBuf,
    pub dest: PathBuf,
    pub readonly: bool,
}

impl BindSpec {
    pub fn parse(s: &str) -> Result<BindSpec> {
        let bad =
            |why: &str| Error::Usage(format!("--bind {s:?}: {why} (expected SRC:DST[:ro|:rw])"));
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dest, readonly) = match parts.as_slice() {
            [src, dest] => (*src, *dest, false),
            [src, dest, "ro"] => (*src, *dest, true),
            [src, dest, "rw"] => (*src, *dest, false),
            [_, _, m] => return Err(bad(&format!("unknown mode {m:?}"))),
            _ => return Err(bad("wrong number of ':'")),
        };
        if !src.starts_with('/') || !dest.starts_with('/') {
            return Err(bad("both paths must be absolute"));
        }
        let dest = clean_abs(dest).ok_or_else(|| bad("destination must not contain '..'"))?;
        if dest == Path::new("/") {
            return Err(bad("cannot bind over the root"));
        }
        Ok(BindSpec {
            src: PathBuf::from(src),
            dest,
            readonly,
        })
    }
}

/// `--env KEY=VALUE`.
pub fn parse_env(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(Error::Usage(format!("--env {s:?}: expected KEY=VALUE"))),
    }
}

/// Normalize an absolute path, refusing `..`.
fn clean_abs(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Namespaces {
    pub user: bool,
    pub mount: bool,
    pub pid: bool,
    pub ipc: bool,
    pub uts: bool,
    pub net: bool,
    pub cgroup: bool,
}

/// A mount, applied in order; destinations are inside the new root.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Mount {
    Proc {
        dest: PathBuf,
    },
    /// Bind a directory read-only over itself (e.g. /proc/sys).
    ReadOnly {
        dest: PathBuf,
    },
    Tmpfs {
        dest: PathBuf,
        mode: u32,
    },
    /// tmpfs with null, zero, full, random, urandom, tty bound from the
    /// host, a private devpts, and a tmpfs /dev/shm.
    Dev {
        dest: PathBuf,
    },
    Bind {
        src: PathBuf,
        dest: PathBuf,
        readonly: bool,
    },
}

/// Files and mount points placed in the top overlay layer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ScaffoldEntry {
    Dir { path: PathBuf },
    File { path: PathBuf, contents: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct CgroupPlan {
    pub name: String,
    pub limits: Limits,
}

#[derive(Clone, Debug, Serialize)]
pub struct SandboxPlan {
    pub instance_id: String,
    pub name: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub namespaces: Namespaces,
    /// Layer dirs, bottom first; the scaffold goes on top; read-only overlay.
    pub layers: Vec<PathBuf>,
    pub instance_dir: PathBuf,
    pub scaffold: Vec<ScaffoldEntry>,
    pub mounts: Vec<Mount>,
    pub seccomp: SeccompPolicy,
    pub cgroup: CgroupPlan,
    pub tty: bool,
    pub no_new_privs: bool,
    pub drop_all_capabilities: bool,
}

/// A name fit for a hostname and a cgroup: `[a-z0-9-]`, at most 40 chars.
pub fn sanitize_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.split(':').next().unwrap_or(base);
    let mut s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(40);
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() { "app".into() } else { s }
}

pub fn build(req: &RunRequest) -> Result<SandboxPlan> {
    let argv = if !req.command.is_empty() {
        req.command.clone()
    } else {
        let mut v = req.image.entrypoint.clone();
        v.extend(req.image.cmd.iter().cloned());
        v
    };
    if argv.is_empty() {
        return Err(Error::Usage(
            "the image defines no command; give one after `--`, e.g. `berth run IMAGE -- /bin/sh`"
                .into(),
        ));
    }
    let h = &req.host;
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for e in &req.image.env {
        if let Some((k, v)) = e.split_once('=') {
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    env.entry("PATH".into())
        .or_insert_with(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    env.insert("HOME".into(), h.home.clone());
    env.insert("USER".into(), h.user.clone());
    env.insert("LOGNAME".into(), h.user.clone());
    env.insert("container".into(), "berth".into());
    if let Some(t) = &h.term {
        env.insert("TERM".into(), t.clone());
    }
    for (k, v) in &req.env {
        env.insert(k.clone(), v.clone());
    }
    let name = sanitize_name(&req.name);
    let cwd = req
        .workdir
        .clone()
        .or_else(|| req.image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::Usage(format!(
            "--workdir {cwd:?} must be an absolute path"
        )));
    }

    let home = PathBuf::from(&h.home);
    let instance_dir = h.state_dir.join("instances").join(&req.instance_id);
    let mut scaffold = vec![
        ScaffoldEntry::File {
            path: "etc/passwd".into(),
            contents: format!(
                "root:x:0:0:root:/root:/bin/sh\n{}nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                if h.uid == 0 {
                    String::new()
                } else {
                    format!("{}:x:{}:{}::{}:/bin/sh\n", h.user, h.uid, h.gid, h.home)
                }
            ),
        },
        ScaffoldEntry::File {
            path: "etc/group".into(),
            contents: format!(
                "root:x:0:\n{}nogroup:x:65534:\n",
                if h.gid == 0 {
                    String::new()
                } else {
                    format!("{}:x:{}:\n", h.user, h.gid)
                }
            ),
        },
        ScaffoldEntry::File {
            path: "etc/hostname".into(),
            contents: format!("{name}\n"),
        },
        ScaffoldEntry::File {
            path: "etc/hosts".into(),
            contents: format!("127.0.0.1 localhost {name}\n::1 localhost\n"),
        },
    ];
    for (path, contents) in &req.extra_files {
        scaffold.push(ScaffoldEntry::File {
            path: path.strip_prefix("/").unwrap_or(path).to_path_buf(),
            contents: contents.clone(),
        });
    }
    for d in ["proc", "dev", "tmp", "run", "sys"] {
        scaffold.push(ScaffoldEntry::Dir { path: d.into() });
    }
    scaffold.push(ScaffoldEntry::Dir {
        path: home.strip_prefix("/").unwrap_or(&home).to_path_buf(),
    });
    let mut mounts = vec![
        Mount::Proc {
            dest: "/proc".into(),
        },
        Mount::ReadOnly {
            dest: "/proc/sys".into(),
        },
        Mount::Dev {
            dest: "/dev".into(),
        },
        Mount::Tmpfs {
            dest: "/tmp".into(),
            mode: 0o1777,
        },
        Mount::Tmpfs {
            dest: "/run".into(),
            mode: 0o755,
        },
    ];
    mounts.push(match &req.home_source {
        Some(src) => Mount::Bind {
            src: src.clone(),
            dest: home.clone(),
            readonly: false,
        },
        None => Mount::Tmpfs {
            dest: home.clone(),
            mode: 0o700,
        },
    });
    for b in &req.binds {
        let rel = b.dest.strip_prefix("/").unwrap_or(&b.dest).to_path_buf();
        // The mount point's kind follows the source; decided at run time
        // by the executor, which creates a file or a dir in the scaffold.
        scaffold.push(ScaffoldEntry::Dir {
            path: rel.parent().map(Path::to_path_buf).unwrap_or_default(),
        });
        mounts.push(Mount::Bind {
            src: b.src.clone(),
            dest: b.dest.clone(),
            readonly: b.readonly,
        });
    }
    if req.network {
        // Name resolution as the host does it; nothing else of /etc.
        mounts.push(Mount::Bind {
            src: "/etc/resolv.conf".into(),
            dest: "/etc/resolv.conf".into(),
            readonly: true,
        });
    }
    Ok(SandboxPlan {
        instance_id: req.instance_id.clone(),
        cgroup: CgroupPlan {
            name: format!("app-berth-{name}-{}.scope", req.instance_id),
            limits: req.limits.clone(),
        },
        name: name.clone(),
        argv,
        env,
        cwd,
        uid: h.uid,
        gid: h.gid,
        hostname: name,
        namespaces: Namespaces {
            user: true,
            mount: true,
            pid: true,
            ipc: !req.share_ipc,
            uts: true,
            net: !req.network,
            cgroup: true,
        },
        layers: req.layers.clone(),
        instance_dir,
        scaffold,
        mounts,
        seccomp: SeccompPolicy::default_policy(req.devel),
        tty: h.tty,
        no_new_privs: true,
        drop_all_capabilities: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RunRequest {
        RunRequest {
            name: "localhost/Demo_App:1".into(),
            instance_id: "abc123".into(),
            layers: vec!["/s/layers/a".into(), "/s/layers/b".into()],
            image: ImageDefaults {
                env: vec!["PATH=/bin".into(), "LANG=C.UTF-8".into()],
                entrypoint: vec![],
                cmd: vec!["/bin/app".into()],
                working_dir: None,
            },
            command: vec![],
            binds: vec![],
            env: vec![],
            workdir: None,
            network: false,
            share_ipc: false,
            devel: false,
            home_source: None,
            extra_files: vec![],
            limits: Limits::default(),
            host: HostInfo {
                uid: 1000,
                gid: 1000,
                user: "alice".into(),
                home: "/home/alice".into(),
                term: None,
                tty: false,
                state_dir: "/run/user/1000/berth".into(),
            },
        }
    }

    #[test]
    fn default_plan_is_strict() {
        let p = build(&req()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.argv, vec!["/bin/app"]);
        assert!(p.namespaces.net, "network off by default");
        assert!(p.namespaces.user && p.namespaces.pid && p.namespaces.ipc && p.namespaces.uts);
        assert!(p.no_new_privs && p.drop_all_capabilities);
        assert_eq!(p.hostname, "demo-app");
        assert_eq!(p.cgroup.name, "app-berth-demo-app-abc123.scope");
        assert_eq!(p.env["PATH"], "/bin");
        assert_eq!(p.env["HOME"], "/home/alice");
        assert!(
            !p.env.contains_key("DISPLAY"),
            "no host environment leaks in"
        );
        assert!(p.mounts.contains(&Mount::Tmpfs {
            dest: "/tmp".into(),
            mode: 0o1777
        }));
        assert!(p.mounts.contains(&Mount::ReadOnly {
            dest: "/proc/sys".into()
        }));
        assert!(
            !p.mounts.iter().any(|m| matches!(m, Mount::Bind { .. })),
            "nothing from the host"
        );
        let passwd = p.scaffold.iter().find_map(|s| match s {
            ScaffoldEntry::File { path, contents } if path == Path::new("etc/passwd") => {
                Some(contents)
            }
            _ => None,
        });
        assert!(passwd.is_some_and(|c| c.contains("alice:x:1000:1000::/home/alice")));
    }

    #[test]
    fn options_change_the_plan() {
        let mut r = req();
        r.command = vec!["/bin/sh".into(), "-c".into(), "true".into()];
        r.network = true;
        r.binds = vec![BindSpec::parse("/srv/data:/data:ro").unwrap_or_else(|e| panic!("{e}"))];
        r.env = vec![parse_env("A=b=c").unwrap_or_else(|e| panic!("{e}"))];
        r.workdir = Some("/data".into());
        r.limits.memory = Some(1 << 30);
        let p = build(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.argv[0], "/bin/sh");
        assert!(!p.namespaces.net);
        assert_eq!(p.env["A"], "b=c");
        assert_eq!(p.cwd, "/data");
        assert_eq!(p.cgroup.limits.memory, Some(1 << 30));
        assert!(p.mounts.contains(&Mount::Bind {
            src: "/srv/data".into(),
            dest: "/data".into(),
            readonly: true
        }));
        assert!(p.mounts.iter().any(
            |m| matches!(m, Mount::Bind { dest, .. } if dest == Path::new("/etc/resolv.conf"))
        ));
    }

    #[test]
    fn parsers_refuse_bad_input() {
        assert!(BindSpec::parse("rel:/x").is_err());
        assert!(BindSpec::parse("/a:/b/../../etc").is_err());
        assert!(BindSpec::parse("/a:/").is_err());
        assert!(BindSpec::parse("/a:/b:xx").is_err());
        assert!(BindSpec::parse("/a").is_err());
        assert!(parse_env("NOVALUE").is_err());
        assert!(parse_env("=x").is_err());
        let mut r = req();
        r.image.cmd.clear();
        assert!(build(&r).is_err(), "no command is a usage error");
        r.command = vec!["x".into()];
        r.workdir = Some("relative".into());
        assert!(build(&r).is_err());
    }
}
