"""Writes a training-style torch.save checkpoint around a state dict, for the C++ reader test.

usage: make_checkpoint.py STATE_DICT.pth OUT.pth
The state dict goes under "model" with DDP's "module." prefix, next to non-tensor entries,
plus a transposed view (non-contiguous strides) and a bfloat16 tensor.
"""
import argparse
import collections
import sys

import torch

state = torch.load(sys.argv[1], map_location="cpu")
model = collections.OrderedDict(("module." + k, v) for k, v in state.items())
model["module.extra.fc1_t"] = state["blocks.0.mlp.fc1.weight"].t()
model["module.extra.cls_bf16"] = state["cls_token"].to(torch.bfloat16)
torch.save({"epoch": 3, "args": argparse.Namespace(lr=5e-5, name="x"), "model": model, "note": b"bytes"}, sys.argv[2])
