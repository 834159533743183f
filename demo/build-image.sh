#!/usr/bin/env bash
# Build the embedded demo image offline, from the host's busybox-static,
# as an OCI archive. Only coreutils, tar and gzip are used, so the result
# is an independent check of berth's reader.
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

blobs=$work/oci/blobs/sha256
mkdir -p "$blobs"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$work/layer.tar" > "$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$blobs/$layer"

cat > "$work/config.json" <<JSON
{"created":"2026-01-01T00:00:00Z","architecture":"amd64","os":"linux",
 "config":{"Env":["PATH=/bin"],"Cmd":["/bin/berth-demo"],"WorkingDir":"/",
  "Labels":{"org.berth.app.id":"org.berth.Demo","org.berth.app.name":"berth demo",
   "org.berth.app.command":"/bin/berth-demo","org.berth.app.permissions":""}},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},
 "history":[{"created":"2026-01-01T00:00:00Z","created_by":"demo/build-image.sh"}]}
JSON
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$blobs/$config"

cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$config_size},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer","size":$layer_size}]}
JSON
manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$blobs/$manifest"

echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
cat > "$work/oci/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "digest":"sha256:$manifest","size":$manifest_size,
 "annotations":{"org.opencontainers.image.ref.name":"$name"}}]}
JSON
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "built $out ($name, manifest sha256:${manifest:0:12})"
