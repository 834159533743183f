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
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo=sudo; else
      echo "The demo needs ${need[*]}: install them as root (apt-get install ${need[*]}) and run it again." >&2
      exit 1
    fi
  fi
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

echo "== berth import, images, inspect"
"$berth" import demo/out/berth-demo.tar
"$berth" images
"$berth" inspect berth-demo
echo "== berth run (the image, with a command)"
"$berth" run berth-demo -- /bin/sh -c 'echo "in the sandbox: $(id -un) on $(hostname), / is read-only:"; touch /x 2>&1 || true'

echo "== berth install (permission review; --yes because this script has no terminal to ask on)"
"$berth" install --yes demo/out/berth-demo.tar
"$berth" list
entry=$BERTH_HOME/exports/share/applications/org.berth.Demo.desktop
echo "== launching from the exported menu entry $entry"
exec_line=$(sed -n 's/^Exec=//p' "$entry")
echo "Exec=$exec_line"
$exec_line

launcher='~/.local/bin/berth'; [ "$(id -u)" = 0 ] && launcher=/usr/local/bin/berth
echo
echo "== done. The demo used its own store, $BERTH_HOME, and the berth built at"
echo "   $berth. To use berth as the rest of the README does (your own store,"
echo "   berth by name, menu entries that outlive this build directory):"
echo
echo "     $berth integrate    # installs berth as $launcher"
echo '     export PATH="$HOME/.local/bin:$PATH"    # if that directory is not on PATH yet'
