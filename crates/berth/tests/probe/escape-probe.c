/* Escape probe: run inside a berth sandbox, tries one attack and prints
 * "BLOCKED <what> (<errno>)" (exit 0) or "ESCAPED <what>" (exit 1).
 * Built static by the tests (gcc -static), so it needs nothing from the image. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <sys/uio.h>
#include <termios.h>

static int verdict(int blocked, const char *what) {
    if (blocked) {
        printf("BLOCKED %s (%s)\n", what, strerror(errno));
        return 0;
    }
    printf("ESCAPED %s\n", what);
    return 1;
}

/* Blocked only with this exact errno: proves which layer stopped it. */
static int expect(long ret, int want, const char *what) {
    int e = errno;
    if (ret == -1 && e == want) { errno = e; return verdict(1, what); }
    if (ret == -1) { printf("UNEXPECTED %s: %s (wanted %s)\n", what, strerror(e), strerror(want)); return 2; }
    return verdict(0, what);
}

int main(int argc, char **argv) {
    const char *t = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "";
    if (!strcmp(t, "read-host-file")) return verdict(open(arg, O_RDONLY) < 0, "read a host file that was not granted");
    if (!strcmp(t, "write-host-file")) return verdict(open(arg, O_WRONLY | O_CREAT, 0644) < 0, "write a host file that was not granted");
    if (!strcmp(t, "write-image-root")) {
        if (mkdir("/bin/escape", 0755) == 0) return verdict(0, "write to the image root (mkdir)");
        return expect(open("/bin/escape", O_WRONLY | O_CREAT, 0755), EROFS, "write to the image root");
    }
    if (!strcmp(t, "see-host-processes")) {
        DIR *d = opendir("/proc");
        int n = 0;
        struct dirent *e;
        while (d && (e = readdir(d))) if (atoi(e->d_name) > 0) n++;
        printf("processes visible: %d\n", n);
        return verdict(n <= 3, "see host processes");
    }
    if (!strcmp(t, "signal-host-process")) return verdict(kill(atoi(arg), SIGKILL) < 0, "signal a host process");
    if (!strcmp(t, "signal-everything")) { kill(-1, SIGKILL); return verdict(1, "kill(-1) reaches only the sandbox"); }
    if (!strcmp(t, "ptrace-attach")) return expect(ptrace(PTRACE_ATTACH, 1, 0, 0), EPERM, "ptrace another process");
    if (!strcmp(t, "ptrace-traceme")) return expect(ptrace(PTRACE_TRACEME, 0, 0, 0), EPERM, "ptrace(TRACEME)");
    if (!strcmp(t, "tiocsti")) { char c = 'x'; return expect(ioctl(0, TIOCSTI, &c), EPERM, "TIOCSTI terminal injection"); }
    if (!strcmp(t, "tioclinux")) { char c = 2; return expect(ioctl(0, TIOCLINUX, &c), EPERM, "TIOCLINUX"); }
    if (!strcmp(t, "mount")) return expect(mount("tmpfs", "/tmp", "tmpfs", 0, 0), EPERM, "mount");
    if (!strcmp(t, "umount")) return expect(umount2("/proc", MNT_DETACH), EPERM, "umount");
    if (!strcmp(t, "chroot")) return expect(chroot("/tmp"), EPERM, "chroot");
    if (!strcmp(t, "pivot-root")) return expect(syscall(SYS_pivot_root, "/tmp", "/tmp"), EPERM, "pivot_root");
    if (!strcmp(t, "unshare-mount")) return expect(unshare(CLONE_NEWNS), EPERM, "unshare(CLONE_NEWNS)");
    if (!strcmp(t, "setns")) {
        int fd = open("/proc/1/ns/mnt", O_RDONLY);
        return expect(setns(fd, 0), EPERM, "setns");
    }
    if (!strcmp(t, "userns-unshare")) return expect(unshare(CLONE_NEWUSER), EPERM, "create a user namespace (unshare)");
    if (!strcmp(t, "userns-clone")) return expect(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), EPERM, "create a user namespace (clone)");
    if (!strcmp(t, "clone3")) return expect(syscall(SYS_clone3, 0, 0), ENOSYS, "clone3 (argument filtering bypass)");
    if (!strcmp(t, "new-mount-api")) return expect(syscall(SYS_fsopen, "tmpfs", 0), ENOSYS, "fsopen (new mount API, CVE-2021-41133)");
    if (!strcmp(t, "open-tree")) return expect(syscall(SYS_open_tree, -100, "/", 0), ENOSYS, "open_tree (CVE-2021-41133)");
    if (!strcmp(t, "keyctl")) return expect(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0), EPERM, "keyctl");
    if (!strcmp(t, "add-key")) return expect(syscall(SYS_add_key, "user", "x", "y", 1, KEY_SPEC_USER_KEYRING), EPERM, "add_key");
    if (!strcmp(t, "raw-socket")) return verdict(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0, "open a raw socket");
    if (!strcmp(t, "packet-socket")) return expect(socket(AF_PACKET, SOCK_RAW, 0), EAFNOSUPPORT, "open a packet socket");
    if (!strcmp(t, "bluetooth-socket")) return expect(socket(31 /* AF_BLUETOOTH */, SOCK_RAW, 0), EAFNOSUPPORT, "open a bluetooth socket");
    if (!strcmp(t, "tcp-connect")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(arg))};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        return verdict(connect(s, (struct sockaddr *)&a, sizeof a) < 0, "reach the host network (loopback listener)");
    }
    if (!strcmp(t, "abstract-socket")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        size_t n = strlen(arg);
        memcpy(a.sun_path + 1, arg, n);
        return verdict(connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n) < 0,
                       "connect to a host abstract unix socket");
    }
    if (!strcmp(t, "sethostname")) return expect(sethostname("pwned", 5), EPERM, "change the hostname");
    if (!strcmp(t, "proc-sys-write")) {
        int a = open("/proc/sys/kernel/hostname", O_WRONLY) < 0;
        int b = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY) < 0;
        return verdict(a && b, "write /proc/sys");
    }
    if (!strcmp(t, "sysrq")) return verdict(open("/proc/sysrq-trigger", O_WRONLY) < 0, "write /proc/sysrq-trigger");
    if (!strcmp(t, "init-module")) return expect(syscall(SYS_init_module, "", 0, ""), EPERM, "load a kernel module (init_module)");
    if (!strcmp(t, "finit-module")) return expect(syscall(SYS_finit_module, 0, "", 0), EPERM, "load a kernel module (finit_module)");
    if (!strcmp(t, "open-by-handle")) return expect(syscall(SYS_open_by_handle_at, 0, 0, 0), EPERM, "open_by_handle_at (shocker)");
    if (!strcmp(t, "bpf")) return expect(syscall(SYS_bpf, 0, 0, 0), EPERM, "bpf");
    if (!strcmp(t, "perf")) return expect(syscall(SYS_perf_event_open, 0, 0, -1, -1, 0), EPERM, "perf_event_open");
    if (!strcmp(t, "personality")) return expect(personality(READ_IMPLIES_EXEC), EPERM, "personality(READ_IMPLIES_EXEC)");
    if (!strcmp(t, "userfaultfd")) return expect(syscall(SYS_userfaultfd, 0), EPERM, "userfaultfd");
    if (!strcmp(t, "x32-abi")) return expect(syscall(0x40000000 | SYS_unshare, CLONE_NEWUSER), ENOSYS, "x32 syscall ABI (filter bypass)");
    if (!strcmp(t, "io-uring")) return expect(syscall(SYS_io_uring_setup, 1, 0), ENOSYS, "io_uring");
    if (!strcmp(t, "mknod")) return verdict(mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0)) < 0, "create a device node");
    if (!strcmp(t, "dev-mem")) return verdict(open("/dev/mem", O_RDONLY) < 0 && open("/dev/sda", O_RDONLY) < 0, "open /dev/mem or a disk");
    if (!strcmp(t, "setuid-exec")) {
        /* exec'd through a setuid binary: report whether euid changed. */
        if (geteuid() != getuid()) { printf("ESCAPED gain privileges through a setuid binary (euid %d)\n", geteuid()); return 1; }
        printf("BLOCKED gain privileges through a setuid binary (euid stays %d)\n", geteuid());
        return 0;
    }
    if (!strcmp(t, "pidfd-getfd")) {
        /* Take pid 1's fds (berth's init): none may come back. */
        int pfd = syscall(SYS_pidfd_open, 1, 0);
        if (pfd < 0) return verdict(1, "pidfd_getfd on pid 1 (no pidfd)");
        for (int i = 0; i < 256; i++)
            if (syscall(SYS_pidfd_getfd, pfd, i, 0) >= 0) { printf("ESCAPED took fd %d of pid 1\n", i); return 1; }
        return verdict(1, "take pid 1's fds with pidfd_getfd");
    }
    if (!strcmp(t, "proc1-mem")) return verdict(open("/proc/1/mem", O_RDWR) < 0, "open /proc/1/mem for writing");
    if (!strcmp(t, "proc1-fds")) {
        /* pid 1's fds through /proc: none opens (it is not dumpable). */
        char p[64];
        for (int i = 0; i < 256; i++) {
            snprintf(p, sizeof p, "/proc/1/fd/%d", i);
            if (open(p, O_RDONLY) >= 0) { printf("ESCAPED opened %s\n", p); return 1; }
        }
        return verdict(1, "open pid 1's fds through /proc/1/fd");
    }
    if (!strcmp(t, "ptrace-pid1")) return verdict(ptrace(PTRACE_ATTACH, 1, 0, 0) < 0, "ptrace pid 1 (berth's init)");
    if (!strcmp(t, "process-vm-readv")) {
        char buf[8]; struct iovec l = { buf, 8 }, r = { (void *)0x400000, 8 };
        return expect(syscall(SYS_process_vm_readv, 1, &l, 1, &r, 1, 0), EPERM, "process_vm_readv");
    }
    if (!strcmp(t, "kcmp")) return expect(syscall(SYS_kcmp, 1, getpid(), 0, 0, 0), EPERM, "kcmp");
    if (!strcmp(t, "inherited-fds")) {
        /* Any fd above 2 is a way back to what the caller had open. */
        for (int i = 3; i < 1024; i++) {
            struct stat st;
            if (fstat(i, &st) == 0) {
                int up = openat(i, "..", O_RDONLY | O_DIRECTORY);
                printf("ESCAPED inherited fd %d%s\n", i, up >= 0 ? " (walks to ..)" : "");
                return 1;
            }
        }
        return verdict(1, "use an fd inherited from the caller");
    }
    if (!strcmp(t, "stdio-dir")) {
        for (int i = 0; i < 3; i++) {
            struct stat st;
            if (fstat(i, &st) == 0 && S_ISDIR(st.st_mode)) {
                int up = openat(i, "..", O_RDONLY | O_DIRECTORY);
                printf("ESCAPED a directory as fd %d%s\n", i, up >= 0 ? " (walks to ..)" : "");
                return 1;
            }
        }
        return verdict(1, "use a directory passed as stdin/stdout/stderr");
    }
    if (!strcmp(t, "cgroup")) {
        int w = open("/sys/fs/cgroup/cgroup.procs", O_WRONLY);
        int m = mount("none", "/tmp", "cgroup2", 0, 0);
        return verdict(w < 0 && m < 0, "reach the cgroup filesystem (leave or raise its limits)");
    }
    if (!strcmp(t, "proc-masked")) {
        const char *masked[] = { "/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/sched_debug", "/proc/kallsyms", 0 };
        for (int i = 0; masked[i]; i++) {
            char b[64]; int f = open(masked[i], O_RDONLY);
            if (f >= 0 && read(f, b, sizeof b) > 0) { printf("ESCAPED read %s\n", masked[i]); return 1; }
        }
        return verdict(1, "read /proc/keys, /proc/timer_list, /proc/kcore");
    }
    if (!strcmp(t, "int80")) {
        /* A 32-bit syscall (getpid = 20 on i386) gets ENOSYS, it is not killed. */
        long r;
        __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        if (r == -ENOSYS) { errno = ENOSYS; return verdict(1, "32-bit int 0x80 syscalls (ENOSYS, not SIGSYS)"); }
        printf("UNEXPECTED int 0x80 returned %ld\n", r);
        return 2;
    }
    if (!strcmp(t, "listmount")) return expect(syscall(458, 0, 0, 0, 0), ENOSYS, "listmount (newer than the allowlist)");
    if (!strcmp(t, "statmount")) return expect(syscall(457, 0, 0, 0, 0), ENOSYS, "statmount (newer than the allowlist)");
    if (!strcmp(t, "loopback")) {
        /* Not an attack: localhost works inside, with or without network. */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof a;
        int ok = s >= 0 && bind(s, (void *)&a, sizeof a) == 0 && listen(s, 1) == 0 && getsockname(s, (void *)&a, &l) == 0;
        int c = socket(AF_INET, SOCK_STREAM, 0);
        ok = ok && connect(c, (void *)&a, sizeof a) == 0;
        if (ok) { printf("BLOCKED nothing: localhost works in the sandbox\n"); return 0; }
        printf("UNEXPECTED localhost does not work in the sandbox: %s\n", strerror(errno));
        return 2;
    }
    if (!strcmp(t, "tiocsetd")) {
        /* With only stdout on the user's terminal: the line discipline
         * of whatever fd 1 is cannot be changed. */
        int ld = 0;
        return expect(ioctl(1, TIOCSETD, &ld), EPERM, "TIOCSETD on stdout");
    }
    if (!strcmp(t, "stty-stdout")) {
        /* Set TOSTOP on fd 1; the test checks from outside that the
         * user's terminal did not change. */
        struct termios tio;
        if (tcgetattr(1, &tio) < 0) return verdict(1, "change the user's terminal settings");
        tio.c_lflag |= TOSTOP;
        if (tcsetattr(1, TCSANOW, &tio) < 0) return verdict(1, "change the user's terminal settings");
        printf("SET tostop on fd 1\n");
        return 0;
    }
    if (!strcmp(t, "caps")) {
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        int bad = 0;
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "Cap", 3) && !strstr(line, "0000000000000000")) bad = 1;
        return verdict(!bad, "hold any capability");
    }
    fprintf(stderr, "unknown attack %s\n", t);
    return 3;
}
