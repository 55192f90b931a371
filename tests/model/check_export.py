"""Loads a greenfound-exported .safetensors into the real timm model and compares embeddings.

usage: check_export.py EXPORT.safetensors TOKENS.safetensors
EXPORT holds the encoder weights and greenfound's metadata (architecture = the timm model
name, timm_kwargs); TOKENS holds `images` [B, 3, S, S] and `tokens`, greenfound's
forward_features of them [B, T, D]. Requires: the file's key order equals the timm model's
state_dict() order, load_state_dict(strict=True) succeeds, and timm's forward_features and
mean-over-tokens embedding equal greenfound's within 1e-5.
"""
import json
import struct
import sys

import timm
import torch
from safetensors.torch import load_file

TOLERANCE = 1e-5


def read_header(path):
    """The metadata, and the tensor names in the order their data lies in the file (the
    safetensors API lists them by name)."""
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    meta = header.pop("__metadata__", {})
    return meta, sorted(header, key=lambda name: header[name]["data_offsets"][0])


def main():
    export_path, tokens_path = sys.argv[1:3]
    meta, order = read_header(export_path)
    state = load_file(export_path)
    kwargs = json.loads(meta["timm_kwargs"])
    model = timm.create_model(meta["architecture"], pretrained=False, **kwargs).eval()
    expected = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    found = [(k, list(state[k].shape)) for k in order]
    if found != expected:
        at = next((i for i, (a, b) in enumerate(zip(found, expected)) if a != b), min(len(found), len(expected)))
        raise SystemExit(f"{export_path}: tensor {at}: found {found[at:at + 1]}, timm expects {expected[at:at + 1]} "
                         f"({len(found)} tensors, timm has {len(expected)})")
    model.load_state_dict(state, strict=True)

    io = load_file(tokens_path)
    with torch.inference_mode():
        tokens = model.forward_features(io["images"])
    ours = io["tokens"]
    assert tokens.shape == ours.shape, f"tokens: timm {list(tokens.shape)}, greenfound {list(ours.shape)}"
    token_diff = (tokens - ours).abs().max().item()
    embed_diff = (tokens.mean(1) - ours.mean(1)).abs().max().item()
    assert token_diff <= TOLERANCE, f"forward_features differ by {token_diff:.3g} > {TOLERANCE}"
    assert embed_diff <= TOLERANCE, f"embeddings differ by {embed_diff:.3g} > {TOLERANCE}"
    print(f"ok: timm {timm.__version__} {meta['architecture']} {meta['timm_kwargs']}: {len(state)} tensors, "
          f"max |diff| tokens {token_diff:.2g}, embeddings {embed_diff:.2g}")


if __name__ == "__main__":
    main()
