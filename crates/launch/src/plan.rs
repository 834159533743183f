//! An app or image, plus what the user typed, becomes a [`LaunchPlan`]:
//! the sandbox plan and every host-side step around it, as data. Planning
//! reads the store, the deployment and the host; it changes nothing.

use std::path::PathBuf;

use berth_app::deploy::{AppStore, effective};
use berth_app::grants;
use berth_app::metadata::{app_id_of, valid_install_key};
use berth_image::layer::parse_size;
use berth_image::{Digest, Store};
use berth_sandbox::SandboxPlan;
use berth_sandbox::plan::{BindSpec, ImageDefaults, Limits, Network, RunRequest, parse_env};
use serde::Serialize;

use crate::error::{Error, Result, io};
use crate::{Notes, host};

/// What the user asked for: `berth run`'s arguments, or a menu entry's.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// An installed app ID, else an image name or ID.
    pub target: String,
    /// Arguments after `--`: for an app, arguments to its own command;
    /// for an image, the command itself (default: its entrypoint and cmd).
    pub args: Vec<String>,
    /// `--command PROGRAM`: run PROGRAM (with `args`) instead.
    pub command: Option<String>,
    /// `--bind SRC:DST[:ro|:rw]`.
    pub binds: Vec<String>,
    /// `--env KEY=VALUE`.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `--network`: the internet through pasta.
    pub network: bool,
    /// `--host-network`: the host's network namespace.
    pub host_network: bool,
    /// `--memory SIZE`, e.g. `512M`.
    pub memory: Option<String>,
    pub cpu_weight: Option<u64>,
    pub pids: Option<u64>,
    /// `--io-weight N` (1-10000).
    pub io_weight: Option<u64>,
    /// `--io-read SIZE`, `--io-write SIZE`: bytes a second, e.g. `10M`.
    pub io_read: Option<String>,
    pub io_write: Option<String>,
    /// `--container NAME`: run working container NAME's image on its
    /// lasting writable root (`target` is then ignored).
    pub container: Option<String>,
    /// `--writable`: a writable root for this run only (a temporary upper
    /// directory, gone when the instance ends; `berth commit` can keep it).
    pub writable: bool,
    /// `--lan-only`: pasta's network, routed to the local network only.
    pub lan_only: bool,
    /// `--dns ADDR`: DNS servers of the run's own.
    pub dns: Vec<String>,
    /// `--tun`: `/dev/net/tun` and CAP_NET_ADMIN in the sandbox's own
    /// network namespace (what `device=tun` grants).
    pub tun: bool,
}

/// Where a launch runs from.
#[derive(Clone, Debug)]
pub struct Places {
    /// The store's directory (`$BERTH_HOME`).
    pub store: PathBuf,
    /// The runtime directory for instance state ([`host::runtime_dir`]).
    pub state: PathBuf,
}

/// A host-side step the apply step takes before the sandbox starts.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum HostStep {
    /// A directory the app's home or a `:create` grant needs, or berth's
    /// configuration directory, made so that it can be masked (`required:
    /// false`: a home berth cannot write to does not stop the launch).
    CreateDir {
        path: PathBuf,
        private: bool,
        required: bool,
    },
    /// An app's first private home, from the home its image carries
    /// (crate::seed): `home` of `layers`, copied in `tmp`, renamed to `path`.
    SeedHome {
        layers: Vec<PathBuf>,
        home: PathBuf,
        tmp: PathBuf,
        path: PathBuf,
    },
    /// A file berth generates for the instance (a filtered X cookie, the
    /// PulseAudio client settings). Its bytes are not printed.
    WriteFile {
        path: PathBuf,
        what: String,
        #[serde(skip)]
        contents: Vec<u8>,
    },
    /// Files the user opened with the app, added to the document portal
    /// for it: read-only, or writable where the app's `edit=` grants
    /// name the file's type.
    ForwardFiles {
        bus: PathBuf,
        app_id: String,
        /// The portal's mount as the app sees it (`/run/user/UID/doc`).
        inner: PathBuf,
        files: Vec<Forwarded>,
    },
    /// A file bound into the sandbox by path (no document portal) must
    /// still be the regular file that was checked, reached without a last
    /// symlink.
    CheckFile { path: PathBuf, dev: u64, ino: u64 },
    /// xdg-dbus-proxy between the session bus and the app's socket, in a
    /// sandbox of its own that holds the app's `/.flatpak-info`: the
    /// portals know the app by the proxy's root (the bus peer they see).
    BusProxy {
        upstream: PathBuf,
        socket: PathBuf,
        sandbox: Box<SandboxPlan>,
    },
}

