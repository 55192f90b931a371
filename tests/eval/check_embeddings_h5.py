"""h5py's view of an embeddings file, for test_eval_embed to compare with greenfound's reader."""
import json
import sys

import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    emb = f["embeddings"]
    out = {
        "shape": list(emb.shape),
        "dtype": str(emb.dtype),
        "sum": float(np.asarray(emb[:], dtype=np.float64).sum()),
        "ids": [v.decode() if isinstance(v, bytes) else v for v in f["ids"][:]],
        "split": [v.decode() if isinstance(v, bytes) else v for v in f["split"][:]] if "split" in f else None,
        "labels": {k: f["labels"][k][:].tolist() for k in f["labels"]} if "labels" in f else {},
        "label_dtypes": {k: str(f["labels"][k].dtype) for k in f["labels"]} if "labels" in f else {},
        "label_attrs": {k: {a: (v.decode() if isinstance(v, bytes) else
                                [x.decode() if isinstance(x, bytes) else x for x in v] if hasattr(v, "__len__") and not isinstance(v, str) else v)
                            for a, v in f["labels"][k].attrs.items()} for k in f["labels"]} if "labels" in f else {},
        "attrs": {k: (v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v))
                  for k, v in f.attrs.items()},
    }
json.dump(out, open(sys.argv[2], "w"))
