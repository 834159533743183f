//! The seccomp policy: data first (printable, testable), then compiled to
//! BPF by `bpf`. Default deny: a syscall runs only if it is on the
//! allowlist, which starts from Docker's default profile; anything else,
//! including syscalls newer than this list, fails with ENOSYS so programs
//! take their fallbacks. Flatpak's rules (with its errnos) come first, so
//! every call Flatpak refuses is refused here the same way.
//!
//! ABIs: x86_64 is the native one. The x32 ABI and unknown architectures
//! get ENOSYS. The i386 ABI (`int 0x80`) gets ENOSYS too, unless the app
//! has `allow=multiarch` (Wine, Steam): then the same rules apply to it.

mod bpf;
mod syscalls;

use std::collections::BTreeMap;

use seccompiler::BpfProgram;
use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Errno {
    EPERM,
    ENOSYS,
    EAFNOSUPPORT,
}

impl Errno {
    fn raw(self) -> u32 {
        (match self {
            Errno::EPERM => libc::EPERM,
            Errno::ENOSYS => libc::ENOSYS,
            Errno::EAFNOSUPPORT => libc::EAFNOSUPPORT,
        }) as u32
    }
}

/// An argument test on the low 32 bits of an argument (the kernel reads
/// ioctl requests, socket families, clone flags and personalities as
/// 32-bit values, so the high half cannot smuggle anything past).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// `arg & mask == value`
    ArgMasked {
        arg: u8,
        mask: u32,
        value: u32,
        means: &'static str,
    },
    /// `arg & bits != 0`
    ArgAnyBit {
        arg: u8,
        bits: u32,
        means: &'static str,
    },
    /// arg is none of these values
    ArgNotIn {
        arg: u8,
        values: Vec<u32>,
        means: &'static str,
    },
}

/// A refusal, checked before the allowlist: the first rule whose
/// condition holds decides.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Rule {
    pub syscall: &'static str,
    pub errno: Errno,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SeccompPolicy {
    /// For every syscall not allowed below, and for unknown ABIs.
    pub default_errno: Errno,
    /// The i386 ABI follows the same rules (`allow=multiarch`); otherwise
    /// every i386 syscall gets `default_errno`.
    pub multiarch: bool,
    pub deny: Vec<Rule>,
    pub allow: Vec<&'static str>,
}

/// Docker's default allowlist (moby profiles/seccomp/default.json, the
/// unconditional part), less what Flatpak's rules or ours refuse below,
/// plus syscalls added to Linux since (6.5-6.13) that need no privilege.
const ALLOW: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // Conditional below (refusals first), allowed otherwise.
    "clone",
    "socket",
    "personality",
];

/// Debugging and introspection of other processes: `allow=devel` only.
/// Without it they fail as the kernel would fail them without privilege.
const DEVEL: &[&str] = &[
    "ptrace",
    "perf_event_open",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "kcmp",
    "pidfd_getfd",
];

/// Namespace flags of clone(2): none may be created from inside.
const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

fn deny(errno: Errno, names: &[&'static str]) -> Vec<Rule> {
    names
        .iter()
        .map(|s| Rule {
            syscall: s,
            errno,
            when: None,
        })
        .collect()
}

/// What the app may do beyond the default (`allow=` permissions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allow {
    /// ptrace, perf and the other DEVEL calls; any personality.
    pub devel: bool,
    /// 32-bit x86 programs.
    pub multiarch: bool,
}

impl SeccompPolicy {
    pub fn default_policy(devel: bool) -> SeccompPolicy {
        SeccompPolicy::new(Allow {
            devel,
            multiarch: false,
        })
    }

