# Shared by the benchmarks; sourced after $berth, $work and BERTH_HOME are set.

# tars IMAGE FIRST: `ostree commit --tree=tar=` arguments for the image's
# layers from index FIRST on, each decompressed once into $work. The
# store keeps layers, not blobs: the image is read as `berth export`
# writes it, into the OCI layout $work/exp (which `skopeo copy
# oci:$work/exp:IMAGE` then reads too).
tars() {
  rm -rf "$work/exp"; mkdir -p "$work/exp"
  "$berth" export "$1" "$work/exp.oci" >/dev/null
  tar -xf "$work/exp.oci" -C "$work/exp"; rm -f "$work/exp.oci"
  python3 - "$work/exp" <<'PY' | tail -n +"$2" | while read -r d; do
import json, sys
root = sys.argv[1]
m = json.load(open(f"{root}/index.json"))["manifests"][0]["digest"].split(":")[1]
for l in json.load(open(f"{root}/blobs/sha256/{m}"))["layers"]:
    print(l["digest"].split(":")[1])
PY
      f=$work/tar-$d.tar
      b=$work/exp/blobs/sha256/$d
      [ -f "$f" ] || zstd -dcqf "$b" > "$f" 2>/dev/null || gzip -dc < "$b" > "$f"
      echo "--tree=tar=$f"
    done
}
