//! Command-line definitions (clap derive). Help text is the CLI reference;
//! docs/cli.md mirrors it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "Desktop application containers on OCI images",
    long_about = "Desktop application containers on OCI images.\n\n\
        berth keeps images in a local store that is a valid OCI image layout \
        (readable by skopeo and umoci), unpacks each layer once, and shares it \
        between images.",
    after_help = "State lives in $BERTH_HOME (default: $XDG_DATA_HOME/berth, or /var/lib/berth for root)."
)]
pub struct Cli {
    /// Store directory (overrides $BERTH_HOME)
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parse the process's arguments (exits on an error or `--help`).
    pub fn from_args() -> Cli {
        Cli::parse()
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import an image from an OCI archive, OCI layout directory or Docker archive
    #[command(long_about = "Import an image from a file or directory.\n\n\
        The format is detected from the contents:\n  \
        - an OCI archive (skopeo copy ... oci-archive:FILE, podman save --format oci-archive)\n  \
        - an OCI layout directory (skopeo copy ... oci:DIR)\n  \
        - a Docker archive (docker save, podman save --format docker-archive)\n\
        Archives may be gzip- or zstd-compressed; layers may be uncompressed, gzip or zstd.\n\n\
        Every blob is verified against its digest while it streams in, each layer is \
        unpacked once, and layers already in the store are not stored again. Hostile \
        content (paths escaping the layer, device nodes, setuid bits, decompression \
        bombs) is refused or neutralized; see docs/threat-model.md.")]
    Import {
        /// Archive file or layout directory
        source: PathBuf,
        /// Name for the imported image (NAME[:TAG]); replaces names in the input
        #[arg(long, short = 't', value_name = "NAME[:TAG]")]
        tag: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
        /// Print only the image ID
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Write an image to an OCI archive (readable by skopeo and podman load)
    Export {
        /// Image name or ID
        image: String,
        /// Output file (written atomically)
        file: PathBuf,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List images in the store
    Images {
        /// Print as JSON
        #[arg(long)]
        json: bool,
        /// Print only image IDs
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Show an image's config, labels, layers and sizes
    Inspect {
        /// Image name or ID
        image: String,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Give an image another name
    Tag {
        /// Existing image name or ID
        image: String,
        /// New name (NAME[:TAG]); moved here if another image had it
        name: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove image names (and the image once no name is left)
    #[command(long_about = "Remove images.\n\n\
        Given a name, removes that name; given an ID, removes the image with all its \
        names (that needs --force when it has more than one). Space is reclaimed \
        right away unless another berth process is busy, in which case `berth gc` \
        reclaims it later.")]
    Rmi {
        /// Image names or IDs
        #[arg(required = true)]
        images: Vec<String>,
        /// Remove an image by ID even if it has several names
        #[arg(long, short = 'f')]
        force: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove unreferenced blobs, unpacked layers and leftover temp files
    Gc {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Verify the store: blobs, references and the content of unpacked layers
    #[command(long_about = "Check the store.\n\n\
        Re-hashes every blob, checks that every image's manifest, config and layers \
        are present, and compares every unpacked layer with the content record made \
        when it was unpacked (paths, types, modes, owners, sizes, xattrs and file \
        digests). Lists harmless leftovers (temp files from interrupted work, \
        unreferenced blobs and layers) that `berth gc` removes. Exits 1 if anything \
        is damaged.\n\n\
        With --repair: removes corrupt blobs, re-creates damaged or missing layers \
        from their blobs, refetches missing blobs of installed apps from the \
        registry they came from, removes app directories an interrupted install \
        left without a current deployment, then checks again and reports.")]
    Fsck {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Fix what can be fixed, then check again
        #[arg(long)]
        repair: bool,
    },
    /// Run a command from an image in a sandbox
    #[command(
        long_about = "Run a command from an image in a sandbox.\n\n\
        Like `podman run --rm`, for desktop use: the command runs as you (your uid \
        and gid inside), in new user, mount, pid, ipc, uts and network namespaces. \
        The image is a read-only overlay root; /tmp and your home are empty tmpfs; \
        /proc is private and /dev minimal. All capabilities are dropped, \
        no_new_privs is set and a seccomp filter at least as strict as Flatpak's \
        applies. With a terminal on stdin and stdout the command gets its own pty.\n\n\
        Exit status: the command's, 128+N if it died from signal N, 125 if the \
        sandbox could not be set up, 126/127 if the command could not be run.",
        after_help = "Examples:\n  berth run berth-demo\n  berth run berth-demo -- /bin/sh\n  \
        berth run --bind ~/Documents:/data:ro --env LANG=C.UTF-8 IMAGE -- ls /data"
    )]
    Run(RunArgs),
    /// Install an app: review its permissions, consent, deploy, add it to the menu
    #[command(long_about = "Install an app from an image.\n\n\
        SOURCE is an archive or OCI directory (imported first) or an image already in \
        the store. The image must declare an app with org.berth.app.* labels (see \
        docs/app-labels.md). berth shows the app's name, ID and size and the \
        permissions it asks for in plain words, highest risk first, and asks for \
        consent; a reinstall or upgrade asks again only about new permissions. \
        The desktop entry and icon are exported to $BERTH_HOME/exports/share.")]
    Install {
        /// Archive, OCI directory, or image name/ID
        source: String,
        /// Consent without asking (for scripts)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Install as a second copy ID@NAME (e.g. a testing build) next to the stable one
        #[arg(long = "as", value_name = "NAME")]
        as_: Option<String>,
        /// Print the result as JSON (reviews and questions stay off stdout)
        #[arg(long)]
        json: bool,
    },
    /// Make a channel copy (ID@NAME, from `install --as NAME`) the stable install
    Promote {
        /// ID@NAME
        app: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove an installed app (its data stays unless --delete-data)
    Uninstall {
        /// App ID
        app: String,
        /// Also delete the app's private data
        #[arg(long)]
        delete_data: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List installed apps
    List {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show an installed app
    Info {
        /// App ID
        app: String,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show an app's effective permissions and where each comes from, and
    /// what the portals remember for it
    #[command(
        long_about = "Show an app's effective permissions and where each comes from.\n\n\
        Then what the portals' permission store holds for the app (camera, \
        notifications, background, documents... as `flatpak permission-show` lists \
        them), when a session bus is there. --json prints the effective permissions; \
        --portals --json prints the portal entries."
    )]
    Permissions {
        /// App ID
        app: String,
        /// Print as JSON
        #[arg(long)]
        json: bool,
        /// Only what the portals' permission store holds for the app
        #[arg(long)]
        portals: bool,
        /// Remove what the portals' permission store holds for the app
        #[arg(long, conflicts_with = "portals")]
        reset_portals: bool,
    },
    /// Grant or revoke permissions for an app, layered over the image's
    Override {
        /// App ID
        app: String,
        /// Permission to add, e.g. filesystem=xdg-documents:ro
        #[arg(long, value_name = "PERMISSION")]
        grant: Vec<String>,
        /// Permission to take away, e.g. share=network
        #[arg(long, value_name = "PERMISSION")]
        revoke: Vec<String>,
        /// Drop all overrides for the app
        #[arg(long, conflicts_with_all = ["grant", "revoke"])]
        reset: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List running instances
    Ps {
        /// Print as JSON
        #[arg(long)]
        json: bool,
        /// Print only instance IDs, one per line (for scripts: `berth ps -q | xargs -n1 berth kill`)
        #[arg(long, short = 'q', conflicts_with = "json")]
        quiet: bool,
    },
    /// Make a working container: an image with a writable root that lasts across runs
    #[command(
        long_about = "Make a working container NAME of IMAGE: its root is writable and \
lasts across runs (`berth run --container NAME`), for a project's exploratory phase; \
`berth commit NAME IMAGE` makes an image of what it changed, `berth rm NAME` removes it. \
Runs of images and apps stay temporary: only containers keep their root."
    )]
    Create {
        /// Container name: letters, digits, '_', '.', '-'
        #[arg(long)]
        name: String,
        /// Image name or ID (or a registry reference, pulled first)
        image: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List working containers
    Containers {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove working containers and what their runs wrote
    Rm {
        /// Container names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Make an image of what a container (or a --writable instance) changed
    #[command(
        visible_alias = "snapshot",
        long_about = "Make image IMAGE (name[:tag]) of WHAT's image plus one layer of \
what its root changed: WHAT is a working container, or a running instance started with \
`--writable`. The new image keeps the original's labels and records it as its parent \
(label org.berth.commit.parent). A running instance is frozen while its changes are read, \
where its cgroup has a freezer. With --with-data, a second layer holds the app's private \
home (its data directory); that alone can be committed of an instance on a read-only root. \
For a working container, IMAGE defaults to the container's name (NAME:latest)."
    )]
    Commit {
        /// Working container name, or running instance ID (or unique prefix)
        what: String,
        /// Name for the new image, e.g. my/tool:2 (default for a container: its name)
        image: Option<String>,
        /// Add a layer of the app's private data
        #[arg(long)]
        with_data: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Tell which app and instance a process belongs to (for window managers and ps tools)
    #[command(
        long_about = "Tell which app and instance a process belongs to: one of your running \
instances whose sandbox (pid namespace) or cgroup holds it, else the scope name of its cgroup \
(`app-berth-<app ID>-<instance>.scope`, which a desktop can read from /proc/PID/cgroup itself; \
see docs/design.md). Exits 1 when the process is not in a berth sandbox."
    )]
    Identify {
        /// Process ID (as the host sees it)
        pid: i32,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop an instance (SIGKILL to the whole sandbox by default)
    Kill {
        /// Instance ID (or unique prefix) or name
        instance: String,
        /// Signal to send instead, e.g. TERM (forwarded to the app)
        #[arg(long, short = 's', value_name = "SIGNAL")]
        signal: Option<String>,
    },
    /// Freeze every process of an instance
    Pause {
        /// Instance ID (or unique prefix) or name
        instance: String,
    },
    /// Thaw a paused instance
    Resume {
        /// Instance ID (or unique prefix) or name
        instance: String,
    },
    /// Build runtime and SDK images from distribution packages
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Build an app image from a manifest, on a runtime and its SDK
    #[command(
        long_about = "Build an app image from a TOML manifest (docs/build-manifest.md).\n\n\
        The source directory is copied to /build, an empty install dir (default /app) \
        is mounted, and each build step runs with /bin/sh -e in the sandbox on the SDK \
        image, without network unless the manifest sets `network = true`. Step output \
        is shown as it runs. The install dir becomes one reproducible layer (sorted, \
        root-owned, dated SOURCE_DATE_EPOCH or 0, so the same files give the same digest) on top of the \
        runtime's unchanged layers; the image carries the app labels and the \
        org.opencontainers.image.base.name/.base.digest annotations that rebase uses. \
        A failed step leaves no image behind.",
        after_help = "Example:\n  berth build examples/hello-x11/berth.toml\n  berth bundle org.example.HelloX11 hello.berth"
    )]
    Build {
        /// The manifest file (TOML)
        manifest: PathBuf,
        /// Name for the result (default: the manifest's `image`, else ID:latest)
        #[arg(long, short = 't')]
        tag: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write an app as one .berth file (an OCI archive) that users can install
    #[command(
        long_about = "Write an app as one .berth file that users can download and install \
        with `berth install FILE` (or by opening it from a file manager after `berth integrate`).\n\n\
        Inside it is a plain OCI archive, so skopeo and podman read it. By default it holds \
        the app and its runtime. With --thin it holds only the app's own layers; the runtime \
        is named by the image's base annotations and must already be on the user's machine \
        (or in a registry)."
    )]
    Bundle {
        /// Installed app ID, or image name/ID
        source: String,
        /// Output file (written atomically)
        file: PathBuf,
        /// Leave out the runtime's layers
        #[arg(long)]
        thin: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Fetch an image from an OCI registry (only the blobs the store lacks)
    #[command(
        long_about = "Fetch an image from any OCI distribution registry into the store.\n\n\
        Only blobs the store lacks are downloaded, four at a time, each verified against its \
        digest before use; the layers of a runtime the store has are not fetched, whatever \
        their compression. An interrupted pull resumes where it stopped (range requests). \
        Credentials come from the auth files `podman login` and `docker login` write, and \
        their credential helpers; basic and token auth both work. The containers \
        configuration applies: registries.conf (short names, mirrors, insecure and blocked \
        registries), policy.json and certs.d (docs/registries.md). Loopback registries use \
        plain HTTP; others need TLS unless registries.conf marks them insecure or they are \
        listed in $BERTH_INSECURE_REGISTRIES.",
        after_help = "Example:\n  berth pull localhost:5000/apps/hello-x11:1.0"
    )]
    Pull {
        /// HOST[:PORT]/NAME[:TAG|@DIGEST]
        reference: String,
        /// Print the result (with bytes downloaded) as JSON
        #[arg(long)]
        json: bool,
    },
    /// Upload an image to an OCI registry (blobs it already has are skipped)
    #[command(
        long_about = "Upload an image to an OCI registry; blobs it already has are skipped. \
        With --sign KEY (from `berth key generate`) an ed25519 signature of the manifest digest \
        is stored next to it, as the tag sha256-<digest>.sig (docs/signatures.md). \
        With --delta-from OLD (an earlier version in the store, e.g. the one users have), \
        berth also publishes layer deltas from OLD to this image (an oci-delta artifact \
        referring to it), so that `berth pull` and `berth update` from OLD fetch what \
        changed inside each layer rather than whole layers; other clients ignore it."
    )]
    Push {
        /// Image name or ID in the store
        image: String,
        /// HOST[:PORT]/NAME[:TAG]
        reference: String,
        /// Sign with this secret key file
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Also publish layer deltas from this earlier image (repeatable)
        #[arg(long, value_name = "OLD")]
        delta_from: Vec<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Make a signing key pair: PREFIX.key (secret) and PREFIX.pub
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Update installed apps from the registry they were installed from
    #[command(
        long_about = "Check the registry each app was installed from (`berth install REF`) and \
        fetch only the blobs the store lacks. The new deployment replaces the current one \
        atomically; running instances keep their old files until they exit, and the old \
        deployment stays for `berth rollback`. New permissions need consent again (--yes for \
        scripts). Masked apps are skipped."
    )]
    Update {
        /// App IDs (default: every installed app)
        apps: Vec<String>,
        /// Show what would be downloaded, in bytes, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Consent to new permissions without asking
        #[arg(long, short = 'y')]
        yes: bool,
        /// Print the result as JSON (reviews and questions stay off stdout)
        #[arg(long)]
        json: bool,
    },
    /// Go back to the app's previous deployment
    Rollback {
        /// App ID
        app: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop `berth update` from updating an app (--remove to allow it again)
    Mask {
        /// App ID
        app: String,
        /// Unmask
        #[arg(long)]
        remove: bool,
    },
    /// Move an app onto another runtime (e.g. one with security fixes) without rebuilding
    #[command(
        long_about = "Replace the app image's runtime layers with those of another runtime, \
        using the image's org.opencontainers.image.base.name/.base.digest annotations: the \
        old runtime's layers must be exactly the first layers of the app. The app's own \
        layers, labels and permissions stay; the result is deployed as a new deployment \
        (roll back with `berth rollback`). RUNTIME is an image in the store or a registry \
        reference (pulled first)."
    )]
    Rebase {
        /// App ID
        app: String,
        /// The new runtime
        #[arg(long, value_name = "RUNTIME")]
        onto: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Install berth for the desktop: a stable launcher, the menu entries, the .berth type
    #[command(
        long_about = "Integrate berth with the desktop.\n\n\
        1. A stable launcher: menu entries must not call a build directory's binary, \
        which `cargo clean` or a rebuild elsewhere removes. Unless this berth is the \
        `berth` on PATH already, it is installed as ~/.local/bin/berth \
        (/usr/local/bin/berth for root; $BERTH_LAUNCHER overrides), as a hard link \
        or a copy.\n\
        2. Every installed app's menu entry is generated again to call it.\n\
        3. The application/vnd.berth.bundle MIME type for *.berth files, and a desktop \
        entry that opens them with `berth install` in a terminal, so the permission \
        review is shown before anything is installed.\n\n\
        Files go to $BERTH_HOME/exports/share (see the hint `berth install` prints). \
        Whenever the program the entries call is gone, the next berth command \
        rewrites them too.",
        after_help = "Example:\n  cargo build --release && target/release/berth integrate"
    )]
    Integrate {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script
    #[command(
        long_about = "Print a completion script for SHELL on standard output.\n\n\
        bash: berth completions bash > ~/.local/share/bash-completion/completions/berth\n\
        zsh:  berth completions zsh > ~/.zfunc/_berth   (with fpath+=~/.zfunc)\n\
        fish: berth completions fish > ~/.config/fish/completions/berth.fish"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Write the man pages (berth.1 and one per command) into DIR
    #[command(
        long_about = "Write berth's man pages, generated from the same definitions as \
        --help, into DIR: berth.1 and berth-COMMAND.1 for every command.\n\n\
        For example: berth man ~/.local/share/man/man1 && man berth-install"
    )]
    Man {
        /// Where to write the pages (created if missing)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Run a command inside a running instance (default: /bin/sh)
    Enter {
        /// Instance ID (or unique prefix) or name
        instance: String,
        /// Command and arguments
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Generate an ed25519 key pair for `berth push --sign`
    Generate {
        /// Path prefix: writes PREFIX.key (mode 0600) and PREFIX.pub
        prefix: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum RuntimeCommand {
    /// Build a runtime (and with --sdk its SDK) from Debian packages with mmdebstrap
    #[command(
        long_about = "Build a runtime image from Debian packages with mmdebstrap \
        (minbase variant plus --packages). With --sdk, also build the SDK: the same \
        packages plus --sdk-packages, stored as one extra layer on top of the runtime's \
        unchanged layer, so the two share it. Each image records its package list with \
        versions in the label org.berth.runtime.packages (`berth runtime packages`).\n\n\
        As root mmdebstrap runs in root mode; as a user in unshare mode, which needs \
        entries in /etc/subuid and /etc/subgid.",
        after_help = "Example:\n  berth runtime create example/runtime:bookworm --from debian:bookworm \\\n    --packages libx11-6 --sdk --sdk-packages gcc,libc6-dev,libx11-dev"
    )]
    Create {
        /// Name of the runtime image (NAME[:TAG])
        name: String,
        /// Distribution and suite, e.g. debian:bookworm
        #[arg(long)]
        from: String,
        /// Packages to add to the runtime (comma-separated, repeatable; /path/to/file.deb for a local package)
        #[arg(long, short = 'p', value_name = "PKGS")]
        packages: Vec<String>,
        /// Also build the SDK
        #[arg(long)]
        sdk: bool,
        /// Packages the SDK adds (default: gcc,g++,make,pkg-config,libc6-dev); implies --sdk
        #[arg(long, value_name = "PKGS")]
        sdk_packages: Vec<String>,
        /// Name of the SDK image (default: NAME-sdk with the same tag)
        #[arg(long, value_name = "NAME")]
        sdk_name: Option<String>,
        /// Debian mirror URL or sources line, passed to mmdebstrap (repeatable)
        #[arg(long, value_name = "URL")]
        mirror: Vec<String>,
        /// Split the runtime into up to N layers by package (2-64): big
        /// packages alone, the others by name, so an update of one package
        /// changes one small layer (docs/on-disk-format.md). Default: one layer
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u16).range(1..=64))]
        chunks: u16,
    },
    /// List the packages (with versions) a runtime or SDK was built from
    Packages {
        /// Image name or ID
        image: String,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
}

