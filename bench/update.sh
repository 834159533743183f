#!/usr/bin/env bash
# Update benchmark: bytes downloaded for a runtime update that changes one
# Debian package (hostname, rebuilt locally with a bumped version and a
# changed file), measured three ways in one run:
#   - berth: `berth pull` of the new runtime from a loopback registry into a
#     store holding the old one (what `berth update` fetches);
#   - layer re-download, as podman pulls it: the compressed size of the new
#     image's layers that the old image lacks (from the two manifests);
#   - OSTree (Flatpak's transport): objects `ostree pull-local` copies into
#     a repo holding the old commit (archive mode: compressed objects, no
#     static deltas). Both trees are committed with `ostree commit`, which
#     is what `flatpak build-export` runs underneath.
# berth is measured twice: the runtime as one layer, and split by package
# (`runtime create --chunks $CHUNKS`, default 48).
# Prints bytes and berth's ratio to each. Run as root.
# Usage: bench/update.sh
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
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== the changed package: hostname, version bumped, one file changed"
(cd "$work" && apt-get download -qq hostname >/dev/null)
deb=$(ls "$work"/hostname_*.deb)
dpkg-deb -R "$deb" "$work/pkg"
old_version=$(sed -n 's/^Version: //p' "$work/pkg/DEBIAN/control")
sed -i "s/^Version: .*/Version: ${old_version}+berth1/" "$work/pkg/DEBIAN/control"
echo "patched by bench/update.sh" >> "$work/pkg/usr/share/doc/hostname/copyright"
rm -f "$work/pkg/DEBIAN/md5sums"
dpkg-deb -b -Zgzip "$work/pkg" "$work/hostname-patched.deb" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOC
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
EOC
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
reg_pid=$!

export BERTH_HOME=$work/author
echo "== runtime v1 and v2 with berth runtime create (mmdebstrap)"
"$berth" runtime create bench/rt:1 --from debian:bookworm -p libx11-6 >/dev/null
"$berth" runtime create bench/rt:2 --from debian:bookworm -p "libx11-6,$work/hostname-patched.deb" >/dev/null 2>"$work/v2.log" || {
  # Older mmdebstrap: no local .deb in --include. Fall back to adding a package.
  echo "   (mmdebstrap did not take the local .deb; v2 adds one small package instead)"
  "$berth" runtime create bench/rt:2 --from debian:bookworm -p libx11-6,libxau6 >/dev/null
}
"$berth" runtime packages bench/rt:2 | grep -E '^hostname' || true
"$berth" push bench/rt:1 "localhost:$port/bench/rt:1" >/dev/null
"$berth" push bench/rt:2 "localhost:$port/bench/rt:2" >/dev/null
echo "== the same two runtimes split by package (--chunks $chunks)"
"$berth" runtime create bench/rtc:1 --from debian:bookworm -p libx11-6 --chunks "$chunks" >/dev/null
"$berth" runtime create bench/rtc:2 --from debian:bookworm -p "libx11-6,$work/hostname-patched.deb" --chunks "$chunks" >/dev/null 2>&1 ||
  "$berth" runtime create bench/rtc:2 --from debian:bookworm -p libx11-6,libxau6 --chunks "$chunks" >/dev/null
"$berth" push bench/rtc:1 "localhost:$port/bench/rtc:1" >/dev/null
"$berth" push bench/rtc:2 "localhost:$port/bench/rtc:2" >/dev/null

echo "== berth: pull v1, then v2"
export BERTH_HOME=$work/user
"$berth" pull "localhost:$port/bench/rt:1" >/dev/null
berth_bytes=$("$berth" pull --json "localhost:$port/bench/rt:2" | sed -n 's/.*"downloaded_bytes": \([0-9]*\).*/\1/p')
export BERTH_HOME=$work/user-chunked
"$berth" pull "localhost:$port/bench/rtc:1" >/dev/null
chunked_bytes=$("$berth" pull --json "localhost:$port/bench/rtc:2" | sed -n 's/.*"downloaded_bytes": \([0-9]*\).*/\1/p')

echo "== layer re-download (podman): new layers' compressed size"
export BERTH_HOME=$work/author
layers() { "$berth" inspect --json "$1" | python3 -c 'import json,sys; [print(l["digest"], l["size"]) for l in json.load(sys.stdin)["layers"]]'; }
layers bench/rt:1 > "$work/l1"; layers bench/rt:2 > "$work/l2"
podman_bytes=$(awk 'NR==FNR {old[$1]=1; next} !($1 in old) {s+=$2} END {print s+0}' "$work/l1" "$work/l2")

echo "== OSTree: commit both trees, pull-local v2 into a repo that has v1"
tarball() { # the runtime's layer as a plain tar
  local d; d=$("$berth" inspect --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"].split(":")[1])')
  gzip -dc "$BERTH_HOME/blobs/sha256/$d" > "$2"
}
tarball bench/rt:1 "$work/v1.tar"; tarball bench/rt:2 "$work/v2.tar"
ostree init --repo="$work/src" --mode=archive
ostree commit --repo="$work/src" --branch=rt --tree=tar="$work/v1.tar" --tar-autocreate-parents >/dev/null
ostree init --repo="$work/dst" --mode=archive
ostree pull-local --repo="$work/dst" "$work/src" rt >/dev/null
before=$(du -sb "$work/dst/objects" | cut -f1)
ostree commit --repo="$work/src" --branch=rt --tree=tar="$work/v2.tar" --tar-autocreate-parents >/dev/null
ostree pull-local --repo="$work/dst" "$work/src" rt >/dev/null
after=$(du -sb "$work/dst/objects" | cut -f1)
ostree_bytes=$((after - before))

ratio() { python3 -c "print(f'{$1/$2:.2f}' if $2 else 'n/a')"; }
printf '\n'
printf '%-40s %14s %12s %12s\n' "update of one Debian package" "bytes" "berth/this" "chunked/this"
printf '%-40s %14s %12s %12s\n' "berth pull, one-layer runtime" "$berth_bytes" "1.00" "$(ratio "$chunked_bytes" "$berth_bytes")"
printf '%-40s %14s %12s %12s\n' "berth pull, runtime in $chunks chunks" "$chunked_bytes" "$(ratio "$berth_bytes" "$chunked_bytes")" "1.00"
printf '%-40s %14s %12s %12s\n' "layer re-download (podman pull)" "$podman_bytes" "$(ratio "$berth_bytes" "$podman_bytes")" "$(ratio "$chunked_bytes" "$podman_bytes")"
printf '%-40s %14s %12s %12s\n' "OSTree pull (Flatpak)" "$ostree_bytes" "$(ratio "$berth_bytes" "$ostree_bytes")" "$(ratio "$chunked_bytes" "$ostree_bytes")"
echo "Target (issue 15): chunked/OSTree <= 1.5; deltas for what chunking misses are not built yet."