    pub fn new(allow: Allow) -> SeccompPolicy {
        // Flatpak's list, with its errnos.
        let mut rules = deny(
            Errno::EPERM,
            &[
                "syslog",
                "uselib",
                "acct",
                "modify_ldt",
                "quotactl",
                "add_key",
                "keyctl",
                "request_key",
                "move_pages",
                "mbind",
                "get_mempolicy",
                "set_mempolicy",
                "migrate_pages",
                "unshare",
                "setns",
                "mount",
                "umount",
                "umount2",
                "pivot_root",
                "chroot",
            ],
        );
        rules.push(Rule {
            syscall: "clone",
            errno: Errno::EPERM,
            when: Some(When::ArgAnyBit {
                arg: 0,
                bits: CLONE_NS_FLAGS,
                means: "new namespaces (CLONE_NEWUSER and the others)",
            }),
        });
        for (req, means) in [
            (libc::TIOCSTI, "TIOCSTI"),
            (libc::TIOCLINUX, "TIOCLINUX"),
            (libc::TIOCSETD, "TIOCSETD"),
        ] {
            rules.push(Rule {
                syscall: "ioctl",
                errno: Errno::EPERM,
                when: Some(When::ArgMasked {
                    arg: 1,
                    mask: 0xffff_ffff,
                    value: req as u32,
                    means,
                }),
            });
        }
        rules.extend(deny(
            Errno::ENOSYS,
            &[
                "clone3",
                "open_tree",
                "open_tree_attr",
                "move_mount",
                "fsopen",
                "fsconfig",
                "fsmount",
                "fspick",
                "mount_setattr",
                "io_uring_setup",
                "io_uring_enter",
                "io_uring_register",
                // i386's socket multiplexer: its arguments sit in memory,
                // out of the filter's sight, so the family rule on socket()
                // could not hold. libc uses the direct calls (Linux 4.3+).
                "socketcall",
            ],
        ));
        // Privileged calls that no app needs, refused as the kernel would
        // refuse them without the capability (so the errno is the usual one).
        rules.extend(deny(
            Errno::EPERM,
            &[
                "init_module",
                "finit_module",
                "delete_module",
                "kexec_load",
                "kexec_file_load",
                "bpf",
                "open_by_handle_at",
                "name_to_handle_at",
                "reboot",
                "swapon",
                "swapoff",
                "iopl",
                "ioperm",
                "userfaultfd",
                "sethostname",
                "setdomainname",
                "settimeofday",
                "clock_settime",
                "clock_settime64",
                "stime",
                "vhangup",
                "lookup_dcookie",
                "fanotify_init",
                "quotactl_fd",
                "set_mempolicy_home_node",
            ],
        ));
        let mut allow_list: Vec<&'static str> = ALLOW.to_vec();
        if allow.devel {
            allow_list.extend_from_slice(DEVEL);
        } else {
            rules.extend(deny(Errno::EPERM, DEVEL));
            rules.push(Rule {
                syscall: "personality",
                errno: Errno::EPERM,
                when: Some(When::ArgNotIn {
                    arg: 0,
                    values: vec![0, 8, 0xffff_ffff],
                    means: "anything but PER_LINUX, PER_LINUX32 or a query",
                }),
            });
        }
        rules.push(Rule {
            syscall: "socket",
            errno: Errno::EAFNOSUPPORT,
            when: Some(When::ArgNotIn {
                arg: 0,
                values: [
                    libc::AF_UNIX,
                    libc::AF_INET,
                    libc::AF_INET6,
                    libc::AF_NETLINK,
                ]
                .map(|f| f as u32)
                .to_vec(),
                means: "families other than AF_UNIX, AF_INET, AF_INET6, AF_NETLINK",
            }),
        });
        SeccompPolicy {
            default_errno: Errno::ENOSYS,
            multiarch: allow.multiarch,
            deny: rules,
            allow: allow_list,
        }
    }

    /// The errno an unconditional call of `syscall` gets (x86_64), or None
    /// if it is allowed (possibly with argument conditions).
    pub fn denies(&self, syscall: &str) -> Option<Errno> {
        if let Some(r) = self
            .deny
            .iter()
            .find(|r| r.syscall == syscall && r.when.is_none())
        {
            return Some(r.errno);
        }
        if self.allow.contains(&syscall) {
            None
        } else {
            Some(self.default_errno)
        }
    }

