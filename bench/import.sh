#!/usr/bin/env bash
# Import benchmark: one realistic Debian image (~200 MB unpacked, built by
# mmdebstrap and cached under target/bench-cache), imported three ways in
# one run, alternating: berth import, podman load, skopeo copy + umoci unpack.
# Prints medians and berth's ratio to each. Run as root (podman's storage).
# Usage: bench/import.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cache=target/bench-cache
mkdir -p "$cache"
export DEBIAN_FRONTEND=noninteractive
for t in mmdebstrap podman skopeo umoci; do
  command -v $t >/dev/null || { apt-get update -qq; apt-get install -y -qq mmdebstrap podman skopeo umoci uidmap >/dev/null; break; }
done

rootfs=$cache/bookworm-bench-rootfs.tar
if [ ! -s "$rootfs" ]; then
  echo "== building the Debian rootfs with mmdebstrap (cached in $rootfs)"
  # The .tar suffix tells mmdebstrap to write a tarball.
  mmdebstrap --variant=minbase --include=python3,x11-apps,fonts-dejavu-core \
    bookworm "$cache/partial-rootfs.tar" >/dev/null 2>&1
  mv "$cache/partial-rootfs.tar" "$rootfs"
fi
image=$cache/bench-image.tar
[ -s "$image" ] || scripts/oci-from-rootfs.sh "$rootfs" "$image" bench/debian:1 >/dev/null
cargo build --release --quiet
berth=$PWD/target/release/berth
echo "image: $(du -h "$image" | cut -f1) archive, $(du -h "$rootfs" | cut -f1) uncompressed layer"

work=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

now() { date +%s%N; }
declare -A times
run_one() { # name, command...
  local name=$1; shift
  rm -rf "$work/state"; mkdir -p "$work/state"; sync
  # Cold caches for every run: repeated unpack+delete cycles otherwise slow
  # this VM's ext4 down for whichever tool runs next (seen: 1.5 s -> 15 s).
  echo 3 > /proc/sys/vm/drop_caches
  local t0; t0=$(now)
  "$@" >/dev/null 2>&1 || { echo "$name failed: $*" >&2; exit 1; }
  local t1; t1=$(now)
  times[$name]+="$(( (t1 - t0) / 1000000 )) "
}
berth_import() { BERTH_HOME=$work/state "$berth" import "$image"; }
podman_load() { podman --root "$work/state/root" --runroot "$work/state/run" --storage-driver overlay load -i "$image"; }
skopeo_umoci() { skopeo copy -q "oci-archive:$image" "oci:$work/state/oci:b" && umoci unpack --image "$work/state/oci:b" "$work/state/bundle"; }

echo "== $runs runs each, alternating (plus one warm-up)"
for i in $(seq 0 "$runs"); do
  run_one berth berth_import
  run_one podman podman_load
  run_one skopeo_umoci skopeo_umoci
  if [ "$i" = 0 ]; then times=(); fi
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
b=$(echo "${times[berth]}" | median)
printf '%-28s %10s %10s\n' "importer" "median ms" "berth/x"
for k in berth podman skopeo_umoci; do
  m=$(echo "${times[$k]}" | median)
  printf '%-28s %10s %10s\n' "$k" "$m" "$(awk -v b="$b" -v m="$m" 'BEGIN{printf "%.2f", b/m}')"
done
echo "(target: berth/x <= 0.67, i.e. berth at least 1.5x faster than each)"
