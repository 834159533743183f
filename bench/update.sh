#!/usr/bin/env bash
# Update benchmark: bytes downloaded for three updates, measured three ways
# in one run (issue 15):
#   (a) one small package: hostname rebuilt with a bumped version and one
#       changed file;
#   (b) a libc-sized update: libc6 and libc-bin replaced by another real
#       build (Debian's bookworm-security 2.36-9+deb12u7 binaries, repacked
#       as a newer version of the main archive's, so that apt upgrades);
#   (c) an app-only change: an app (a Python package's files) whose
#       version 2 fixes one source file.
# Each way:
#   - berth: `berth pull` of the new version from a loopback registry into
#     a store holding the old one (what `berth update` fetches); runtimes
#     split by package (`runtime create --chunks $CHUNKS`, default 48),
#     pushed with `--delta-from` the old version;
#   - whole layers (what podman pulls of the same images): the same pull
#     with BERTH_NO_DELTAS=1, i.e. the compressed layers that changed;
#   - OSTree (Flatpak's transport): objects `ostree pull-local` copies into
#     an archive-mode repo holding the old commit (no static deltas). The
#     trees are committed with `ostree commit`, as `flatpak build-export`
#     does; a runtime's tree is its layers in order.
# Prints bytes and ratios. Run as root (mmdebstrap). Takes ~10 minutes.
# Usage: bench/update.sh   (KEEP=1 keeps the work directory)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
for t in mmdebstrap docker-registry ostree dpkg-deb; do
  command -v $t >/dev/null || { apt-get update -qq; apt-get install -y -qq mmdebstrap docker-registry ostree >/dev/null; break; }
done
cargo build --release --quiet
chunks=${CHUNKS:-48}
berth=$PWD/target/release/berth
work=$(mktemp -d /tmp/berth-bench-update.XXXXXX)
reg_pid=""
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

# repack DEB VERSION OUT [FILE-TO-CHANGE]: the package under another version.
repack() {
  local d="$work/repack.$$"; rm -rf "$d"
  dpkg-deb -R "$1" "$d"
  sed -i "s/^Version: .*/Version: $2/" "$d/DEBIAN/control"
  [ -z "${4:-}" ] || echo "patched by bench/update.sh" >> "$d/$4"
  rm -f "$d/DEBIAN/md5sums"
  dpkg-deb -b -Zgzip "$d" "$3" >/dev/null
  rm -rf "$d"
}

echo "== the updated packages"
(cd "$work" && apt-get download -qq hostname libc6=2.36-9+deb12u7 libc-bin=2.36-9+deb12u7 >/dev/null)
hv=$(dpkg-deb -f "$work"/hostname_*.deb Version)
repack "$work"/hostname_*.deb "${hv}+berth1" "$work/hostname-new.deb" usr/share/doc/hostname/copyright
lv=$(apt-cache policy libc6 | sed -n 's/ *Candidate: //p')
repack "$work"/libc6_2.36-9+deb12u7_*.deb "${lv}+berth1" "$work/libc6-new.deb"
repack "$work"/libc-bin_2.36-9+deb12u7_*.deb "${lv}+berth1" "$work/libc-bin-new.deb"
echo "   hostname $hv -> ${hv}+berth1; libc6, libc-bin $lv -> ${lv}+berth1 (the deb12u7 build)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOC
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
EOC
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
reg_pid=$!
reg=localhost:$port

export BERTH_HOME=$work/author
base=libx11-6,python3-minimal
echo "== runtimes v1, v2 (a), v3 (b), in $chunks chunks (mmdebstrap)"
"$berth" runtime create bench/rt:1 --from debian:bookworm -p "$base" --chunks "$chunks" >/dev/null
"$berth" runtime create bench/rt:2 --from debian:bookworm -p "$base,$work/hostname-new.deb" --chunks "$chunks" >/dev/null
"$berth" runtime create bench/rt:3 --from debian:bookworm -p "$base,$work/hostname-new.deb,$work/libc6-new.deb,$work/libc-bin-new.deb" --chunks "$chunks" >/dev/null
"$berth" runtime packages bench/rt:3 | grep -E '^(hostname|libc6|libc-bin) ' || true

echo "== app v1 and v2 on runtime v1 (berth build)"
app_src=/usr/lib/python3/dist-packages/cryptography
for v in 1 2; do
  d=$work/app-$v; mkdir -p "$d"; cp -r "$app_src" "$d/src"
  [ "$v" = 1 ] || echo "# fixed in version 2" >> "$d/src/fernet.py"
  cat > "$d/berth.toml" <<EOC