    /// Compile to one BPF program (x86_64 hosts).
    pub fn compile(&self) -> Result<Vec<BpfProgram>> {
        if std::env::consts::ARCH != "x86_64" {
            return Err(Error::Setup(format!(
                "seccomp: berth's syscall tables cover x86_64 only, not {}",
                std::env::consts::ARCH
            )));
        }
        self.program().map(|p| vec![p]).map_err(Error::Setup)
    }

    fn program(&self) -> std::result::Result<BpfProgram, String> {
        // Every name, sorted like the tables, so numbers are found by one
        // merge per table: a search per name and table was most of the
        // compile time (~15k string compares per launch).
        let mut names: Vec<&'static str> = self
            .deny
            .iter()
            .map(|r| r.syscall)
            .chain(self.allow.iter().copied())
            .collect();
        names.sort_unstable();
        names.dedup();
        let x64_nrs = numbers(syscalls::X86_64, &names);
        let i386_nrs = numbers(syscalls::I386, &names);
        if let Some(i) = (0..names.len()).find(|&i| x64_nrs[i].is_none() && i386_nrs[i].is_none()) {
            return Err(format!("seccomp: unknown syscall {}", names[i]));
        }
        let mut allow: Vec<&str> = self.allow.clone();
        allow.sort_unstable();
        let allowed = sorted_members(&names, &allow);

        let mut a = bpf::Asm::default();
        let ret_allow = a.label();
        let mut rets: BTreeMap<Errno, bpf::Label> = BTreeMap::new();
        for e in [
            self.default_errno,
            Errno::EPERM,
            Errno::ENOSYS,
            Errno::EAFNOSUPPORT,
        ] {
            rets.entry(e).or_insert_with(|| a.label());
        }
        let ret_default = rets[&self.default_errno];
        let ret_enosys = rets[&Errno::ENOSYS];

        // Where each named syscall goes: straight to a return, or to a
        // block of argument tests shared by both ABIs.
        let mut rules_of: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
        for r in &self.deny {
            rules_of.entry(r.syscall).or_default().push(r);
        }
        let mut target: Vec<bpf::Label> = Vec::with_capacity(names.len());
        let mut blocks: Vec<(bpf::Label, Vec<&Rule>, bpf::Label)> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let rules: Vec<&Rule> = rules_of.remove(name).unwrap_or_default();
            let fallback = if allowed[i] { ret_allow } else { ret_default };
            let l = match rules.first() {
                None => fallback,
                Some(r) if r.when.is_none() => rets[&r.errno],
                Some(_) => {
                    let l = a.label();
                    blocks.push((l, rules, fallback));
                    l
                }
            };
            target.push(l);
        }
        let entries = |nrs: &[Option<u32>]| -> Vec<(u32, bpf::Label)> {
            let mut v: Vec<(u32, bpf::Label)> = nrs
                .iter()
                .zip(&target)
                .filter_map(|(nr, l)| nr.map(|nr| (nr, *l)))
                .collect();
            v.sort_by_key(|(nr, _)| *nr);
            v
        };

        let x64 = a.label();
        let i386 = a.label();
        a.load_arch();
        a.jump_if_eq(bpf::AUDIT_ARCH_X86_64, x64);
        if self.multiarch {
            a.jump_if_eq(bpf::AUDIT_ARCH_I386, i386);
        }
        a.ja(ret_enosys);

        a.bind(x64);
        a.load_nr();
        // x32 shares the x86_64 audit arch: refuse it whole.
        a.jump_if_ge(bpf::X32_SYSCALL_BIT, ret_enosys);
        a.dispatch(&entries(&x64_nrs), ret_default);

        a.bind(i386);
        if self.multiarch {
            a.load_nr();
            a.dispatch(&entries(&i386_nrs), ret_default);
        }

