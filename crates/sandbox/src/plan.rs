//! The sandbox plan: everything a run will do, as plain data. Built by a
//! pure function from the request; printed by `berth run --print-plan`;
//! checked by unit tests without root; applied by `exec`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::seccomp::{Allow, SeccompPolicy};

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
    /// Binds the user or the app's grants asked for. Their sources must be
    /// canonical: berth's own state is masked wherever one covers it.
    pub binds: Vec<BindSpec>,
    /// Binds berth itself sets up (sockets, cookies, fonts): never masked.
    pub internal_binds: Vec<BindSpec>,
    /// Host paths no grant may expose or change: berth's store, state and
    /// configuration (hidden), its executable (read-only).
    pub protected: Vec<Protected>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub network: Network,
    /// Share the host's IPC namespace (`share=ipc`).
    pub share_ipc: bool,
    /// Allow ptrace, perf and process introspection (`allow=devel`).
    pub devel: bool,
    /// Allow 32-bit x86 programs (`allow=multiarch`).
    pub multiarch: bool,
    /// A host directory to use as the (persistent) home; else the home is
    /// part of a writable root (`upper`), or an empty tmpfs.
    pub home_source: Option<PathBuf>,
    /// Extra generated files for the top layer (path inside, contents).
    pub extra_files: Vec<(PathBuf, String)>,
    /// Read-only stacks of directories mounted at a path, before anything
    /// else (see [`Mount::Overlay`]); with no `layers`, the root is the
    /// scaffold alone and these make the image.
    pub subtrees: Vec<Mount>,
    /// Symlinks in the scaffold (path inside, target).
    pub links: Vec<(PathBuf, PathBuf)>,
    pub limits: Limits,
    pub host: HostInfo,
    /// A writable root: a directory holding `upper/` and `work/` for the
    /// root's overlay (a working container's, or a `--writable` run's);
    /// else the root is read-only.
    pub upper: Option<PathBuf>,
    /// DNS servers of the app's own (IP addresses) in place of the host's
    /// resolver, with pasta's network.
    pub dns: Vec<std::net::IpAddr>,
    /// `device=tun`: the app keeps CAP_NET_ADMIN, which reaches only the
    /// network namespace of its own (never with the host's network).
    pub net_admin: bool,
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
    /// I/O weight, 1-10000 (default 100).
    pub io_weight: Option<u64>,
    /// Bytes a second, on each of `io_devices`.
    pub io_read: Option<u64>,
    pub io_write: Option<u64>,
    /// The disks (`MAJ:MIN`, whole disks) the app's files are on: where
    /// `io_read` and `io_write` apply.
    pub io_devices: Vec<String>,
}

impl Limits {
    /// Limits a launch fails without (memory, CPU, processes). I/O limits
    /// are applied where the host can and reported where it cannot: the
    /// kernel enforces them only on some disks and schedulers.
    pub fn strict(&self) -> bool {
        self.memory.is_some() || self.cpu_weight.is_some() || self.pids.is_some()
    }

    pub fn io(&self) -> bool {
        self.io_weight.is_some() || self.io_read.is_some() || self.io_write.is_some()
    }
}

/// How the sandbox reaches the network.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// Its own network namespace with only `lo` (up).
    #[default]
    None,
    /// Its own network namespace connected through pasta (user-mode
    /// networking, as rootless Podman does): the internet, but not the
    /// host's loopback services or abstract unix sockets.
    Pasta,
    /// As `Pasta`, but routed only to private, shared-address and
    /// link-local addresses (the LAN): every other destination is
    /// unreachable (`share=lan`; crate::net::lan_only).
    Lan,
    /// The host's network namespace (`share=host-network`).
    Host,
}

impl Network {
    /// Connected through pasta.
    pub fn pasta(self) -> bool {
        matches!(self, Network::Pasta | Network::Lan)
    }
}

/// The address inside the sandbox where pasta answers DNS queries (it
/// forwards them to the host's resolver, which may listen on the host's
/// loopback, out of the app's reach).
pub const PASTA_DNS: &str = "169.254.1.1";

/// A host path a grant must not expose (`hide`) or let the app change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Protected {
    pub path: PathBuf,
    pub hide: bool,
}

