#!/usr/bin/env bash
# The README's first command: set up, build berth, build the demo image
# offline from busybox-static, and run it through berth.
# Works on a fresh Debian 12 machine with a Rust toolchain (run as root,
# or with sudo available for the one apt-get step).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v busybox >/dev/null || need+=(busybox-static)
command -v gzip >/dev/null || need+=(gzip)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "== installing ${need[*]}"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "berth needs a Rust toolchain (cargo); see README" >&2; exit 1; }

echo "== building berth"
cargo build --release --quiet
berth=$PWD/target/release/berth
export BERTH_HOME=${BERTH_HOME:-$PWD/demo/out/store}
mkdir -p demo/out

echo "== building the demo image offline (busybox-static, no network)"
demo/build-image.sh demo/out/berth-demo.tar berth-demo:latest

echo "== berth import"
"$berth" import demo/out/berth-demo.tar
echo "== berth images"
"$berth" images
echo "== berth inspect berth-demo"
"$berth" inspect berth-demo
echo "== berth export + fsck"
"$berth" export berth-demo demo/out/exported.tar
"$berth" fsck
if "$berth" run --help >/dev/null 2>&1; then
  echo "== berth run berth-demo"
  "$berth" run berth-demo
else
  echo "(berth run arrives with the sandbox; the image is ready in $BERTH_HOME)"
fi
