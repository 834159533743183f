#!/usr/bin/env bash
# Build the embedded demo image offline, from the host's busybox-static,
# as an OCI archive (see scripts/oci-from-rootfs.sh).
# Usage: demo/build-image.sh OUT.tar [NAME:TAG]
set -euo pipefail
out=${1:?usage: build-image.sh OUT.tar [NAME:TAG]}
name=${2:-berth-demo:latest}
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  for b in /bin/busybox /usr/bin/busybox; do [ -x "$b" ] && busybox=$b; done
fi
[ -x "${busybox:-}" ] || { echo "busybox-static is needed: apt-get install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,home,usr/share/berth-demo,proc,dev,sys,run}
cp "$busybox" "$root/bin/busybox"
for app in sh ls cat echo id hostname ps sleep true false env uname mkdir touch rm grep wc head sed; do
  ln -s busybox "$root/bin/$app"
done
cat > "$root/bin/berth-demo" <<'APP'
#!/bin/sh
echo "Hello from the berth demo app!"
echo "  running as: $(id)"
echo "  hostname:   $(hostname)"
echo "  kernel:     $(uname -sr)"
echo "  files in /: $(ls / | tr '\n' ' ')"
APP
chmod 0755 "$root/bin/berth-demo"
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
echo 'This image was built offline from busybox-static.' > "$root/usr/share/berth-demo/README"
chmod 1777 "$root/tmp"

cat > "$work/labels" <<'LABELS'
org.berth.app.id=org.berth.Demo
org.berth.app.name=berth demo
org.berth.app.command=/bin/berth-demo
org.berth.app.permissions=filesystem=xdg-download:ro
org.berth.app.desktop=[Desktop Entry]\nType=Application\nName=berth demo\nComment=Shows what the sandbox looks like\nExec=/bin/berth-demo\nTerminal=true\n
LABELS
LABELS_FILE=$work/labels "$(dirname "$0")/../scripts/oci-from-rootfs.sh" "$root" "$out" "$name" /bin/berth-demo
