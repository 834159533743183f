# Shared by the benchmarks; sourced after $berth, $work and BERTH_HOME are set.

# tars IMAGE FIRST: `ostree commit --tree=tar=` arguments for the image's
# layers from index FIRST on, each decompressed once into $work.
tars() {
  "$berth" inspect --json "$1" | python3 -c 'import json,sys; [print(l["digest"].split(":")[1]) for l in json.load(sys.stdin)["layers"]]' |
    tail -n +"$2" | while read -r d; do
      f=$work/tar-$d.tar
      b=$BERTH_HOME/blobs/sha256/$d
      # A blob held as content (elided) has a stand-in blob of the same layer.
      [ -f "$b" ] || b=$BERTH_HOME/blobs/sha256/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["same_as"]["digest"].split(":")[1])' "$BERTH_HOME/elided/$d")
      [ -f "$f" ] || zstd -dcqf "$b" > "$f" 2>/dev/null || gzip -dc < "$b" > "$f"
      echo "--tree=tar=$f"
    done
}
