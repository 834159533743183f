//! The only module with `unsafe`: creating processes with clone(2).
//! rustix deliberately has no fork/clone (they cannot be made safe in
//! general), and std's Command cannot create namespaces, so this is raw.
#![allow(unsafe_code)]

use std::io;

use rustix::process::Pid;

pub enum Fork {
    Child,
    Parent(Pid),
}

/// Threads in this process, from /proc/self/status.
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(usize::MAX)
}

/// Fails unless this process has exactly one thread (fork's precondition).
pub fn ensure_single_threaded() -> io::Result<()> {
    if thread_count() != 1 {
        return Err(io::Error::other(
            "internal error: refusing to fork a multi-threaded process",
        ));
    }
    Ok(())
}

/// fork(2), optionally into new namespaces (`CLONE_NEW*` flags).
pub fn clone_process(ns_flags: libc::c_int) -> io::Result<Fork> {
    ensure_single_threaded()?;
    clone_checked(ns_flags)
}

/// Like `clone_process`, for callers that ran `ensure_single_threaded`
/// before /proc stopped describing them (after joining a mount namespace).
pub fn clone_checked(ns_flags: libc::c_int) -> io::Result<Fork> {
    let flags = (ns_flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone(2) with a null stack and without CLONE_VM, CLONE_SETTLS
    // or CLONE_*TID behaves like fork(2): the child gets its own copy of
    // the address space and returns here with 0. Sound because:
    // 1. the process is single-threaded (checked just above), so no other
    //    thread can hold a lock (allocator, stdio) the child would inherit
    //    in a locked state;
    // 2. no memory, TLS or file table is shared (no CLONE_VM/SETTLS/FILES);
    // 3. the unused arguments (stack, ptid, ctid, tls) are 0, which the
    //    kernel reads as "none".
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Pid::from_raw(pid as i32)
            .map(Fork::Parent)
            .ok_or_else(|| io::Error::other("clone returned an invalid pid")),
    }
}

/// Enter a new cgroup namespace. rustix marks `unshare` unsafe because some
/// flags (CLONE_FILES, CLONE_FS) change what fds or paths mean under the
/// caller's feet; a cgroup namespace does neither.
pub fn unshare_cgroup_ns() -> io::Result<()> {
    // SAFETY: CLONE_NEWCGROUP only changes how /proc/self/cgroup and new
    // cgroupfs mounts are rooted; no file descriptor, memory or path the
    // process holds changes meaning, which is the invariant unshare_unsafe
    // asks callers to uphold.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
        .map_err(Into::into)
}