/// A file the user opened with the app (`@@ FILE @@` in its arguments, as a
/// menu entry passes it): handed over through the document portal, its
/// argument rewritten to the path the app sees.
#[derive(Clone, Debug, Serialize)]
pub struct Forwarded {
    pub path: PathBuf,
    /// Given as a `file://` URI (`@@u`), and passed on as one.
    pub uri: bool,
    /// Which argument of the sandbox's argv to rewrite.
    pub argv_index: usize,
    /// The app may change it (an `edit=` grant names its type).
    pub writable: bool,
    /// Which file it is: apply hands over nothing else.
    pub dev: u64,
    pub ino: u64,
}

/// Everything a launch will do, printable (`berth run --print-plan`): the
/// sandbox plan's fields at the top level, then the host-side steps.
#[derive(Clone, Debug, Serialize)]
pub struct LaunchPlan {
    #[serde(flatten)]
    pub sandbox: SandboxPlan,
    /// The installed app, when the target was one.
    pub app: Option<String>,
    /// What `berth ps` calls the instance: the app ID, or the image's name.
    pub image_name: String,
    /// The image manifest the instance runs from.
    pub image_digest: String,
    /// The layers it needs (pinned while it runs).
    pub diff_ids: Vec<String>,
    pub limits: Limits,
    pub devel: bool,
    pub multiarch: bool,
    /// The runtime directory the instance is recorded in.
    pub state_dir: PathBuf,
    pub host_steps: Vec<HostStep>,
    /// What the user should know; the launch goes on without it.
    pub notes: Vec<String>,
    /// The working container the run uses (its root is `sandbox.upper`).
    pub container: Option<String>,
    /// `sandbox.upper` is this run's own, made before and removed after.
    pub temporary_root: bool,
}

/// A run's arguments with the `@@ ... @@` (files) and `@@u ... @@` (URIs)
/// blocks a menu entry puts around what it was opened with: the plain
/// arguments, and which of them name a file to forward (index, URI?).
pub fn forwarding(args: &[String]) -> (Vec<String>, Vec<(usize, bool)>) {
    let (mut out, mut files) = (Vec::new(), Vec::new());
    let mut block: Option<bool> = None;
    for a in args {
        match (a.as_str(), block) {
            ("@@", None) => block = Some(false),
            ("@@u", None) => block = Some(true),
            ("@@", Some(_)) => block = None,
            (_, Some(uri)) => {
                files.push((out.len(), uri));
                out.push(a.clone());
            }
            (_, None) => out.push(a.clone()),
        }
    }
    (out, files)
}

/// A forwarded argument's file, if it names one that exists: a path, or a
/// `file://` URI (percent-decoded).
fn forwarded_file(arg: &str, uri: bool) -> Option<PathBuf> {
    let path = if uri {
        let rest = arg.strip_prefix("file://")?;
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        let mut bytes = Vec::new();
        let mut it = rest.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex = [it.next()?, it.next()?];
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            } else {
                bytes.push(b);
            }
        }
        PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&bytes))
    } else {
        PathBuf::from(arg)
    };
    if !path.is_absolute() {
        return None;
    }
    std::fs::canonicalize(path).ok().filter(|p| p.is_file())
}

/// Where an app finds its identity, and xdg-desktop-portal finds it too.
pub const FLATPAK_INFO: &str = "/.flatpak-info";