        for (label, rules, fallback) in blocks {
            a.bind(label);
            for r in rules {
                let to = rets[&r.errno];
                match &r.when {
                    None => {
                        a.ja(to);
                        break;
                    }
                    Some(When::ArgMasked {
                        arg, mask, value, ..
                    }) => {
                        a.load_arg(*arg);
                        if *mask != 0xffff_ffff {
                            a.and(*mask);
                        }
                        a.jump_if_eq(*value, to);
                    }
                    Some(When::ArgAnyBit { arg, bits, .. }) => {
                        a.load_arg(*arg);
                        a.jump_if_any_bit(*bits, to);
                    }
                    Some(When::ArgNotIn { arg, values, .. }) => {
                        a.load_arg(*arg);
                        a.jump_if_none_of(values, to)?;
                    }
                }
            }
            a.ja(fallback);
        }

        a.bind(ret_allow);
        a.ret(bpf::RET_ALLOW);
        for (errno, l) in rets {
            a.bind(l);
            a.ret(bpf::RET_ERRNO | errno.raw());
        }
        a.finish()
    }
}

/// The number of each of `names` (sorted) in `table` (sorted by name).
fn numbers(table: &[(&str, u32)], names: &[&str]) -> Vec<Option<u32>> {
    let mut t = table.iter().peekable();
    names
        .iter()
        .map(|n| {
            while t.next_if(|(x, _)| x < n).is_some() {}
            t.peek().filter(|(x, _)| x == n).map(|(_, nr)| *nr)
        })
        .collect()
}

/// Whether each of `names` (sorted) is in `set` (sorted).
fn sorted_members(names: &[&str], set: &[&str]) -> Vec<bool> {
    let mut s = set.iter().peekable();
    names
        .iter()
        .map(|n| {
            while s.next_if(|x| *x < n).is_some() {}
            s.peek().is_some_and(|x| *x == n)
        })
        .collect()
}

fn nr(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| table[i].1)
}

/// The x86_64 number of a syscall, for tests and probes.
pub fn x86_64_nr(name: &str) -> Option<u32> {
    nr(syscalls::X86_64, name)
}

