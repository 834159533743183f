#!/usr/bin/env bash
# The README's author workflow, end to end: runtime -> build -> bundle ->
# install -> run. Builds a Debian bookworm runtime and SDK with mmdebstrap
# (needs a Debian mirror), compiles examples/hello-x11 in the SDK, bundles
# it, installs the bundle into a second store (a "user"), and runs it. With
# no $DISPLAY it starts Xvfb and checks that the window appears.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ "$(id -u)" = 0 ] || command -v newuidmap >/dev/null || need+=(uidmap)
[ -n "${DISPLAY:-}" ] || command -v Xvfb >/dev/null || need+=(xvfb)
command -v xwininfo >/dev/null || need+=(x11-utils)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "== installing ${need[*]}"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --quiet
berth=$PWD/target/release/berth
out=$PWD/demo/out
mkdir -p "$out"
author_store=$out/author-store
user_store=$out/user-store
rm -rf "$user_store"

echo "== 1. runtime and SDK from Debian packages"
BERTH_HOME=$author_store "$berth" runtime create example/runtime:bookworm \
  --from debian:bookworm --packages libx11-6 \
  --sdk-packages gcc,libc6-dev,libx11-dev,make
BERTH_HOME=$author_store "$berth" images

echo "== 2. build the app (examples/hello-x11/berth.toml) on them"
BERTH_HOME=$author_store "$berth" build examples/hello-x11/berth.toml

echo "== 3. bundle it as one file"
BERTH_HOME=$author_store "$berth" bundle example/hello-x11:1.0 "$out/hello-x11.berth"

echo "== 4. install the bundle as a user would (review; --yes: no terminal here)"
BERTH_HOME=$user_store "$berth" install --yes "$out/hello-x11.berth"

echo "== 5. run it (it closes itself after 3 seconds)"
xvfb_pid=""
if [ -z "${DISPLAY:-}" ]; then
  n=99; while [ -e /tmp/.X$n-lock ] || [ -e /tmp/.X11-unix/X$n ]; do n=$((n + 1)); done
  Xvfb :$n -nolisten tcp -screen 0 640x480x24 >/dev/null 2>&1 &
  xvfb_pid=$!
  trap '[ -n "$xvfb_pid" ] && kill $xvfb_pid 2>/dev/null' EXIT
  export DISPLAY=:$n
  for _ in $(seq 50); do [ -e /tmp/.X11-unix/X$n ] && break; sleep 0.1; done
fi
BERTH_HOME=$user_store "$berth" run org.berth.examples.HelloX11 -- 3 &
app=$!
for _ in $(seq 50); do
  xwininfo -root -tree 2>/dev/null | grep -q '"Hello from berth"' && break
  sleep 0.1
done
xwininfo -root -tree | grep '"Hello from berth"'
wait $app
echo "== 6. an app from Debian packages (examples/mousepad: five lines)"
BERTH_HOME=$author_store "$berth" build examples/mousepad/berth.toml
BERTH_HOME=$author_store "$berth" bundle --thin org.xfce.mousepad:latest "$out/mousepad.berth"
# A thin bundle installs over the runtime, which the user has on its own.
BERTH_HOME=$author_store "$berth" export example/runtime:bookworm "$out/runtime.tar"
BERTH_HOME=$user_store "$berth" import "$out/runtime.tar"
BERTH_HOME=$user_store "$berth" install --yes "$out/mousepad.berth"
BERTH_HOME=$user_store "$berth" run org.xfce.mousepad >/dev/null 2>&1 &
for _ in $(seq 100); do
  xwininfo -root -tree 2>/dev/null | grep -q 'Mousepad' && break
  sleep 0.1
done
xwininfo -root -tree | grep -m1 'Mousepad'
BERTH_HOME=$user_store "$berth" ps --quiet | while read -r id; do BERTH_HOME=$user_store "$berth" kill "$id"; done
echo "== done: both windows appeared on $DISPLAY"
