#!/usr/bin/env bash
# Turn a rootfs directory or rootfs tarball into a one-layer OCI archive,
# using only tar, gzip and sha256sum (an independent writer to test berth's
# reader against). Labels are read as KEY=VALUE lines from $LABELS_FILE.
# Usage: scripts/oci-from-rootfs.sh ROOTFS(.tar|DIR) OUT.tar NAME:TAG [CMD]
set -euo pipefail
src=${1:?usage: oci-from-rootfs.sh ROOTFS OUT.tar NAME:TAG [CMD]}
out=${2:?}; name=${3:?}; cmd=${4:-/bin/sh}
work=$(mktemp -d "${TMPDIR:-/tmp}/oci-from-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
blobs=$work/oci/blobs/sha256
mkdir -p "$blobs"

if [ -d "$src" ]; then
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$src" -cf "$work/layer.tar" .
else
  cp "$src" "$work/layer.tar"
fi
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -6 "$work/layer.tar"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$blobs/$layer"

labels=""
if [ -n "${LABELS_FILE:-}" ]; then
  while IFS='=' read -r k v; do
    [ -n "$k" ] || continue
    labels="$labels${labels:+,}\"$k\":\"$v\""
  done < "$LABELS_FILE"
fi
printf '{"created":"2026-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Cmd":["%s"],"WorkingDir":"/","Labels":{%s}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2026-01-01T00:00:00Z","created_by":"scripts/oci-from-rootfs.sh"}]}' \
  "$cmd" "$labels" "$diff_id" > "$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$blobs/$config"

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$blobs/$manifest"

echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$name" > "$work/oci/index.json"
# Directory entries first, so rootless readers (skopeo) create them cleanly.
tar --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "built $out ($name, manifest sha256:${manifest:0:12})"
