//! The options of `berth run`, shared by the full command line
//! (`berth-cli`) and the front door (`berth`), so both accept the same
//! words.

use clap::Args;
use std::path::PathBuf;

/// Options of `berth run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Image name or ID, or an installed app's ID (not with --container)
    #[arg(required_unless_present = "container")]
    pub image: Option<String>,
    /// Run working container NAME (`berth create`): its image on its own
    /// writable root, which lasts across runs
    #[arg(long, value_name = "NAME", conflicts_with_all = ["image", "writable"])]
    pub container: Option<String>,
    /// Give this run a writable root of its own (gone when it ends, unless
    /// `berth commit` makes an image of it); the root is read-only otherwise
    #[arg(long)]
    pub writable: bool,
    /// Command and arguments (default: the image's entrypoint and cmd). For
    /// an installed app these are arguments to the app's own command.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// Run PROGRAM instead of the app's command, with the app's
    /// permissions; arguments after `--` go to PROGRAM
    /// (e.g. `berth run org.example.App --command /bin/sh`)
    #[arg(long = "command", value_name = "PROGRAM")]
    pub command_override: Option<String>,
    /// Bind a host path: SRC:DST[:ro|:rw] (absolute paths)
    #[arg(long, value_name = "SRC:DST[:ro]")]
    pub bind: Vec<String>,
    /// Set an environment variable
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the sandbox
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workdir: Option<String>,
    /// Give the sandbox the internet through user-mode networking (pasta),
    /// in a network namespace of its own: no access to this computer's
    /// loopback services or abstract sockets (off by default)
    #[arg(long, conflicts_with = "host_network")]
    pub network: bool,
    /// As --network, but only the local network (private, shared and
    /// link-local addresses) is reachable, not the internet
    #[arg(long, conflicts_with = "host_network")]
    pub lan_only: bool,
    /// DNS server for the sandbox (an IP address; repeatable), in place of
    /// the host's resolver (with --network or --lan-only)
    #[arg(long, value_name = "ADDR")]
    pub dns: Vec<String>,
    /// Give the sandbox /dev/net/tun and CAP_NET_ADMIN over its own network
    /// namespace (a VPN client's tun device and routes; the `device=tun`
    /// permission); not with --host-network or --lan-only
    #[arg(long, conflicts_with_all = ["host_network", "lan_only"])]
    pub tun: bool,
    /// Share this computer's own network namespace, loopback services and
    /// abstract sockets (X11, D-Bus) included (off by default; high risk)
    #[arg(long)]
    pub host_network: bool,
    /// Memory limit, e.g. 512M or 2G (needs a cgroup)
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU weight 1-10000 (default 100; needs a cgroup)
    #[arg(long, value_name = "N")]
    pub cpu_weight: Option<u64>,
    /// Maximum number of processes (needs a cgroup)
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// I/O weight 1-10000 (default 100; applied where the disk's scheduler has weights, else a warning)
    #[arg(long, value_name = "N")]
    pub io_weight: Option<u64>,
    /// Read at most this many bytes a second from the disks the app's files are on, e.g. 10M
    #[arg(long, value_name = "SIZE")]
    pub io_read: Option<String>,
    /// Write at most this many bytes a second to those disks, e.g. 10M
    #[arg(long, value_name = "SIZE")]
    pub io_write: Option<String>,
    /// Print the sandbox plan as JSON and do not run anything
    #[arg(long)]
    pub print_plan: bool,
}

/// `berth run` alone: what the front door (`berth`) parses before it
/// launches; anything it does not accept, help included, goes to the full
/// command line, which parses it as `Cli`.
#[derive(clap::Parser, Debug)]
#[command(name = "berth")]
pub struct RunOnly {
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RunOnlyCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RunOnlyCommand {
    Run(RunArgs),
}

/// The launch library's request for these options.
pub fn request(a: RunArgs) -> berth_launch::Request {
    berth_launch::Request {
        target: a.image.unwrap_or_default(),
        args: a.command,
        command: a.command_override,
        binds: a.bind,
        env: a.env,
        workdir: a.workdir,
        network: a.network,
        host_network: a.host_network,
        memory: a.memory,
        cpu_weight: a.cpu_weight,
        pids: a.pids,
        io_weight: a.io_weight,
        io_read: a.io_read,
        io_write: a.io_write,
        container: a.container,
        writable: a.writable,
        lan_only: a.lan_only,
        dns: a.dns,
        tun: a.tun,
    }
}
