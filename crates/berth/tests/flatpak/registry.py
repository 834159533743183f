"""A read-only OCI registry of Flatpak images with the Flatpak registry
index (`/index/static`), as Fedora serves its Flatpaks, for tests on
loopback. Repositories are OCI layout directories under ROOT (ROOT/NAME,
NAME may hold slashes); each layout's index.json names tags by
`org.opencontainers.image.ref.name` (else `latest`).

Usage: registry.py PORT ROOT
"""
import http.server
import json
import os
import sys
import urllib.parse

ROOT = sys.argv[2]


def repos():
    for dirpath, _dirs, files in os.walk(ROOT):
        if "oci-layout" in files:
            yield os.path.relpath(dirpath, ROOT), dirpath


def blob(layout, digest):
    algo, _, hexd = digest.partition(":")
    path = os.path.join(layout, "blobs", algo, hexd)
    if algo != "sha256" or not hexd.isalnum() or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def manifests(layout):
    """(tag, descriptor) of each manifest in the layout's index."""
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    for d in idx.get("manifests", []):
        ref = (d.get("annotations") or {}).get("org.opencontainers.image.ref.name", "latest")
        # Flatpak names its bundles by ref: the tag is the branch.
        yield ref.rsplit("/", 1)[-1].rsplit(":", 1)[-1], d


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, body=b"", ctype="application/json", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/index/static":
            return self.index(urllib.parse.parse_qs(url.query))
        if url.path in ("/v2", "/v2/"):
            return self.send(200, b"{}")
        parts = url.path.split("/")
        if len(parts) < 5 or parts[1] != "v2" or parts[-2] not in ("manifests", "blobs"):
            return self.send(404, b"{}")
        name, kind, ref = "/".join(parts[2:-2]), parts[-2], parts[-1]
        layout = dict(repos()).get(name)
        if layout is None:
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        if kind == "blobs":
            data = blob(layout, ref)
            if data is None:
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                return self.send(206, data[start:], "application/octet-stream",
                                 {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return self.send(200, data, "application/octet-stream", {"Docker-Content-Digest": ref})
        for tag, d in manifests(layout):
            if ref in (tag, d["digest"]):
                return self.send(200, blob(layout, d["digest"]), d["mediaType"],
                                 {"Docker-Content-Digest": d["digest"]})
        return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

    def index(self, q):
        results = []
        for name, layout in sorted(repos()):
            images = []
            for tag, d in manifests(layout):
                m = json.loads(blob(layout, d["digest"]))
                c = json.loads(blob(layout, m["config"]["digest"]))
                labels = (c.get("config") or {}).get("Labels") or {}
                if "architecture" in q and c.get("architecture") not in q["architecture"]:
                    continue
                wanted = [k[6:-7] for k in q if k.startswith("label:") and k.endswith(":exists")]
                if any(w not in labels for w in wanted):
                    continue
                images.append({"Tags": [tag], "Digest": d["digest"], "MediaType": d["mediaType"],
                               "OS": c.get("os"), "Architecture": c.get("architecture"),
                               "Labels": labels, "Annotations": {}})
            if images:
                results.append({"Name": name, "Images": images, "Lists": []})
        self.send(200, json.dumps({"Registry": "/", "Results": results}).encode())


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
