#!/usr/bin/env bash
# Disk benchmark (issue 15): N versions of a runtime (1 to 5; each a new
# build of one package, as security updates are) plus 10 apps on the
# first, stored three ways in one run:
#   - berth: its store after `runtime create --chunks $CHUNKS` and
#     `berth build` of each (unpacked layers, their content and tar
#     records, manifests and configs; layer blobs are re-created, not kept);
#   - podman: the same images copied into a containers-storage of its own
#     (overlay driver) with skopeo;
#   - OSTree: an archive-less `bare-user-only` repo (what Flatpak installs
#     into) holding the same trees, each runtime version and each app's
#     own files committed as a branch.
# Sizes are `du -sb` (hard links counted once). Prints the ratios to OSTree
# after each runtime version. Run as root. Takes ~15 minutes.
# Usage: bench/disk.sh [VERSIONS]   (default 5; KEEP=1 keeps the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
for t in mmdebstrap ostree skopeo podman zstd; do
  command -v $t >/dev/null || { apt-get update -qq; apt-get install -y -qq mmdebstrap ostree skopeo podman zstd >/dev/null; break; }
done
cargo build --release --quiet
versions=${1:-5}
chunks=${CHUNKS:-48}
berth=$PWD/target/release/berth
work=$(mktemp -d /tmp/berth-bench-disk.XXXXXX)
cleanup() { [ -n "${KEEP:-}" ] || { podman --root "$work/podman" --runroot "$work/podman-run" system reset -f >/dev/null 2>&1 || true; rm -rf "$work"; }; }
trap cleanup EXIT
export BERTH_HOME=$work/berth
storage="containers-storage:[overlay@$work/podman+$work/podman-run]"
ostree init --repo="$work/ostree" --mode=bare-user-only

# shellcheck source=bench/lib.sh
. bench/lib.sh  # the scripts run from the repository root
# store NAME FIRST: put image NAME in podman's storage and its trees (from
# layer FIRST) in the OSTree repo.
store() {
  local t; t=$(tars "$1" "$2")  # also exports the image to $work/exp
  skopeo copy -q "oci:$work/exp:$1" "$storage$1" >/dev/null
  # shellcheck disable=SC2086
  ostree commit --repo="$work/ostree" --branch="${1//[:\/]/-}" --tar-autocreate-parents --owner-uid=0 --owner-gid=0 $t >/dev/null
  rm -f "$work"/tar-*.tar
}
size() { du -sb "$@" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
report() {
  local b p o; b=$(size "$BERTH_HOME"); p=$(size "$work/podman"); o=$(size "$work/ostree")
  printf '%-34s %14s %14s %14s %10s %10s\n' "$1" "$b" "$p" "$o" "$(ratio "$b" "$o")" "$(ratio "$p" "$o")"
}

echo "== runtime v1 and 10 apps on it"
"$berth" runtime create bench/rt:1 --from debian:bookworm -p libx11-6,python3-minimal --chunks "$chunks" >/dev/null
store bench/rt:1 1
n=0
for src in /usr/lib/python3/dist-packages/*/; do
  [ "$n" -lt 10 ] || break
  [ "$(du -s "$src" | cut -f1)" -gt 200 ] || continue
  n=$((n + 1)); d=$work/app-$n; mkdir -p "$d"; cp -r "$src" "$d/src"
  cat > "$d/berth.toml" <<EOC
id = "org.example.Disk$n"
command = "/usr/bin/python3"
runtime = "bench/rt:1"
image = "bench/app$n:1"
[build]
source = "src"
steps = ["mkdir -p \$BERTH_DEST/lib && cp -r . \$BERTH_DEST/lib/pkg"]
EOC
  "$berth" build "$d/berth.toml" >/dev/null
  first=$("$berth" inspect --json "bench/app$n:1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))')
  store "bench/app$n:1" "$first"
done
printf '\n%-34s %14s %14s %14s %10s %10s\n' "stored" "berth" "podman" "OSTree" "berth/OST" "podman/OST"
report "runtime v1 + $n apps"
(cd "$work" && apt-get download -qq hostname >/dev/null 2>&1)
hv=$(dpkg-deb -f "$work"/hostname_*.deb Version)
for v in $(seq 2 "$versions"); do
  # Version v rebuilds hostname (a new version, one changed file) and
  # adds one more small package, so every version differs from the last.
  r=$work/repack; rm -rf "$r"; dpkg-deb -R "$work"/hostname_*.deb "$r"
  sed -i "s/^Version: .*/Version: ${hv}+berth$v/" "$r/DEBIAN/control"
  echo "version $v" >> "$r/usr/share/doc/hostname/copyright"; rm -f "$r/DEBIAN/md5sums"
  dpkg-deb -b -Zgzip "$r" "$work/hostname-$v.deb" >/dev/null
  "$berth" runtime create "bench/rt:$v" --from debian:bookworm -p "libx11-6,python3-minimal,$work/hostname-$v.deb" --chunks "$chunks" >/dev/null
  store "bench/rt:$v" 1
  report "+ runtime v$v"
done
echo "berth = unpacked layers + records + manifests/configs; podman = overlay storage; OSTree = bare-user-only repo (checkouts hardlink into it)"
echo "berth's blobs (manifests, configs): $(size "$BERTH_HOME/blobs") bytes; layers with their records: $(size "$BERTH_HOME/layers") bytes; tar records alone: $(cat "$BERTH_HOME"/layers/*.tar-split | wc -c) bytes"
echo "Target (issue 15): berth/OSTree <= 1.1"