/// Facts about the invoking user and terminal.
#[derive(Clone, Debug)]
pub struct HostInfo {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub home: String,
    pub term: Option<String>,
    /// The user's terminal is on stdin, stdout or stderr: the app gets a
    /// pty of its own instead.
    pub tty: bool,
    /// The host's /etc/resolv.conf, for its search domains and options.
    pub resolv_conf: Option<String>,
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
    /// Bind a directory or file read-only over itself (e.g. /proc/sys).
    /// Skipped when it does not exist.
    ReadOnly {
        dest: PathBuf,
    },
    /// Hide what is there: an empty read-only tmpfs over a directory,
    /// /dev/null over anything else. Skipped when it does not exist.
    Mask {
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
    /// Directories of the store stacked read-only at `dest` (bottom
    /// first): a Flatpak runtime's `files/` at /usr, an app's at /app.
    /// Each must be a real directory, never a symlink.
    Overlay {
        lowers: Vec<PathBuf>,
        dest: PathBuf,
    },
}

/// Files and mount points placed in the top overlay layer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ScaffoldEntry {
    Dir { path: PathBuf },
    File { path: PathBuf, contents: String },
    Symlink { path: PathBuf, target: PathBuf },
}

/// Files the scaffold itself writes under /etc (besides extra files and
/// bind mount points): a layout that links /etc into the image must
/// leave these names to it.
pub const SCAFFOLD_ETC: [&str; 5] = ["passwd", "group", "hostname", "hosts", "resolv.conf"];

/// What /proc shows that the app has no use for and that leaks host
/// information or keys (Docker's masked paths).
pub const PROC_MASKED: [&str; 11] = [
    "/proc/kcore",
    // Kernel symbol addresses (a KASLR leak where kptr_restrict allows).
    "/proc/kallsyms",
    "/proc/keys",
    "/proc/key-users",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/interrupts",
    "/proc/acpi",
    "/proc/scsi",
];
/// ... and what it may read but never change.
pub const PROC_READONLY: [&str; 5] = [
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
];

#[derive(Clone, Debug, Serialize)]
pub struct CgroupPlan {
    pub name: String,
    pub limits: Limits,
}