/// The bus proxy's own sandbox: nothing of the app's image, the host's
/// programs and libraries read-only, the bus socket, the instance
/// directory (where it makes the app's socket), and the app's identity at
/// `/.flatpak-info`. The host's network namespace: a bus address may be an
/// abstract socket.
fn proxy_sandbox(
    places: &Places,
    instance_id: &str,
    argv: Vec<String>,
    upstream: &std::path::Path,
    other_buses: &[PathBuf],
    instance_dir: &std::path::Path,
    identity: &std::path::Path,
) -> Result<SandboxPlan> {
    let ro = |p: &str| BindSpec {
        src: p.into(),
        dest: p.into(),
        readonly: true,
    };
    let mut internal: Vec<BindSpec> = [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/etc/ld.so.cache",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .map(ro)
    .collect();
    internal.extend(other_buses.iter().map(|b| BindSpec {
        src: b.clone(),
        dest: b.clone(),
        readonly: false,
    }));
    internal.extend([
        BindSpec {
            src: upstream.to_owned(),
            dest: upstream.to_owned(),
            readonly: false,
        },
        BindSpec {
            src: instance_dir.to_owned(),
            dest: instance_dir.to_owned(),
            readonly: false,
        },
        BindSpec {
            src: identity.to_owned(),
            dest: FLATPAK_INFO.into(),
            readonly: true,
        },
    ]);
    let mut host = host::host_info(places.state.clone());
    host.tty = false;
    host.term = None;
    Ok(berth_sandbox::build(&RunRequest {
        name: "bus-proxy".into(),
        instance_id: format!("{instance_id}-bus"),
        layers: Vec::new(),
        image: ImageDefaults::default(),
        command: argv,
        binds: Vec::new(),
        internal_binds: internal,
        protected: Vec::new(),
        env: Vec::new(),
        workdir: None,
        network: Network::Host,
        share_ipc: false,
        devel: false,
        multiarch: false,
        home_source: None,
        extra_files: Vec::new(),
        subtrees: Vec::new(),
        links: Vec::new(),
        limits: Limits::default(),
        host,
        upper: None,
        dns: Vec::new(),
        net_admin: false,
    })?)
}

/// Plan a launch. Reads only: nothing is written, created or started.
pub fn plan(
    store: &Store,
    places: &Places,
    req: &Request,
    notes_to: &dyn Notes,
) -> Result<LaunchPlan> {
    let apps = AppStore::new(store.root());
    let containers = berth_app::containers::ContainerStore::new(store.root());
    let container = req
        .container
        .as_deref()
        .map(|n| containers.get(n))
        .transpose()?;
    if container.is_some() && req.writable {
        return Err(Error::Invalid(
            "--writable and --container: a container's root is writable already".into(),
        ));
    }
    let target = container
        .as_ref()
        .map_or(req.target.clone(), |c| c.digest.clone());
    let req = &Request {
        target,
        ..req.clone()
    };
    let app = if valid_install_key(&req.target) {
        apps.current(&req.target)?
    } else {
        None
    };
    let mut notes = Vec::new();
    let mut steps = Vec::new();
    let (entry, image) = {
        // gc waits while the image is read.
        let _lock = store.lock_shared(&|| notes_to.warn(crate::GC_WAIT))?;
        let entry = match &app {
            Some(d) => {
                match Digest::parse(&d.image).and_then(|digest| store.entry_by_digest(&digest)) {
                    Ok(e) => e,
                    Err(e @ berth_image::Error::NotFound(_)) => {
                        return Err(Error::from(e).context(format!(
                        "the image of {} is gone from the store; `berth fsck --repair` or a reinstall brings it back",
                        d.app_id
                    )));
                    }
                    Err(e) => {
                        return Err(Error::from(e)
                            .context(format!("cannot read the image of {}", d.app_id)));
                    }
                }
            }
            // A container's image by digest: it may have lost its names.
            None => match &container {
                Some(c) => store.entry_by_digest(&Digest::parse(&c.digest)?)?,
                None => store.resolve(&req.target)?,
            },
        };
        let image = store.load_image(&entry)?;
        if let Some(why) = image.platform_mismatch() {
            return Err(Error::Invalid(format!("cannot run {}: {why}", req.target)));
        }
        (entry, image)
    };
    let diff_ids = image.diff_ids()?;
    if let Some(d) = diff_ids.iter().find(|d| !store.has_layer(d)) {
        return Err(Error::Store(format!(
            "layer {} of {} is missing or incomplete (an interrupted import or removal); `berth fsck --repair` re-creates it from its blob where the store has one, otherwise re-import or pull the image",
            d.short(),
            req.target
        )));
    }
    // A Flatpak app: its runtime is a second image, and the two are laid
    // out as Flatpak does (see crate::flatpak) instead of stacked.
    let flatpak_runtime = flatpak_runtime_of(store, &image, app.as_ref())?;
    // Where the app's own files are, for the portals: a Flatpak's /app.
    let app_path = {
        let top = store.layer_path(diff_ids.last().unwrap_or(&entry.digest));
        if flatpak_runtime.is_some() {
            top.join("files")
        } else {
            top
        }
    };
    let mut diff_ids = diff_ids;
    let layers = if let Some(rt) = &flatpak_runtime {
        diff_ids.extend(rt.diff_ids()?);
        Vec::new()
    } else {
        diff_ids.iter().map(|d| store.layer_path(d)).collect()
    };
    let instance_id = host::new_instance_id();
    let instance_dir = berth_sandbox::instance::instances_dir(&places.state).join(&instance_id);
    // An image that carries this user's home (a commit of a container or
    // of an app's data) runs on a temporary writable root, the home part
    // of it, instead of an empty home over what it carries.
    let writable = req.writable
        || (app.is_none()
            && container.is_none()
            && flatpak_runtime.is_none()
            && image
                .labels()
                .get(berth_app::containers::LABEL_HOME)
                .is_some_and(|h| *h == host::user_and_home().1));
    let c = image.config.config().clone().unwrap_or_default();
    if let Some(w) = req.cpu_weight
        && !(1..=10_000).contains(&w)
    {
        return Err(Error::Invalid(
            "--cpu-weight must be between 1 and 10000".into(),
        ));
    }
    let mut limits = Limits {
        memory: req
            .memory
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| Error::from(e).context("--memory"))?,
        cpu_weight: req.cpu_weight,
        pids: req.pids,
        io_weight: req.io_weight,
        io_read: req
            .io_read
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| Error::from(e).context("--io-read"))?,
        io_write: req
            .io_write
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| Error::from(e).context("--io-write"))?,
        io_devices: Vec::new(),
    };
    if let Some(w) = req.io_weight
        && !(1..=10_000).contains(&w)
    {
        return Err(Error::Invalid(
            "--io-weight must be between 1 and 10000".into(),
        ));
    }
    // Grants: berth's own state is masked wherever one covers it.
    let mut binds: Vec<BindSpec> = Vec::new();
    // Binds the user typed (`--bind`, also how `build` passes its install
    // dir) and those berth sets up itself (sockets, cookies, fonts): the
    // user's explicit choice, not an app's request, so never masked.
    let mut internal: Vec<BindSpec> = Vec::new();
    for b in &req.binds {
        let mut b = BindSpec::parse(b)?;
        // Masks of berth's own state are placed by real paths, so a
        // symlink must not hide what a bind exposes.
        b.src = io(std::fs::canonicalize(&b.src), || {
            format!("--bind source {}", b.src.display())
        })?;
        internal.push(b);
    }
    if req.tun {
        internal.push(BindSpec {
            src: "/dev/net/tun".into(),
            dest: "/dev/net/tun".into(),
            readonly: false,
        });
    }
    let mut env: Vec<(String, String)> = Vec::new();
    // `--command PROGRAM`: PROGRAM and the arguments after `--`, instead of
    // the app's (or image's) own command.
    let replaced = req.command.is_some();
    let (args, opened) = forwarding(&req.args);
    let mut command: Vec<String> = req
        .command
        .iter()
        .cloned()
        .chain(args.iter().cloned())
        .collect();
    let mut network = if req.host_network {
        Network::Host
    } else if req.lan_only {
        Network::Lan
    } else if req.network {
        Network::Pasta
    } else {
        Network::None
    };
    let mut net_admin = req.tun;
    let mut dns: Vec<std::net::IpAddr> = req
        .dns
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|_| Error::Invalid(format!("--dns {a}: not an IP address")))
        })
        .collect::<Result<_>>()?;
    let (mut share_ipc, mut devel, mut multiarch, mut home_source) = (false, false, false, None);
    let mut extra_files: Vec<(PathBuf, String)> = Vec::new();
    // The document portal, when the app has a bus and one runs: (the bus,
    // its mount as the app sees it).
    let mut docs: Option<(PathBuf, PathBuf)> = None;
    // MIME types of opened files the app may change (`edit=`).
    let mut edit: Vec<String> = Vec::new();
    let mut protected = host::protected_paths(store.root(), &places.state);
    // Its real path, as the protected paths are: a home or `~/.config`
    // reached through a symlink must not slip past the mask.
    if let Some(dir) = host::config_dir().filter(|d| !d.exists()) {
        steps.push(HostStep::CreateDir {
            path: host::real_path(&dir).unwrap_or(dir),
            private: true,
            required: false,
        });
    }
    let name = match &app {
        Some(d) => {
            let perms: Vec<_> = effective(&d.granted()?, &apps.overrides(&d.app_id)?)?
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            let host = host::host_env();
            let g = grants::compute(&perms, &host);
            edit.clone_from(&g.edit);
            let mut env_from_grants = g.env.clone();
            notes.extend(g.unavailable.iter().map(|u| format!("warning: {u}")));
            for b in &g.binds {
                let exists = b.src.exists();
                if b.create && !exists {
                    steps.push(HostStep::CreateDir {
                        path: b.src.clone(),
                        private: false,
                        required: true,
                    });
                }
                if exists && !b.files {
                    // A socket or device berth provides.
                    internal.push(BindSpec {
                        src: b.src.clone(),
                        dest: b.dest.clone(),
                        readonly: b.readonly,
                    });
                } else if exists || b.create {
                    match host::grant_source(&b.src, &host.home, b.broad, b.readonly) {
                        Ok(src) => binds.push(BindSpec {
                            src,
                            dest: b.dest.clone(),
                            readonly: b.readonly,
                        }),
                        Err(why) => notes.push(format!("warning: {why}; not granted")),
                    }
                } else {
                    notes.push(format!(
                        "warning: {} does not exist on this computer; not granted",
                        b.src.display()
                    ));
                }
            }
            // Look native: the desktop's fonts and icons, read-only under
            // /run/host as Flatpak places them, with fontconfig told.
            for (host_dir, inner) in [
                ("/usr/share/fonts", "/run/host/fonts"),
                ("/usr/share/icons", "/run/host/share/icons"),
            ] {
                if std::path::Path::new(host_dir).is_dir() {
                    internal.push(BindSpec {
                        src: host_dir.into(),
                        dest: inner.into(),
                        readonly: true,
                    });
                }
            }
            extra_files.push((
                "/etc/fonts/conf.d/50-berth-host-fonts.conf".into(),
                "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig><dir>/run/host/fonts</dir></fontconfig>\n".into(),
            ));
            env.push((
                "XDG_DATA_DIRS".into(),
                if flatpak_runtime.is_some() {
                    "/app/share:/usr/share:/run/host/share"
                } else {
                    "/usr/local/share:/usr/share:/run/host/share"
                }
                .into(),
            ));
            // Look native: same machine-id and time zone as the desktop.
            for f in ["/etc/machine-id", "/etc/localtime"] {
                if let Ok(real) = std::fs::canonicalize(f) {
                    internal.push(BindSpec {
                        src: real,
                        dest: f.into(),
                        readonly: true,
                    });
                }
            }
            // Who the app is, for xdg-desktop-portal: read-only at the root
            // of its sandbox and of its bus proxy's.
            let identity = instance_dir.join("flatpak-info");
            steps.push(HostStep::WriteFile {
                path: identity.clone(),
                what: "the app's identity for the portals (/.flatpak-info)".into(),
                contents: berth_app::flatpak_info::render(&berth_app::flatpak_info::Identity {
                    app_id: app_id_of(&d.app_id),
                    runtime: &flatpak_runtime
                        .as_ref()
                        .and_then(crate::flatpak::runtime_ref)
                        .map_or_else(
                            || entry.names.first().map_or(d.image.clone(), String::clone),
                            |r| r.to_string(),
                        ),
                    instance_id: &instance_id,
                    app_path: &app_path.display().to_string(),
                    permissions: &perms,
                })
                .into_bytes(),
            });
            internal.push(BindSpec {
                src: identity.clone(),
                dest: FLATPAK_INFO.into(),
                readonly: true,
            });
            let inner_rt = grants::inner_runtime_dir(host.uid);
            if let Some(cookies) = g
                .x11_display
                .and_then(|n| host::filtered_xauthority(&host, n, &mut notes))
            {
                let src = instance_dir.join("Xauthority");
                steps.push(HostStep::WriteFile {
                    path: src.clone(),
                    what: "the X11 cookies of this display".into(),
                    contents: cookies,
                });
                let inner = inner_rt.join("Xauthority");
                internal.push(BindSpec {
                    src,
                    dest: inner.clone(),
                    readonly: true,
                });
                env.push(("XAUTHORITY".into(), inner.display().to_string()));
            }
            if let Some(conf) = &g.pulse_client_conf {
                let src = instance_dir.join("pulse-client.conf");
                steps.push(HostStep::WriteFile {
                    path: src.clone(),
                    what: "PulseAudio client settings".into(),
                    contents: grants::PULSE_CLIENT_CONF.as_bytes().to_vec(),
                });
                internal.push(BindSpec {
                    src,
                    dest: conf.clone(),
                    readonly: true,
                });
            }
            if let Some(bp) = &g.bus_proxy {
                let facts = crate::session::ask(&bp.upstream);
                // The document portal's view for this app, where Flatpak
                // puts it: what the user picks or opens is readable there.
                if let Some(m) = &facts.documents {
                    let by_app = m.join("by-app").join(app_id_of(&d.app_id));
                    if by_app.is_dir() {
                        let inner = inner_rt.join("doc");
                        // Also where the host has it, which is where the
                        // portals' paths point when the host's runtime dir
                        // is not /run/user/UID.
                        let mut dests = vec![PathBuf::from("/run/flatpak/doc"), inner.clone()];
                        if !dests.contains(m) {
                            dests.push(m.clone());
                        }
                        for dest in dests {
                            internal.push(BindSpec {
                                src: by_app.clone(),
                                dest,
                                readonly: false,
                            });
                        }
                        docs = Some((bp.upstream.clone(), inner));
                    }
                }
                match host::find_program("xdg-dbus-proxy") {
                    Some(program) => {
                        let socket = instance_dir.join("bus");
                        let mut argv = vec![
                            program.display().to_string(),
                            "--fd=0".into(),
                            format!("unix:path={}", bp.upstream.display()),
                            socket.display().to_string(),
                        ];
                        argv.extend(grants::proxy_args(app_id_of(&d.app_id), &g));
                        // The accessibility bus, through the same proxy
                        // process, with its own filter.
                        let mut extra_sockets = Vec::new();
                        if let Some(addr) = facts.a11y.clone() {
                            let a11y = instance_dir.join("a11y-bus");
                            argv.extend([addr.clone(), a11y.display().to_string()]);
                            argv.extend(crate::a11y::proxy_args());
                            extra_sockets.extend(crate::a11y::socket_path(&addr));
                            internal.push(BindSpec {
                                src: a11y,
                                dest: crate::a11y::INNER_SOCKET.into(),
                                readonly: false,
                            });
                            env.push((
                                "AT_SPI_BUS_ADDRESS".into(),
                                format!("unix:path={}", crate::a11y::INNER_SOCKET),
                            ));
                        }
                        let sandbox = proxy_sandbox(
                            places,
                            &instance_id,
                            argv,
                            &bp.upstream,
                            &extra_sockets,
                            &instance_dir,
                            &identity,
                        )?;
                        steps.push(HostStep::BusProxy {
                            upstream: bp.upstream.clone(),
                            socket: socket.clone(),
                            sandbox: Box::new(sandbox),
                        });
                        internal.push(BindSpec {
                            src: socket,
                            dest: bp.inner.clone(),
                            readonly: false,
                        });
                    }
                    None => {
                        // The app gets no bus address without the proxy.
                        notes.push(
                            "warning: no D-Bus for the app: xdg-dbus-proxy is not installed".into(),
                        );
                        env_from_grants.retain(|(k, _)| k != "DBUS_SESSION_BUS_ADDRESS");
                    }
                }
            }
            env.extend(env_from_grants);
            if g.host_network {
                network = Network::Host;
            } else if g.lan && network != Network::Host {
                // The local network only, even beside share=network.
                network = Network::Lan;
            } else if g.network && network == Network::None {
                network = Network::Pasta;
            }
            if dns.is_empty() {
                dns = g.dns.iter().filter_map(|a| a.parse().ok()).collect();
            }
            net_admin |= g.net_admin;
            share_ipc = g.ipc;
            devel = g.devel;
            multiarch = g.multiarch;
            limits.memory = limits.memory.or(g.memory);
            limits.cpu_weight = limits.cpu_weight.or(g.cpu_weight);
            limits.pids = limits.pids.or(g.pids);
            limits.io_weight = limits.io_weight.or(g.io_weight);
            limits.io_read = limits.io_read.or(g.io_read);
            limits.io_write = limits.io_write.or(g.io_write);
            // App arguments follow the app's own command.
            if !replaced && !d.command.is_empty() {
                command = d.command.iter().cloned().chain(command).collect();
            } else if !replaced && !command.is_empty() {
                let mut base = c.entrypoint().clone().unwrap_or_default();
                base.extend(c.cmd().clone().unwrap_or_default());
                command = base.into_iter().chain(command).collect();
            }
            let data = store.root().join("data").join(&d.app_id);
            let home = host::user_and_home().1;
            let carried = image
                .labels()
                .get(berth_app::containers::LABEL_HOME)
                .is_some_and(|h| *h == home);
            if !data.is_dir() && carried && flatpak_runtime.is_none() {
                // Its first home is the one its image carries.
                steps.push(HostStep::SeedHome {
                    layers: layers.clone(),
                    home: PathBuf::from(home.trim_start_matches('/')),
                    tmp: store
                        .tmp_dir()
                        .join(berth_image::fsutil::unique_name("seed-")),
                    path: data.clone(),
                });
            } else if !data.is_dir() {
                steps.push(HostStep::CreateDir {
                    path: data.clone(),
                    private: false,
                    required: true,
                });
            }
            home_source = Some(data);
            d.app_id.clone()
        }
        None => match &container {
            Some(c) => c.name.clone(),
            // The name the user gave, when the image has several.
            None => berth_image::ImageName::parse(&req.target)
                .ok()
                .map(|n| n.to_string())
                .filter(|n| entry.names.contains(n))
                .or_else(|| entry.names.first().cloned())
                .unwrap_or_else(|| req.target.clone()),
        },
    };
    for e in &req.env {
        env.push(parse_env(e)?);
    }
    // What the user opened the app with.
    let offset = command.len().saturating_sub(args.len());
    let mut forwarded = Vec::new();
    let mut types = crate::mime::Types::default();
    for &(i, uri) in &opened {
        // The file is held open from here: its type is read from it, and
        // apply hands over only this same file (device and inode).
        let Some((path, file)) =
            forwarded_file(&args[i], uri).and_then(|p| crate::mime::open(&p).map(|o| (p, o)))
        else {
            notes.push(format!(
                "warning: {} is not a file berth can hand to the app; passed as it is",
                args[i]
            ));
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let writable = types.editable(&file, &name, &edit);
        let (dev, ino) = (file.dev, file.ino);
        match (&docs, &app) {
            (Some(_), Some(_)) => forwarded.push(Forwarded {
                path,
                uri,
                argv_index: offset + i,
                writable,
                dev,
                ino,
            }),
            _ => {
                // No document portal: that file alone, at its own path,
                // checked again just before the sandbox starts.
                notes.push(format!(
                    "note: no document portal runs; {} is bound into the sandbox by itself{}",
                    path.display(),
                    if writable { "" } else { ", read-only" }
                ));
                steps.push(HostStep::CheckFile {
                    path: path.clone(),
                    dev,
                    ino,
                });
                internal.push(BindSpec {
                    src: path.clone(),
                    dest: path,
                    readonly: !writable,
                });
            }
        }
    }
    if let (Some((bus, inner)), Some(d), false) = (&docs, &app, forwarded.is_empty()) {
        steps.push(HostStep::ForwardFiles {
            bus: bus.clone(),
            app_id: app_id_of(&d.app_id).to_owned(),
            inner: inner.clone(),
            files: forwarded,
        });
    }
    // A mask needs its path to exist: the configuration directory is made
    // by a step before the sandbox starts; anything else missing is not
    // there to protect.
    protected.retain(|p| {
        p.path.exists()
            || steps
                .iter()
                .any(|s| matches!(s, HostStep::CreateDir { path, .. } if *path == p.path))
    });
    let mut image_env = c.env().clone().unwrap_or_default();
    let (mut subtrees, mut links) = (Vec::new(), Vec::new());
    if let Some(rt) = &flatpak_runtime {
        // /usr and /app are the images' own, read-only, as in Flatpak:
        // nothing is bound into them.
        let reserved = |b: &BindSpec| b.dest.starts_with("/usr") || b.dest.starts_with("/app");
        for b in binds.iter().chain(&internal).filter(|b| reserved(b)) {
            notes.push(format!(
                "warning: {} is inside the Flatpak app's /usr or /app; not granted",
                b.dest.display()
            ));
        }
        binds.retain(|b| !reserved(b));
        internal.retain(|b| !reserved(b));
        // What the run writes or binds under /etc stays berth's.
        let taken: Vec<PathBuf> = extra_files
            .iter()
            .map(|(p, _)| p.clone())
            .chain(internal.iter().chain(&binds).map(|b| b.dest.clone()))
            .collect();
        let l = crate::flatpak::layout(store, &image, rt, &taken)?;
        subtrees = l.subtrees;
        links = l.links;
        image_env = l.env.into_iter().chain(image_env).collect();
    }
    if !req.dns.is_empty() && matches!(network, Network::None | Network::Host) {
        return Err(Error::Invalid(
            "--dns needs a network of the app's own (--network or --lan-only, or the app's share=network)"
                .into(),
        ));
    }
    for (flag, v) in [
        ("--io-read", limits.io_read),
        ("--io-write", limits.io_write),
    ] {
        if v == Some(0) {
            return Err(Error::Invalid(format!(
                "{flag} 0 would stop all reading or writing; give a rate above 0, or none for no limit"
            )));
        }
    }
    // Bandwidth limits go to the disks of the app's files: the store (its
    // layers, its home) and what it was granted.
    if limits.io_read.is_some() || limits.io_write.is_some() {
        let mut devs: Vec<String> = std::iter::once(places.store.as_path())
            .chain(binds.iter().map(|b| b.src.as_path()))
            .filter_map(|p| std::fs::metadata(p).ok())
            .filter_map(|m| berth_sandbox::cgroup::disk_of(std::os::unix::fs::MetadataExt::dev(&m)))
            .collect();
        devs.sort();
        devs.dedup();
        limits.io_devices = devs;
    }
    let run = RunRequest {
        name: name.clone(),
        instance_id,
        layers,
        subtrees,
        links,
        image: ImageDefaults {
            env: image_env,
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone(),
        },
        command,
        binds,
        internal_binds: internal,
        protected,
        env,
        workdir: req.workdir.clone(),
        network,
        share_ipc,
        devel,
        multiarch,
        home_source,
        extra_files,
        limits: limits.clone(),
        host: host::host_info(places.state.clone()),
        dns,
        net_admin: net_admin && network != Network::Lan,
        upper: match (&container, writable) {
            (Some(c), _) => Some(containers.root(&c.name)),
            (None, true) => Some(
                store
                    .tmp_dir()
                    .join(berth_image::fsutil::unique_name("upper-")),
            ),
            (None, false) => None,
        },
    };
    let sandbox = berth_sandbox::build(&run)?;
    Ok(LaunchPlan {
        sandbox,
        app: app.map(|d| d.app_id),
        image_name: name,
        image_digest: entry.digest.to_string(),
        diff_ids: diff_ids.iter().map(ToString::to_string).collect(),
        limits,
        devel,
        multiarch,
        state_dir: places.state.clone(),
        host_steps: steps,
        notes,
        container: container.map(|c| c.name),
        temporary_root: writable,
    })
}

