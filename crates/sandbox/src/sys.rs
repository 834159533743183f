//! The only module with `unsafe`: creating processes with clone(2), and
//! madvise(2) on this process's own mappings.
//! rustix deliberately has no fork/clone (they cannot be made safe in
//! general), and std's Command cannot create namespaces, so this is raw.
#![allow(unsafe_code)]

use std::io;

use rustix::process::Pid;

pub enum Fork {
    Child,
    Parent(Pid),
}

/// Read a /proc (or /sys) file in as few read(2) calls as possible.
/// These files report size 0, so std's `read_to_string` starts with
/// 32-byte reads, and a single-record seq_file is generated anew for
/// each one: up to 8 generations of /proc/self/status per call.
pub fn read_proc(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Threads in this process: field 20 of /proc/self/stat (cheaper for the
/// kernel to generate than /proc/self/status).
fn thread_count() -> usize {
    read_proc("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name (field 2) may hold spaces and ')'.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(17)?.parse().ok()
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
    // clone(2) with a null stack and without CLONE_VM, CLONE_SETTLS or
    // CLONE_*TID is fork(2): the child returns here with 0 in its own copy
    // of the address space.
    // SAFETY: the caller ensured a single thread (no lock inherited held);
    // nothing is shared (no VM/SETTLS/FILES flags); unused args are 0.
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
    // CLONE_NEWCGROUP only changes how /proc/self/cgroup and new cgroupfs
    // mounts are rooted.
    // SAFETY: no fd, memory or path the process holds changes meaning, the
    // invariant unshare_unsafe asks callers to uphold.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
        .map_err(Into::into)
}

/// `struct clone_args` (linux/sched.h), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Like `clone_process`, but the child starts life inside the cgroup
/// `cgroup_dir` (clone3 CLONE_INTO_CGROUP, Linux 5.7+). This skips the
/// cgroup migration, which costs an RCU grace period (up to ~20 ms).
/// `Ok(None)`: this kernel cannot; the caller falls back.
pub fn clone_into_cgroup(
    ns_flags: libc::c_int,
    cgroup_dir: std::os::fd::BorrowedFd<'_>,
) -> io::Result<Option<Fork>> {
    use std::os::fd::AsRawFd;
    ensure_single_threaded()?;
    let mut args = CloneArgs {
        flags: (ns_flags as u32 as u64) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // clone3 with a zero stack and no VM/SETTLS/*TID/PIDFD flags is fork(2).
    // SAFETY: single-threaded (checked above), nothing shared; `args` is a
    // valid clone_args of the size passed, and the cgroup fd is borrowed
    // open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP) => Ok(None),
                _ => Err(e),
            }
        }
        0 => Ok(Some(Fork::Child)),
        pid => Pid::from_raw(pid as i32)
            .map(|p| Some(Fork::Parent(p)))
            .ok_or_else(|| io::Error::other("clone3 returned an invalid pid")),
    }
}

/// Close every fd of this process except stdin/stdout/stderr and `keep`
/// (close_range, Linux 5.9+; rustix has no wrapper because closing fds
/// that live objects own is unsound in general).
///
/// Only for a freshly forked child that leaves with `process::exit`:
/// the fds it closes belong to its copies of the parent's objects, which
/// it never drops, so nothing closes a number twice.
pub fn close_fds_in_child(keep: &[std::os::fd::RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter_map(|f| u32::try_from(*f).ok()).collect();
    keep.retain(|f| *f > 2);
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for k in keep.iter().copied().chain(std::iter::once(u32::MAX)) {
        if k > first {
            let last = if k == u32::MAX { u32::MAX } else { k - 1 };
            // SAFETY: close_range only closes descriptors; see the function
            // comment for why no live object uses the closed numbers again.
            let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
            if r == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        first = k.saturating_add(1);
    }
    Ok(())
}

/// Die quietly when stdout is closed, like other Unix tools: Rust starts
/// programs with SIGPIPE ignored, which turns `berth images | head` into a
/// write error (and `println!` into a panic).
pub fn default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists, and
    // SIG_DFL installs no handler, so no code of ours can run from it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Drop this process's resident pages of read-only file mappings (code
/// and constants) that only setup used; see `memory`. Best effort.
pub fn release_setup_pages() {
    let Ok(maps) = read_proc("/proc/self/maps") else {
        return;
    };
    for (start, end) in crate::memory::clean_file_ranges(&maps) {
        // [start, end) is a whole mapping of this process, read just now,
        // private, read-only and file-backed, whose pages are the file's
        // (see `memory`); nothing here maps or unmaps files concurrently.
        // SAFETY: MADV_DONTNEED on it only drops page-cache PTEs; the next access reads the same bytes.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}
