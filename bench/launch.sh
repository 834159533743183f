#!/usr/bin/env bash
# Launch benchmark: time to run /bin/true in a full default sandbox, in one
# run, alternating: berth run (the front door, `berth`, which launches
# itself), berth-cli run (the same launch from the full command line, for
# what the front door saves), raw bwrap (equivalent namespaces and mounts),
# flatpak run (tiny local runtime + app made with flatpak build-export),
# runc run and podman run --rm (with runc: crun refuses hybrid cgroup hosts). Prints means, medians and berth's ratios.
# Run as root. Usage: bench/launch.sh [RUNS]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
export DEBIAN_FRONTEND=noninteractive
for t in bwrap flatpak runc podman busybox; do
  command -v $t >/dev/null || { apt-get update -qq; apt-get install -y -qq bubblewrap flatpak runc podman busybox-static >/dev/null; break; }
done
cargo build --release --quiet
berth=$PWD/target/release/berth
work=$(mktemp -d /var/tmp/berth-launch.XXXXXX)
cleanup() {
  runc delete -f "bench-$$" >/dev/null 2>&1 || true
  umount "$work/xdg-runtime" 2>/dev/null || true
  umount -R "$work/podman/overlay" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== preparing: one busybox image for every tool"
demo/build-image.sh "$work/demo.tar" bench/launch:1 >/dev/null
# A desktop session's runtime directory is a tmpfs (systemd-logind's
# /run/user/UID); berth and flatpak keep their instance state there.
mkdir -p "$work/xdg-runtime" && mount -t tmpfs -o mode=700 tmpfs "$work/xdg-runtime"
export XDG_RUNTIME_DIR=$work/xdg-runtime
export BERTH_HOME=$work/berth
unset BERTH_RUNTIME_DIR
"$berth" import -q "$work/demo.tar" >/dev/null
rootfs=$work/rootfs
mkdir -p "$rootfs" && tar -xf "$work/demo.tar" -C "$work" blobs 2>/dev/null
layer=$(ls -S "$work/blobs/sha256" | head -1)
tar -xzf "$work/blobs/sha256/$layer" -C "$rootfs"

# runc bundle
mkdir -p "$work/bundle" && cp -a "$rootfs" "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && jq '.process.args=["/bin/true"] | .process.terminal=false' config.json > c && mv c config.json)

# podman image
podman --root "$work/podman" --runroot "$work/podman-run" load -q -i "$work/demo.tar" >/dev/null

# flatpak: a runtime holding busybox as /usr, an app that runs `true`
fp=$work/flatpak
mkdir -p "$fp/home"
export FLATPAK_USER_DIR=$fp/user HOME=$fp/home
# A runtime build dir by hand (build-init would want the runtime installed
# already); then the app against it.
mkdir -p "$fp/rt/usr/bin" "$fp/rt/files"
cp "$rootfs/bin/busybox" "$fp/rt/usr/bin/"; ln -s busybox "$fp/rt/usr/bin/true"; ln -s busybox "$fp/rt/usr/bin/sh"; ln -s busybox "$fp/rt/usr/bin/sleep"
printf '[Runtime]\nname=org.berth.BenchRuntime\nruntime=org.berth.BenchRuntime/x86_64/1\nsdk=org.berth.BenchRuntime/x86_64/1\n' > "$fp/rt/metadata"
flatpak build-export --runtime "$fp/repo" "$fp/rt" 1 >/dev/null
flatpak --user remote-add --no-gpg-verify bench "$fp/repo"
flatpak --user install -y bench org.berth.BenchRuntime//1 >/dev/null
flatpak build-init "$fp/app" org.berth.BenchApp org.berth.BenchRuntime org.berth.BenchRuntime 1 >/dev/null
flatpak build-finish --command=true "$fp/app" >/dev/null
flatpak build-export "$fp/repo" "$fp/app" 1 >/dev/null
flatpak --user update -y --appstream bench >/dev/null 2>&1 || true
flatpak --user install -y bench org.berth.BenchApp//1 >/dev/null

declare -A cmds=(
  [berth]="$berth run bench/launch:1 -- /bin/true"
  [berth-cli]="$berth-cli run bench/launch:1 -- /bin/true"
  [bwrap]="bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --unshare-net --unshare-cgroup --die-with-parent --new-session --ro-bind $rootfs / --proc /proc --dev /dev --tmpfs /tmp --tmpfs /run --tmpfs /home --cap-drop ALL -- /bin/true"
  [flatpak]="flatpak run --command=true org.berth.BenchApp"
  [runc]="runc run -b $work/bundle bench-$$"
  [podman]="podman --root $work/podman --runroot $work/podman-run run --runtime runc --ulimit nofile=1024:20000 --ulimit nproc=4096:4096 --rm --network=none localhost/bench/launch:1 /bin/true"
)
order=(berth berth-cli bwrap flatpak runc podman)
for k in "${order[@]}"; do
  ${cmds[$k]} >/dev/null 2>"$work/err" || { echo "$k failed: ${cmds[$k]}"; cat "$work/err"; exit 1; }
done

# Wall time of one launch (until the command exits) and its CPU time
# (user + system) in microseconds: of every process it started, also those
# that outlive their parent. bwrap's monitor exits without reaping its pid 1,
# so wait4's rusage alone would leave the sandbox and the app uncounted
# (a 27 ms busy loop under bwrap showed as 2 ms). As a child subreaper the
# harness inherits such orphans, reaps them all, and counts them.
cat > "$work/cpu.c" <<'C'
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static void on_alarm(int s) { (void)s; }
static long us(struct timeval t) { return t.tv_sec * 1000000L + t.tv_usec; }
int main(int argc, char **argv) {
    struct timespec a, b; struct rusage r0, r1; int st;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct sigaction sa = { .sa_handler = on_alarm };
    sigaction(SIGALRM, &sa, NULL);
    getrusage(RUSAGE_CHILDREN, &r0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t p = fork();
    if (p == 0) { int n = open("/dev/null", O_RDWR); dup2(n, 1); dup2(n, 2); execvp(argv[1], argv + 1); _exit(127); }
    waitpid(p, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    alarm(10);
    while (waitpid(-1, &st, 0) > 0) {}
    if (errno == EINTR) { fprintf(stderr, "%s: a process it started is still running after 10 s\n", argv[1]); return 1; }
    getrusage(RUSAGE_CHILDREN, &r1);
    long wall = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
    long cpu = us(r1.ru_utime) + us(r1.ru_stime) - us(r0.ru_utime) - us(r0.ru_stime);
    printf("%ld %ld\n", wall, cpu);
    return 0;
}
C
gcc -O2 -o "$work/cpu" "$work/cpu.c"

# Two groups, each alternating with berth in it, and each ratio taken
# within its group: the kernel tears down a run's cgroups and network
# namespaces in background workers after it exits, which slows the next
# runs (podman's and runc's a lot), so the heavy peers run apart from the
# light ones. Each round starts with the next tool of its group.
stats() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1; s+=$1} END {printf "%.2f %.2f", s/NR/1000, (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000}'; }
printf '%-10s %10s %10s %12s %10s %12s\n' tool "mean ms" "median ms" "berth/tool" "cpu ms" "berth/tool"
group() {
  local -a g=("$@")
  local n=${#g[@]} i j k w c mean med cpu bmean bcpu
  local -A times=() cpus=()
  echo "== $runs runs each, alternating: ${g[*]}"
  for i in $(seq 1 "$runs"); do
    for j in $(seq 0 $((n - 1))); do
      k=${g[$(((i + j) % n))]}
      # shellcheck disable=SC2086
      read -r w c <<<"$("$work/cpu" ${cmds[$k]})"
      times[$k]+="$w "
      cpus[$k]+="$c "
    done
  done
  read -r bmean _ <<<"$(echo "${times[berth]}" | stats)"
  read -r bcpu _ <<<"$(echo "${cpus[berth]}" | stats)"
  for k in "${g[@]}"; do
    read -r mean med <<<"$(echo "${times[$k]}" | stats)"
    read -r cpu _ <<<"$(echo "${cpus[$k]}" | stats)"
    printf '%-10s %10s %10s %12s %10s %12s\n' "$k" "$mean" "$med" \
      "$(awk -v b="$bmean" -v m="$mean" 'BEGIN{printf "%.2f", b/m}')" "$cpu" \
      "$(awk -v b="$bcpu" -v m="$cpu" 'BEGIN{printf "%.2f", (m > 0 ? b/m : 0)}')"
  done
}
group berth berth-cli bwrap
group berth flatpak runc podman
echo "(targets: wall berth/bwrap <= 1.3, berth/flatpak <= 0.25; cpu berth/bwrap <= 2)"

# Memory: the PSS of each tool's own processes while one app (sleep)
# runs, i.e. every descendant of the launched command except the app.
echo "== memory of the sandbox's own processes per running instance (PSS)"
descendants() {
  local pid=$1 c
  echo "$pid"
  for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do descendants "$c"; done
}
pss_of_tool() {
  local top=$1 total=0 p kb
  for p in $(descendants "$top"); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = sleep ] && continue
    kb=$(awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}
declare -A sleeps=(
  [berth]="$berth run bench/launch:1 -- /bin/sleep 30"
  [bwrap]="${cmds[bwrap]% -- /bin/true} -- /bin/sleep 30"
  [flatpak]="flatpak run --command=sleep org.berth.BenchApp 30"
)
printf '%-10s %10s %12s\n' tool "PSS KiB" "berth/tool"
declare -A pss
for k in berth bwrap flatpak; do
  # shellcheck disable=SC2086
  ${sleeps[$k]} >/dev/null 2>&1 &
  top=$!
  sleep 1.5
  pss[$k]=$(pss_of_tool "$top")
  pkill -P "$top" >/dev/null 2>&1 || true
  kill "$top" 2>/dev/null || true
  wait "$top" 2>/dev/null || true
done
for k in berth bwrap flatpak; do
  printf '%-10s %10s %12s\n' "$k" "${pss[$k]}" "$(awk -v b="${pss[berth]}" -v m="${pss[$k]}" 'BEGIN{printf "%.2f", (m > 0 ? b/m : 0)}')"
done
echo "(target: berth <= 2048 KiB)"
