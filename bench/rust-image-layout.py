#!/usr/bin/env python3
"""Writes an OCI image layout holding the Rust test function.

    bench/rust-image-layout.py LAYOUT_DIR BOOTSTRAP

One gzip layer with /bootstrap (mode 0755), entrypoint ["/bootstrap"],
tagged `latest`; deterministic (fixed mtime, owner 0:0). Used by the
benchmarks to push the same image to Stratus and docker.
"""
import gzip, hashlib, io, json, os, sys, tarfile
root, bootstrap = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(root, "blobs/sha256"), exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(root, "blobs/sha256", h), "wb").write(b)
    return h
tar = io.BytesIO()
with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as t:
    info = t.gettarinfo(bootstrap, arcname="bootstrap"); info.mode = 0o755
    info.uid = info.gid = 0; info.uname = info.gname = ""; info.mtime = 946684800
    t.addfile(info, open(bootstrap, "rb"))
raw = tar.getvalue(); gz = gzip.compress(raw, mtime=0)
layer = put(gz)
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bootstrap"]},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
ch = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + ch, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + layer, "size": len(gz)}]}).encode()
mh = put(manifest)
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + mh, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]},
    open(os.path.join(root, "index.json"), "w"))
