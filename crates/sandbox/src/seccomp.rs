//! The seccomp policy: data first (printable, testable), then compiled to
//! BPF with seccompiler. Default allow, with a deny list at least as strict
//! as Flatpak's, plus the module/kexec/bpf/handle calls Docker also blocks.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
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

/// An argument test; the rule applies only when it holds.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// `arg & mask == value`
    ArgMasked {
        arg: u8,
        mask: u64,
        value: u64,
        means: &'static str,
    },
    /// arg is none of these values
    ArgNotIn {
        arg: u8,
        values: Vec<u64>,
        means: &'static str,
    },
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Rule {
    pub syscall: &'static str,
    #[serde(skip)]
    pub nr: i64,
    pub errno: Errno,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SeccompPolicy {
    pub default_action: &'static str,
    pub rules: Vec<Rule>,
}

macro_rules! deny {
    ($errno:ident: $($name:ident),* $(,)?) => {
        vec![$(Rule { syscall: stringify!($name), nr: paste_nr(stringify!($name)), errno: Errno::$errno, when: None }),*]
    };
}

/// Syscall numbers for this architecture. rustix does not expose them, so
/// they come from libc's `SYS_*` constants.
fn paste_nr(name: &str) -> i64 {
    match name {
        "syslog" => libc::SYS_syslog,
        "uselib" => libc::SYS_uselib,
        "acct" => libc::SYS_acct,
        "modify_ldt" => libc::SYS_modify_ldt,
        "quotactl" => libc::SYS_quotactl,
        "add_key" => libc::SYS_add_key,
        "keyctl" => libc::SYS_keyctl,
        "request_key" => libc::SYS_request_key,
        "move_pages" => libc::SYS_move_pages,
        "mbind" => libc::SYS_mbind,
        "get_mempolicy" => libc::SYS_get_mempolicy,
        "set_mempolicy" => libc::SYS_set_mempolicy,
        "migrate_pages" => libc::SYS_migrate_pages,
        "unshare" => libc::SYS_unshare,
        "setns" => libc::SYS_setns,
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "chroot" => libc::SYS_chroot,
        "clone" => libc::SYS_clone,
        "ioctl" => libc::SYS_ioctl,
        "clone3" => libc::SYS_clone3,
        "open_tree" => libc::SYS_open_tree,
        "move_mount" => libc::SYS_move_mount,
        "fsopen" => libc::SYS_fsopen,
        "fsconfig" => libc::SYS_fsconfig,
        "fsmount" => libc::SYS_fsmount,
        "fspick" => libc::SYS_fspick,
        "mount_setattr" => libc::SYS_mount_setattr,
        "perf_event_open" => libc::SYS_perf_event_open,
        "ptrace" => libc::SYS_ptrace,
        "personality" => libc::SYS_personality,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        "kexec_load" => libc::SYS_kexec_load,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "bpf" => libc::SYS_bpf,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "name_to_handle_at" => libc::SYS_name_to_handle_at,
        "reboot" => libc::SYS_reboot,
        "swapon" => libc::SYS_swapon,
        "swapoff" => libc::SYS_swapoff,
        "iopl" => libc::SYS_iopl,
        "ioperm" => libc::SYS_ioperm,
        "userfaultfd" => libc::SYS_userfaultfd,
        "socket" => libc::SYS_socket,
        "io_uring_setup" => libc::SYS_io_uring_setup,
        _ => -1,
    }
}

impl SeccompPolicy {
    /// The default policy. `devel` (the `allow=devel` permission) permits
    /// ptrace, perf_event_open and personality, for debuggers.
    pub fn default_policy(devel: bool) -> SeccompPolicy {
        let mut rules = deny!(EPERM:
            syslog, uselib, acct, modify_ldt, quotactl, add_key, keyctl, request_key,
            move_pages, mbind, get_mempolicy, set_mempolicy, migrate_pages,
            unshare, setns, mount, umount2, pivot_root, chroot,
            init_module, finit_module, delete_module, kexec_load, kexec_file_load, bpf,
            open_by_handle_at, name_to_handle_at, reboot, swapon, swapoff, iopl, ioperm,
            userfaultfd,
        );
        rules.extend(deny!(ENOSYS:
            clone3, open_tree, move_mount, fsopen, fsconfig, fsmount, fspick, mount_setattr,
            io_uring_setup,
        ));
        if !devel {
            rules.extend(deny!(EPERM: perf_event_open, ptrace));
            rules.push(Rule {
                syscall: "personality",
                nr: libc::SYS_personality,
                errno: Errno::EPERM,
                when: Some(When::ArgNotIn {
                    arg: 0,
                    values: vec![0, 8, 0xffff_ffff],
                    means: "anything but PER_LINUX, PER_LINUX32 or a query",
                }),
            });
        }
        rules.push(Rule {
            syscall: "clone",
            nr: libc::SYS_clone,
            errno: Errno::EPERM,
            when: Some(When::ArgMasked {
                arg: 0,
                mask: libc::CLONE_NEWUSER as u64,
                value: libc::CLONE_NEWUSER as u64,
                means: "CLONE_NEWUSER",
            }),
        });
        for (req, means) in [(libc::TIOCSTI, "TIOCSTI"), (libc::TIOCLINUX, "TIOCLINUX")] {
            rules.push(Rule {
                syscall: "ioctl",
                nr: libc::SYS_ioctl,
                errno: Errno::EPERM,
                when: Some(When::ArgMasked {
                    arg: 1,
                    mask: 0xffff_ffff,
                    value: req,
                    means,
                }),
            });
        }
        rules.push(Rule {
            syscall: "socket",
            nr: libc::SYS_socket,
            errno: Errno::EAFNOSUPPORT,
            when: Some(When::ArgNotIn {
                arg: 0,
                values: vec![
                    libc::AF_UNIX as u64,
                    libc::AF_INET as u64,
                    libc::AF_INET6 as u64,
                    libc::AF_NETLINK as u64,
                ],
                means: "families other than AF_UNIX, AF_INET, AF_INET6, AF_NETLINK",
            }),
        });
        SeccompPolicy {
            default_action: "allow",
            rules,
        }
    }

    pub fn denies(&self, syscall: &str) -> Option<Errno> {
        self.rules
            .iter()
            .find(|r| r.syscall == syscall && r.when.is_none())
            .map(|r| r.errno)
    }

    /// One BPF program per errno value; the kernel runs them all.
    pub fn compile(&self) -> Result<Vec<BpfProgram>> {
        let arch = std::env::consts::ARCH.try_into().map_err(|_| {
            Error::Setup(format!(
                "seccomp: unsupported architecture {}",
                std::env::consts::ARCH
            ))
        })?;
        let mut by_errno: BTreeMap<Errno, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
        for r in &self.rules {
            if r.nr < 0 {
                return Err(Error::Setup(format!(
                    "seccomp: unknown syscall {}",
                    r.syscall
                )));
            }
            let entry = by_errno.entry(r.errno).or_default();
            let bad = |e: seccompiler::BackendError| {
                Error::Setup(format!("seccomp rule for {}: {e}", r.syscall))
            };
            match &r.when {
                None => {
                    entry.insert(r.nr, Vec::new()); // empty = always
                }
                Some(w) => {
                    let conds = match w {
                        When::ArgMasked {
                            arg, mask, value, ..
                        } => vec![
                            SeccompCondition::new(
                                *arg,
                                SeccompCmpArgLen::Dword,
                                SeccompCmpOp::MaskedEq(*mask),
                                *value,
                            )
                            .map_err(bad)?,
                        ],
                        When::ArgNotIn { arg, values, .. } => values
                            .iter()
                            .map(|v| {
                                SeccompCondition::new(
                                    *arg,
                                    SeccompCmpArgLen::Dword,
                                    SeccompCmpOp::Ne,
                                    *v,
                                )
                            })
                            .collect::<std::result::Result<_, _>>()
                            .map_err(bad)?,
                    };
                    let rules = entry.entry(r.nr).or_default();
                    if !(rules.is_empty() && entry_is_unconditional(&self.rules, r)) {
                        rules.push(SeccompRule::new(conds).map_err(bad)?);
                    }
                }
            }
        }
        let mut programs: Vec<BpfProgram> = Vec::new();
        if std::env::consts::ARCH == "x86_64" {
            programs.push(x32_filter());
        }
        let rest: Result<Vec<BpfProgram>> = by_errno
            .into_iter()
            .map(|(errno, rules)| {
                let f = SeccompFilter::new(
                    rules,
                    SeccompAction::Allow,
                    SeccompAction::Errno(errno.raw()),
                    arch,
                )
                .map_err(|e| Error::Setup(format!("seccomp filter: {e}")))?;
                BpfProgram::try_from(f).map_err(|e| Error::Setup(format!("seccomp filter: {e}")))
            })
            .collect();
        programs.extend(rest?);
        Ok(programs)
    }
}

/// The x32 ABI (syscall numbers with bit 30 set) reaches x86_64 kernels
/// under the same audit arch, so per-number rules would not see it; refuse
/// it whole, as Flatpak does. seccompiler has no range test, so this
/// four-instruction program is written out by hand.
fn x32_filter() -> BpfProgram {
    use seccompiler::sock_filter;
    // BPF_LD | BPF_W | BPF_ABS, and BPF_JMP | BPF_JGE | BPF_K.
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JGE_K: u16 = 0x35;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    vec![
        // A = seccomp_data.nr
        sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: BPF_JMP_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ]
}

/// An unconditional rule for the same syscall and errno already covers it.
fn entry_is_unconditional(all: &[Rule], r: &Rule) -> bool {
    all.iter()
        .any(|o| o.nr == r.nr && o.errno == r.errno && o.when.is_none())
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
    use super::*;

    #[test]
    fn covers_flatpaks_list_with_its_errnos() {
        let p = SeccompPolicy::default_policy(false);
        for s in [
            "syslog",
            "uselib",
            "acct",
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
        ] {
            assert_eq!(p.denies(s), Some(Errno::EPERM), "{s}");
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
        ] {
            assert_eq!(p.denies(s), Some(Errno::ENOSYS), "{s}");
        }
        assert!(
            p.rules
                .iter()
                .any(|r| r.syscall == "clone" && r.when.is_some())
        );
        assert_eq!(p.rules.iter().filter(|r| r.syscall == "ioctl").count(), 2);
        assert!(
            p.compile().is_ok_and(|progs| progs.len() == 4),
            "x32 + one per errno"
        );
    }

    #[test]
    fn devel_allows_debuggers() {
        let p = SeccompPolicy::default_policy(true);
        assert_eq!(p.denies("ptrace"), None);
        assert_eq!(p.denies("perf_event_open"), None);
        assert_eq!(p.denies("mount"), Some(Errno::EPERM));
    }
}