id = "org.example.Bench"
command = "/usr/bin/python3"
runtime = "bench/rt:1"
image = "bench/app:$v"
[build]
source = "src"
steps = ["mkdir -p \$BERTH_DEST/lib && cp -r . \$BERTH_DEST/lib/cryptography"]
EOC
  "$berth" build "$d/berth.toml" >/dev/null
done

"$berth" push bench/rt:1 "$reg/bench/rt:1" >/dev/null
"$berth" push --delta-from bench/rt:1 bench/rt:2 "$reg/bench/rt:2"
"$berth" push --delta-from bench/rt:2 bench/rt:3 "$reg/bench/rt:3"
"$berth" push bench/app:1 "$reg/bench/app:1" >/dev/null
"$berth" push --delta-from bench/app:1 bench/app:2 "$reg/bench/app:2"

# pulled OLD NEW [env]: bytes berth downloads for NEW in a store holding OLD
# (blobs, and the manifests, config and listings it reads).
pulled() {
  local home; home=$(mktemp -d "$work/user.XXXXXX")
  BERTH_HOME=$home "$berth" pull "$reg/$1" >/dev/null
  BERTH_HOME=$home env ${3:+$3} "$berth" pull --json "$reg/$2" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["downloaded_bytes"] + j["metadata_bytes"])'
}
a_berth=$(pulled bench/rt:1 bench/rt:2); a_whole=$(pulled bench/rt:1 bench/rt:2 BERTH_NO_DELTAS=1)
b_berth=$(pulled bench/rt:2 bench/rt:3); b_whole=$(pulled bench/rt:2 bench/rt:3 BERTH_NO_DELTAS=1)
c_berth=$(pulled bench/app:1 bench/app:2); c_whole=$(pulled bench/app:1 bench/app:2 BERTH_NO_DELTAS=1)
app_layer=$("$berth" inspect --json bench/app:2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][-1]["size"])')

echo "== OSTree: each version committed, pulled into a repo holding the one before"
# shellcheck source=bench/lib.sh
. bench/lib.sh  # the scripts run from the repository root
ostree init --repo="$work/src" --mode=archive
commit() { # REF IMAGE FIRST-LAYER
  # shellcheck disable=SC2046
  ostree commit --repo="$work/src" --branch="$1" --tar-autocreate-parents $(tars "$2" "$3") >/dev/null
}
# ostree_update REF OLD NEW FIRST: objects a repo holding OLD fetches for NEW.
ostree_update() {
  local dst; dst=$(mktemp -d "$work/ostree.XXXXXX")
  ostree init --repo="$dst" --mode=archive
  commit "$1" "$2" "$4"; ostree pull-local --repo="$dst" "$work/src" "$1" >/dev/null
  local before; before=$(du -sb "$dst/objects" | cut -f1)
  commit "$1" "$3" "$4"; ostree pull-local --repo="$dst" "$work/src" "$1" >/dev/null
  echo $(( $(du -sb "$dst/objects" | cut -f1) - before ))
}
command -v zstd >/dev/null || apt-get install -y -qq zstd >/dev/null
a_ostree=$(ostree_update rt bench/rt:1 bench/rt:2 1)
b_ostree=$(ostree_update rt3 bench/rt:2 bench/rt:3 1)
app_first=$(( $("$berth" inspect --json bench/app:1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))') ))
c_ostree=$(ostree_update app bench/app:1 bench/app:2 "$app_first")

ratio() { python3 -c "print(f'{$1/$2:.2f}' if $2 else 'n/a')"; }
printf '\n%-34s %14s %14s %14s %10s %10s\n' "update" "berth" "whole layers" "OSTree" "berth/OST" "target"
printf '%-34s %14s %14s %14s %10s %10s\n' "(a) one small package" "$a_berth" "$a_whole" "$a_ostree" "$(ratio "$a_berth" "$a_ostree")" "<= 1.5"
printf '%-34s %14s %14s %14s %10s %10s\n' "(b) libc-sized update" "$b_berth" "$b_whole" "$b_ostree" "$(ratio "$b_berth" "$b_ostree")" "<= 1.5"
printf '%-34s %14s %14s %14s %10s %10s\n' "(c) app-only change" "$c_berth" "$c_whole" "$c_ostree" "$(ratio "$c_berth" "$c_ostree")" "n/a"
echo "(c) target: berth <= the app layer ($app_layer bytes): berth/app layer = $(ratio "$c_berth" "$app_layer")"
echo "bytes: berth = deltas + layers fetched whole + manifest, config, referrers list and delta manifest; whole layers = the same with BERTH_NO_DELTAS=1"