#[derive(Clone, Debug, Serialize)]
pub struct SandboxPlan {
    pub instance_id: String,
    /// What runs: an app ID, or an image name.
    pub app: String,
    pub name: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub namespaces: Namespaces,
    pub network: Network,
    /// Layer dirs, bottom first; the scaffold goes on top; read-only overlay.
    pub layers: Vec<PathBuf>,
    /// `upper/` and `work/` of a writable root (`RunRequest::upper`).
    pub upper: Option<PathBuf>,
    pub instance_dir: PathBuf,
    pub scaffold: Vec<ScaffoldEntry>,
    pub mounts: Vec<Mount>,
    pub seccomp: SeccompPolicy,
    pub cgroup: CgroupPlan,
    pub tty: bool,
    pub no_new_privs: bool,
    pub drop_all_capabilities: bool,
    /// Keep CAP_NET_ADMIN (in the sandbox's user namespace, over its own
    /// network namespace) for the app: `device=tun`.
    pub keep_net_admin: bool,
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

/// The mounts that keep `protected` paths out of a grant `b`: each
/// directory between the grant and a protected path becomes a mount point
/// (so the app cannot rename it away and plant a look-alike), then the
/// path itself is hidden or made read-only. Returns (pins, masks): pins go
/// right after the grant, masks after every bind.
fn protect(b: &BindSpec, protected: &[Protected]) -> (Vec<Mount>, Vec<Mount>) {
    let (mut pins, mut masks) = (Vec::new(), Vec::new());
    for p in protected {
        if let Ok(rel) = p.path.strip_prefix(&b.src) {
            let mut acc = PathBuf::new();
            let comps: Vec<_> = rel.components().collect();
            for c in comps.iter().take(comps.len().saturating_sub(1)) {
                acc.push(c);
                pins.push(Mount::Bind {
                    src: b.src.join(&acc),
                    dest: b.dest.join(&acc),
                    readonly: b.readonly,
                });
            }
            let dest = b.dest.join(rel);
            masks.push(if p.hide {
                Mount::Mask { dest }
            } else {
                Mount::ReadOnly { dest }
            });
        } else if p.hide && b.src.starts_with(&p.path) {
            // The grant lies inside berth's own state: none of it shows.
            masks.push(Mount::Mask {
                dest: b.dest.clone(),
            });
        }
    }
    (pins, masks)
}

/// resolv.conf for a pasta network: pasta's DNS forwarder, and the host's
/// search domains and options.
fn resolv_conf(host: Option<&str>, own: &[std::net::IpAddr]) -> String {
    let mut out = if own.is_empty() {
        format!("nameserver {PASTA_DNS}\n")
    } else {
        own.iter().map(|a| format!("nameserver {a}\n")).collect()
    };
    for line in host.unwrap_or_default().lines() {
        let l = line.trim();
        if ["search ", "domain ", "options "]
            .iter()
            .any(|k| l.starts_with(k))
            && !l.chars().any(char::is_control)
        {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
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
    for t in &req.subtrees {
        if let Mount::Overlay { dest, .. } = t {
            scaffold.push(ScaffoldEntry::Dir {
                path: dest.strip_prefix("/").unwrap_or(dest).to_path_buf(),
            });
        }
    }
    for (path, target) in &req.links {
        scaffold.push(ScaffoldEntry::Symlink {
            path: path.strip_prefix("/").unwrap_or(path).to_path_buf(),
            target: target.clone(),
        });
    }
    scaffold.push(ScaffoldEntry::Dir {
        path: home.strip_prefix("/").unwrap_or(&home).to_path_buf(),
    });
    let mut mounts: Vec<Mount> = req
        .subtrees
        .iter()
        .filter(|m| matches!(m, Mount::Overlay { .. }))
        .cloned()
        .collect();
    mounts.push(Mount::Proc {
        dest: "/proc".into(),
    });
    mounts.extend(PROC_MASKED.iter().map(|d| Mount::Mask { dest: d.into() }));
    mounts.extend(
        PROC_READONLY
            .iter()
            .map(|d| Mount::ReadOnly { dest: d.into() }),
    );
    mounts.extend([
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
    ]);
    // A writable root keeps the home as part of itself (a container's
    // lasts across runs and goes into its commits); otherwise an app's
    // home is its private data, and any other run's is empty and gone
    // when it ends.
    match &req.home_source {
        Some(src) => mounts.push(Mount::Bind {
            src: src.clone(),
            dest: home.clone(),
            readonly: false,
        }),
        None if req.upper.is_some() => {}
        None => mounts.push(Mount::Tmpfs {
            dest: home.clone(),
            mode: 0o700,
        }),
    }
    // Broader binds first, so a narrower one (a read-only subfolder of a
    // read-write grant) lands on top of it.
    let mut binds: Vec<&BindSpec> = req.binds.iter().collect();
    binds.sort_by_key(|b| b.dest.components().count());
    let mut masks: Vec<Mount> = Vec::new();
    for b in binds.into_iter().chain(&req.internal_binds) {
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
        if !req.internal_binds.contains(b) {
            let (pins, m) = protect(b, &req.protected);
            mounts.extend(pins);
            masks.extend(m);
        }
    }
    match req.network {
        Network::Host => {
            // Name resolution as the host does it; nothing else of /etc.
            mounts.push(Mount::Bind {
                src: "/etc/resolv.conf".into(),
                dest: "/etc/resolv.conf".into(),
                readonly: true,
            });
        }
        Network::Pasta | Network::Lan => scaffold.push(ScaffoldEntry::File {
            path: "etc/resolv.conf".into(),
            contents: resolv_conf(h.resolv_conf.as_deref(), &req.dns),
        }),
        Network::None => {}
    }
    for m in masks {
        if !mounts.contains(&m) {
            mounts.push(m);
        }
    }
    Ok(SandboxPlan {
        instance_id: req.instance_id.clone(),
        app: req.name.clone(),
        upper: req.upper.clone(),
        keep_net_admin: req.net_admin && req.network != Network::Host,
        cgroup: CgroupPlan {
            name: crate::cgroup::scope_name(&req.name, &req.instance_id),
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
            net: req.network != Network::Host,
            cgroup: true,
        },
        network: req.network,
        layers: req.layers.clone(),
        instance_dir,
        scaffold,
        mounts,
        seccomp: SeccompPolicy::new(Allow {
            devel: req.devel,
            multiarch: req.multiarch,
        }),
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
            internal_binds: vec![],
            protected: vec![],
            env: vec![],
            workdir: None,
            network: Network::None,
            share_ipc: false,
            devel: false,
            multiarch: false,
            home_source: None,
            extra_files: vec![],
            subtrees: vec![],
            links: vec![],
            limits: Limits::default(),
            upper: None,
            dns: vec![],
            net_admin: false,
            host: HostInfo {
                uid: 1000,
                gid: 1000,
                user: "alice".into(),
                home: "/home/alice".into(),
                term: None,
                tty: false,
                resolv_conf: None,
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
        assert_eq!(
            p.cgroup.name,
            "app-berth-localhost\\x2fDemo_App-abc123.scope"
        );
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
        for m in ["/proc/keys", "/proc/timer_list", "/proc/kcore"] {
            assert!(p.mounts.contains(&Mount::Mask { dest: m.into() }), "{m}");
        }
        assert_eq!(p.network, Network::None);
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
        r.network = Network::Host;
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
    fn the_home_is_private_data_part_of_a_writable_root_or_empty() {
        let home = |p: &SandboxPlan| {
            p.mounts
                .iter()
                .filter(|m| match m {
                    Mount::Tmpfs { dest, .. } | Mount::Bind { dest, .. } => {
                        dest == Path::new("/home/alice")
                    }
                    _ => false,
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        let p = build(&req()).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(home(&p).as_slice(), [Mount::Tmpfs { .. }]));
        let mut r = req();
        r.upper = Some("/s/containers/box/root".into());
        let p = build(&r).unwrap_or_else(|e| panic!("{e}"));
        assert!(home(&p).is_empty(), "{:?}", p.mounts);
        r.home_source = Some("/s/data/org.example.App".into());
        let p = build(&r).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(home(&p).as_slice(), [Mount::Bind { .. }]));
    }

    #[test]
    fn pasta_network_has_its_own_namespace_and_dns() {
        let mut r = req();
        r.network = Network::Pasta;
        r.host.resolv_conf =
            Some("nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n".into());
        let p = build(&r).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.namespaces.net, "pasta runs in a namespace of its own");
        let resolv = p.scaffold.iter().find_map(|s| match s {
            ScaffoldEntry::File { path, contents } if path == Path::new("etc/resolv.conf") => {
                Some(contents.clone())
            }
            _ => None,
        });
        assert_eq!(
            resolv.as_deref(),
            Some("nameserver 169.254.1.1\nsearch corp.example\noptions edns0\n"),
            "the host's loopback resolver is not reachable; pasta forwards"
        );
    }

    #[test]
    fn berth_state_is_masked_under_grants() {
        let mut r = req();
        let bind = |src: &str, dest: &str, readonly| BindSpec {
            src: src.into(),
            dest: dest.into(),
            readonly,
        };
        r.binds = vec![
            bind("/home/alice/Music", "/home/alice/Music", true),
            bind("/home/alice", "/home/alice", false),
            bind("/home/alice/.local/share/berth/apps", "/x", false),
        ];
        r.internal_binds = vec![bind(
            "/run/user/1000/berth/instances/abc123/bus",
            "/run/user/1000/bus",
            false,
        )];
        r.protected = vec![
            Protected {
                path: "/home/alice/.local/share/berth".into(),
                hide: true,
            },
            Protected {
                path: "/run/user/1000/berth".into(),
                hide: true,
            },
            Protected {
                path: "/home/alice/bin/berth".into(),
                hide: false,
            },
        ];
        let p = build(&r).unwrap_or_else(|e| panic!("{e}"));
        let pos = |m: &Mount| p.mounts.iter().position(|x| x == m);
        let home = pos(&Mount::Bind {
            src: "/home/alice".into(),
            dest: "/home/alice".into(),
            readonly: false,
        });
        let music = pos(&Mount::Bind {
            src: "/home/alice/Music".into(),
            dest: "/home/alice/Music".into(),
            readonly: true,
        });
        assert!(home < music, "broader binds first: {:?}", p.mounts);
        let pins: Vec<_> = [
            "/home/alice/.local",
            "/home/alice/.local/share",
            "/home/alice/bin",
        ]
        .iter()
        .map(|d| {
            pos(&Mount::Bind {
                src: d.into(),
                dest: d.into(),
                readonly: false,
            })
        })
        .collect();
        assert!(
            pins.iter().all(|p| p.is_some()),
            "ancestors pinned: {:?}",
            p.mounts
        );
        let store = pos(&Mount::Mask {
            dest: "/home/alice/.local/share/berth".into(),
        });
        let exe = pos(&Mount::ReadOnly {
            dest: "/home/alice/bin/berth".into(),
        });
        let inside = pos(&Mount::Mask { dest: "/x".into() });
        let last_bind = p
            .mounts
            .iter()
            .rposition(|m| matches!(m, Mount::Bind { .. }));
        for m in [store, exe, inside] {
            assert!(
                m.is_some() && m > last_bind,
                "masks come last: {:?}",
                p.mounts
            );
        }
        assert!(
            !p.mounts
                .iter()
                .any(|m| matches!(m, Mount::Mask { dest } if dest.starts_with("/run"))),
            "berth's own binds are not masked"
        );
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