pub use crate::run_args::RunArgs;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_args::{RunOnly, RunOnlyCommand};

    /// The launch path's parser accepts exactly what the full one does,
    /// with the same result, and leaves everything else (help, errors) to it.
    #[test]
    fn run_only_parses_like_the_full_cli() {
        let accepted: &[&[&str]] = &[
            &["berth", "run", "img"],
            &["berth", "run", "img", "--", "/bin/sh", "-c", "echo --x"],
            &[
                "berth", "run", "--home", "/h", "-e", "A=1", "--env", "B=2", "img",
            ],
            &[
                "berth",
                "run",
                "--bind",
                "/a:/b:ro",
                "--network",
                "--memory",
                "1G",
                "img",
            ],
            &[
                "berth",
                "run",
                "--cpu-weight",
                "5",
                "--pids",
                "9",
                "-w",
                "/tmp",
                "img",
            ],
            &[
                "berth",
                "run",
                "--command",
                "/bin/sh",
                "org.x.App",
                "--",
                "-i",
            ],
            &["berth", "run", "--host-network", "--print-plan", "img"],
        ];
        for argv in accepted {
            let full = Cli::try_parse_from(*argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let Ok(RunOnly {
                home,
                command: RunOnlyCommand::Run(args),
            }) = RunOnly::try_parse_from(*argv)
            else {
                panic!("{argv:?} not taken by the launch path");
            };
            let fast = Cli {
                home,
                command: Command::Run(args),
            };
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{argv:?}");
        }
        let refused: &[&[&str]] = &[
            &["berth", "run"],
            &["berth", "run", "--help"],
            &["berth", "run", "--network", "--host-network", "img"],
            &["berth", "run", "--no-such-flag", "img"],
        ];
        for argv in refused {
            assert!(RunOnly::try_parse_from(*argv).is_err(), "{argv:?}");
            assert!(Cli::try_parse_from(*argv).is_err(), "{argv:?}");
        }
    }
}