/// Load the filters into this thread (no_new_privs must be set).
pub fn apply(programs: &[BpfProgram]) -> Result<()> {
    for p in programs {
        seccompiler::apply_filter(p)
            .map_err(|e| Error::Setup(format!("loading seccomp filter: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bpf::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, RET_ALLOW, RET_ERRNO, interpret};
    use super::*;

    fn run(p: &SeccompPolicy, arch: u32, name: &str, args: [u64; 6]) -> u32 {
        let prog = p.program().unwrap_or_else(|e| panic!("{e}"));
        let table = if arch == AUDIT_ARCH_I386 {
            syscalls::I386
        } else {
            syscalls::X86_64
        };
        let n = nr(table, name).unwrap_or_else(|| panic!("no syscall {name}"));
        interpret(&prog, arch, n, args)
    }

    fn errno(e: i32) -> u32 {
        RET_ERRNO | e as u32
    }

    #[test]
    fn tables_are_sorted_and_know_every_name() {
        for t in [syscalls::X86_64, syscalls::I386] {
            assert!(
                t.windows(2).all(|w| w[0].0 < w[1].0),
                "sorted for binary search"
            );
        }
        let p = SeccompPolicy::new(Allow {
            devel: true,
            multiarch: true,
        });
        assert!(p.program().is_ok());
        assert_eq!(x86_64_nr("read"), Some(0));
        assert_eq!(x86_64_nr("listmount"), Some(458));
    }

    #[test]
    fn covers_flatpaks_list_with_its_errnos() {
        let p = SeccompPolicy::default_policy(false);
        for s in [
            "syslog",
            "uselib",
            "acct",
            "modify_ldt",
            "quotactl",
            "add_key",
            "keyctl",
            "request_key",
            "move_pages",
            "mbind",
            "get_mempolicy",
            "set_mempolicy",
            "migrate_pages",
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "chroot",
            "ptrace",
            "perf_event_open",
            "pidfd_getfd",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
        ] {
            assert_eq!(p.denies(s), Some(Errno::EPERM), "{s}");
            assert_eq!(
                run(&p, AUDIT_ARCH_X86_64, s, [0; 6]),
                errno(libc::EPERM),
                "{s}"
            );
        }
        for s in [
            "clone3",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "io_uring_setup",
        ] {
            assert_eq!(p.denies(s), Some(Errno::ENOSYS), "{s}");
        }
    }

    #[test]
    fn unknown_and_new_syscalls_get_enosys() {
        let p = SeccompPolicy::default_policy(false);
        for s in [
            "listmount",
            "statmount",
            "lsm_get_self_attr",
            "_sysctl",
            "ustat",
        ] {
            assert_eq!(
                run(&p, AUDIT_ARCH_X86_64, s, [0; 6]),
                errno(libc::ENOSYS),
                "{s}"
            );
        }
        let prog = p.program().unwrap_or_default();
        // A number no kernel has yet, and the x32 ABI.
        assert_eq!(
            interpret(&prog, AUDIT_ARCH_X86_64, 999, [0; 6]),
            errno(libc::ENOSYS)
        );
        assert_eq!(
            interpret(&prog, AUDIT_ARCH_X86_64, 0x4000_0000 | 272, [0; 6]),
            errno(libc::ENOSYS)
        );
        // An architecture the filter was not built for: ENOSYS, not a kill.
        assert_eq!(
            interpret(&prog, 0xc000_00b7, 0, [0; 6]),
            errno(libc::ENOSYS)
        );
        for s in [
            "read",
            "write",
            "mmap",
            "execve",
            "exit_group",
            "futex",
            "openat2",
        ] {
            assert_eq!(run(&p, AUDIT_ARCH_X86_64, s, [0; 6]), RET_ALLOW, "{s}");
        }
    }

    #[test]
    fn argument_rules() {
        let p = SeccompPolicy::default_policy(false);
        let x = AUDIT_ARCH_X86_64;
        let tiocsti = libc::TIOCSTI;
        assert_eq!(
            run(&p, x, "ioctl", [0, tiocsti, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        // The high half of the request is ignored by the kernel, and here.
        assert_eq!(
            run(&p, x, "ioctl", [0, tiocsti | 1 << 32, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(&p, x, "ioctl", [0, libc::TIOCSETD, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(&p, x, "ioctl", [0, libc::TCGETS, 0, 0, 0, 0]),
            RET_ALLOW
        );
        let newuser = libc::CLONE_NEWUSER as u64;
        assert_eq!(
            run(&p, x, "clone", [newuser, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(&p, x, "clone", [libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(run(&p, x, "clone", [thread, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            run(&p, x, "socket", [libc::AF_UNIX as u64, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            run(&p, x, "socket", [libc::AF_PACKET as u64, 0, 0, 0, 0, 0]),
            errno(libc::EAFNOSUPPORT)
        );
        assert_eq!(run(&p, x, "personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            run(&p, x, "personality", [0x0040_0000, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
    }

    #[test]
    fn devel_allows_debuggers() {
        let p = SeccompPolicy::default_policy(true);
        for s in [
            "ptrace",
            "perf_event_open",
            "process_vm_readv",
            "kcmp",
            "pidfd_getfd",
        ] {
            assert_eq!(p.denies(s), None, "{s}");
            assert_eq!(run(&p, AUDIT_ARCH_X86_64, s, [0; 6]), RET_ALLOW, "{s}");
        }
        assert_eq!(
            run(
                &p,
                AUDIT_ARCH_X86_64,
                "personality",
                [0x0040_0000, 0, 0, 0, 0, 0]
            ),
            RET_ALLOW
        );
        assert_eq!(p.denies("mount"), Some(Errno::EPERM));
    }

    #[test]
    fn i386_only_with_multiarch() {
        let plain = SeccompPolicy::default_policy(false);
        assert_eq!(
            run(&plain, AUDIT_ARCH_I386, "read", [0; 6]),
            errno(libc::ENOSYS)
        );
        assert_eq!(
            run(&plain, AUDIT_ARCH_I386, "exit", [0; 6]),
            errno(libc::ENOSYS)
        );
        let multi = SeccompPolicy::new(Allow {
            devel: false,
            multiarch: true,
        });
        assert_eq!(run(&multi, AUDIT_ARCH_I386, "read", [0; 6]), RET_ALLOW);
        assert_eq!(run(&multi, AUDIT_ARCH_I386, "mmap2", [0; 6]), RET_ALLOW);
        assert_eq!(
            run(&multi, AUDIT_ARCH_I386, "mount", [0; 6]),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(
                &multi,
                AUDIT_ARCH_I386,
                "clone",
                [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
            ),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(
                &multi,
                AUDIT_ARCH_I386,
                "ioctl",
                [0, libc::TIOCSTI, 0, 0, 0, 0]
            ),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(&multi, AUDIT_ARCH_I386, "pidfd_getfd", [0; 6]),
            errno(libc::EPERM)
        );
        // x86_64 still works alongside.
        assert_eq!(run(&multi, AUDIT_ARCH_X86_64, "read", [0; 6]), RET_ALLOW);
    }

    #[test]
    fn every_syscall_takes_a_short_path() {
        let p = SeccompPolicy::default_policy(false);
        let prog = p.program().unwrap_or_default();
        // Ranges of numbers that share a verdict: short to load and run.
        assert!(prog.len() < 400, "{} instructions", prog.len());
    }

    /// The verdict for a call without argument conditions, straight from
    /// the policy's lists (what the compiled ranges must agree with).
    fn expected(p: &SeccompPolicy, table: &[(&str, u32)], n: u32) -> Option<u32> {
        let Some((name, _)) = table.iter().find(|(_, x)| *x == n) else {
            return Some(RET_ERRNO | p.default_errno.raw());
        };
        if p.deny
            .iter()
            .any(|r| r.syscall == *name && r.when.is_some())
        {
            return None; // decided by its arguments; other tests cover these
        }
        Some(match p.denies(name) {
            Some(e) => RET_ERRNO | e.raw(),
            None => RET_ALLOW,
        })
    }

    #[test]
    fn names_are_merged_with_the_tables() {
        let t = [("a", 1), ("c", 3), ("d", 4)];
        assert_eq!(
            numbers(&t, &["a", "b", "d", "e"]),
            [Some(1), None, Some(4), None]
        );
        assert_eq!(
            sorted_members(&["a", "b", "d"], &["b", "c"]),
            [false, true, false]
        );
        let mut p = SeccompPolicy::default_policy(false);
        p.allow.push("no_such_call");
        assert!(p.compile().is_err());
    }

    #[test]
    fn ranges_give_every_number_its_own_verdict() {
        for allow in [
            Allow::default(),
            Allow {
                devel: true,
                multiarch: true,
            },
        ] {
            let p = SeccompPolicy::new(allow);
            let prog = p.program().unwrap_or_else(|e| panic!("{e}"));
            let edges = [
                u32::MAX,
                u32::MAX - 1,
                0x3fff_ffff,
                0x4000_0000,
                0x4000_0001,
            ];
            for (arch, table) in [
                (AUDIT_ARCH_X86_64, syscalls::X86_64),
                (AUDIT_ARCH_I386, syscalls::I386),
            ] {
                for n in (0..1024).chain(edges) {
                    let got = interpret(&prog, arch, n, [0; 6]);
                    // i386 without multiarch, and x32: refused whole.
                    let refused = (arch == AUDIT_ARCH_I386 && !p.multiarch)
                        || (arch == AUDIT_ARCH_X86_64 && n >= 0x4000_0000);
                    let want = if refused {
                        Some(errno(libc::ENOSYS))
                    } else {
                        expected(&p, table, n)
                    };
                    if let Some(w) = want {
                        assert_eq!(got, w, "arch {arch:#x} nr {n} ({allow:?})");
                    }
                }
            }
        }
    }
}
