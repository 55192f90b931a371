"""Reads a greenfound dataset folder with h5py + PIL only and prints what it found as JSON:
ids, sources, split, labels (NaN -> null), and per image the byte length, the sha256 of the
decoded RGB pixels (PIL for JPEG/PNG, the stored bytes for raw), the shape and, for JPEG,
PIL's chroma sampling. Also checks every shard's sha256 against manifest.json, and the
manifest's own manifest_sha256 (sha256 of its other fields as compact, key-sorted JSON)."""
import hashlib
import io
import json
import math
import os
import sys

import h5py
import numpy as np
from PIL import Image, JpegImagePlugin


def main():
    root = sys.argv[1]
    with open(os.path.join(root, "manifest.json")) as f:
        manifest = json.load(f)
    out = {"count": 0, "ids": [], "sources": [], "split": [], "labels": {}, "label_types": {}, "categories": {},
           "images": [], "sha256_ok": True, "attrs": None}
    content = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    out["manifest_sha256_ok"] = hashlib.sha256(canonical).hexdigest() == manifest.get("manifest_sha256")
    for shard in manifest["shards"]:
        path = os.path.join(root, shard["file"])
        with open(path, "rb") as f:
            out["sha256_ok"] &= hashlib.sha256(f.read()).hexdigest() == shard["sha256"]
        with h5py.File(path, "r") as f:
            if out["attrs"] is None:
                out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                                for k, v in f.attrs.items()}
            n = f["images"].shape[0]
            out["count"] += n
            out["ids"] += list(f["ids"].asstr()[:])
            out["sources"] += list(f["sources"].asstr()[:])
            if "split" in f:
                out["split"] += [int(v) for v in f["split"][:]]
            for name, ds in f.get("labels", {}).items():
                values = [None if isinstance(v, float) and math.isnan(v) else v for v in ds[:].tolist()]
                out["labels"].setdefault(name, []).extend(values)
                kind = ds.attrs["type"]
                out["label_types"][name] = kind.decode() if isinstance(kind, bytes) else kind
                if "categories" in ds.attrs:
                    out["categories"][name] = [c.decode() if isinstance(c, bytes) else c for c in ds.attrs["categories"]]
            images = f["images"]
            for i in range(n):
                if images.ndim == 4:
                    pixels = np.asarray(images[i], dtype=np.uint8)
                    out["images"].append({"len": int(pixels.size), "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
                                          "shape": list(pixels.shape)})
                    continue
                data = bytes(images[i])
                img = Image.open(io.BytesIO(data))
                entry = {"len": len(data), "format": img.format}
                if img.format == "JPEG":
                    entry["sampling"] = JpegImagePlugin.get_sampling(img)
                pixels = np.asarray(img.convert("RGB"))
                entry["pixels_sha256"] = hashlib.sha256(pixels.tobytes()).hexdigest()
                entry["shape"] = list(pixels.shape)
                out["images"].append(entry)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