/// The runtime image of a Flatpak app image: the one its deployment was
/// installed with, or (a run of an image not installed) the store's
/// newest image of the ref its metadata names. `None`: not a Flatpak app.
fn flatpak_runtime_of(
    store: &Store,
    image: &berth_image::Image,
    app: Option<&berth_app::deploy::Deployment>,
) -> Result<Option<berth_image::Image>> {
    // An installed app is a Flatpak exactly when it was installed as one.
    if app.is_some_and(|d| d.runtime.is_none()) {
        return Ok(None);
    }
    let labels = image.labels();
    if labels.contains_key(berth_app::metadata::LABEL_ID) {
        return match berth_app::AppMeta::from_labels(&labels) {
            Err(e @ berth_app::metadata::MetaError::BothKinds) => {
                Err(Error::Invalid(format!("cannot run this image: {e}")))
            }
            _ => Ok(None),
        };
    }
    let fp = match berth_app::flatpak_image::parse_app(
        labels
            .get(berth_app::flatpak_image::LABEL_REF)
            .map(String::as_str),
        labels
            .get(berth_app::flatpak_image::LABEL_METADATA)
            .map(String::as_str),
    ) {
        Ok(Some(fp)) => fp,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(Error::Invalid(format!(
                "cannot run this Flatpak image: {e}"
            )));
        }
    };
    let entry = match app.and_then(|d| d.runtime.as_deref()) {
        Some(d) => Digest::parse(d)
            .and_then(|d| store.entry_by_digest(&d))
            .map_err(|_| {
                Error::Store(format!(
                    "the Flatpak runtime {} that {} was installed with is gone from the store; \
                     import or pull it again, or reinstall the app",
                    fp.runtime,
                    app.map_or("", |d| d.app_id.as_str())
                ))
            })?,
        None => crate::flatpak::find_runtime(store, &fp.runtime, None)?,
    };
    Ok(Some(store.load_image(&entry)?))
}
