"""Writes a dataset folder with h5py (+ PIL for JPEG/PNG) in greenfound's layout, the way an
outside tool would, and prints the expected contents as JSON (ids, labels, sha256 of each
image's RGB pixels as PIL decodes them). Shard 0 stores ids as fixed-length bytes and labels
as int32; shard 1 as variable-length strings and int64, so both forms are read back.

  h5py_write.py OUT_DIR jpeg|png|raw
"""
import hashlib
import io
import json
import os
import sys

import h5py
import numpy as np
from PIL import Image

RES = 40


def image(i):
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:RES, 0:RES]
    base = np.stack([(x * 6 + i * 20) % 256, (y * 5) % 256, ((x + y) * 3) % 256], -1)
    return np.clip(base + rng.integers(0, 20, base.shape), 0, 255).astype(np.uint8)


def main():
    out_dir, encoding = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    sizes = [5, 4]
    expect = {"ids": [], "grade": [], "score": [], "split": [], "pixels_sha256": []}
    manifest = {"format_version": 1, "count": sum(sizes), "resolution": RES, "encoding": encoding,
                "shards": [], "labels": [{"name": "grade", "type": "int"}, {"name": "score", "type": "float"}],
                "split": {"by": "patient", "test_fraction": 0.25, "seed": 3, "train": 0, "test": 0},
                "sources": {"h5py": sum(sizes)}, "preprocessing": {"method": "none"}}
    index = 0
    for s, n in enumerate(sizes):
        name = "shard-%05d.h5" % s
        path = os.path.join(out_dir, name)
        ids = ["py_%02d" % (index + k) for k in range(n)]
        grades = [(index + k) % 3 if (index + k) != 4 else -1 for k in range(n)]
        scores = [float("nan") if (index + k) % 4 == 1 else 0.5 * (index + k) for k in range(n)]
        split = [(index + k) % 4 == 0 for k in range(n)]
        with h5py.File(path, "w") as f:
            if encoding == "raw":
                images = f.create_dataset("images", (n, RES, RES, 3), dtype=np.uint8, chunks=(1, RES, RES, 3))
            else:
                images = f.create_dataset("images", (n,), dtype=h5py.vlen_dtype(np.dtype("uint8")))
            for k in range(n):
                pixels = image(index + k)
                if encoding == "raw":
                    images[k] = pixels
                    decoded = pixels
                else:
                    buf = io.BytesIO()
                    if encoding == "jpeg":
                        Image.fromarray(pixels).save(buf, format="JPEG", quality=90, subsampling=0)
                    else:
                        Image.fromarray(pixels).save(buf, format="PNG")
                    data = buf.getvalue()
                    images[k] = np.frombuffer(data, dtype=np.uint8)
                    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                expect["pixels_sha256"].append(hashlib.sha256(decoded.tobytes()).hexdigest())
            if s == 0:
                f.create_dataset("ids", data=np.array([i.encode() for i in ids], dtype="S8"))
                f.create_dataset("labels/grade", data=np.array(grades, dtype=np.int32))
            else:
                f.create_dataset("ids", data=ids, dtype=h5py.string_dtype())
                f.create_dataset("labels/grade", data=np.array(grades, dtype=np.int64))
            f.create_dataset("sources", data=["h5py"] * n, dtype=h5py.string_dtype())
            f.create_dataset("labels/score", data=np.array(scores, dtype=np.float64))
            f.create_dataset("split", data=np.array(split, dtype=np.uint8))
            f.attrs["format_version"] = 1
            f.attrs["resolution"] = RES
        with open(path, "rb") as f:
            data = f.read()
        manifest["shards"].append({"file": name, "count": n, "first_index": index, "bytes": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest()})
        expect["ids"] += ids
        expect["grade"] += grades
        expect["score"] += [None if v != v else v for v in scores]
        expect["split"] += [int(v) for v in split]
        index += n
    manifest["split"]["test"] = sum(expect["split"])
    manifest["split"]["train"] = index - manifest["split"]["test"]
    # The manifest's own checksum, computed by this peer: sha256 of the compact, key-sorted JSON.
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    manifest["manifest_sha256"] = hashlib.sha256(canonical).hexdigest()
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(expect))


if __name__ == "__main__":
    main()
