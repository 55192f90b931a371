"""Checks a greenfound-exported .safetensors with PyTorch alone (no timm, no safetensors package).

usage: check_export.py EXPORT.safetensors REFERENCE.pth
Parses the safetensors header by hand, builds a plain torch.nn module tree with the submodule
names of timm's VisionTransformer (vit_*_patch14_reg4_dinov2) from the header's timm_kwargs,
and requires: the file's key order equals that module's state_dict() order, a strict
load_state_dict succeeds, and every tensor equals the reference state dict's.
"""
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
SIZES = {  # what timm registers for each model; timm_kwargs override
    "vit_small_patch14_reg4_dinov2": dict(embed_dim=384, depth=12, num_heads=6),
    "vit_base_patch14_reg4_dinov2": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch14_reg4_dinov2": dict(embed_dim=1024, depth=24, num_heads=16),
}


def read_safetensors(path):
    raw = open(path, "rb").read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        start, end = info["data_offsets"]
        buf = bytearray(raw[8 + size + start:8 + size + end])
        tensors[name] = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors, meta


class Named(nn.Module):
    def __init__(self, **children):
        super().__init__()
        for name, child in children.items():
            setattr(self, name, child)


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))


def block(dim, hidden):
    return Named(norm1=nn.LayerNorm(dim), attn=Named(qkv=nn.Linear(dim, 3 * dim), proj=nn.Linear(dim, dim)),
                 ls1=LayerScale(dim), norm2=nn.LayerNorm(dim),
                 mlp=Named(fc1=nn.Linear(dim, hidden), fc2=nn.Linear(hidden, dim)), ls2=LayerScale(dim))


class Vit(nn.Module):
    def __init__(self, embed_dim, depth, img_size, patch_size=14, reg_tokens=4, mlp_ratio=4.0, **_):
        super().__init__()
        grid = img_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, embed_dim))
        self.patch_embed = Named(proj=nn.Conv2d(3, embed_dim, patch_size, patch_size))
        self.blocks = nn.ModuleList(block(embed_dim, int(embed_dim * mlp_ratio)) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)


def main():
    tensors, meta = read_safetensors(sys.argv[1])
    kwargs = dict(SIZES[meta["architecture"]])
    kwargs.update(json.loads(meta["timm_kwargs"]))
    assert kwargs.pop("num_classes") == 0, kwargs
    model = Vit(**kwargs)
    expected = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    found = [(k, list(v.shape)) for k, v in tensors.items()]
    assert found == expected, f"keys/shapes/order differ:\n{found}\n{expected}"
    model.load_state_dict(tensors, strict=True)
    reference = torch.load(sys.argv[2], map_location="cpu")
    assert list(reference.keys()) == list(tensors.keys())
    for name, value in reference.items():
        assert torch.equal(value, tensors[name]), name
    print(f"ok: {len(tensors)} tensors, {meta['architecture']} {meta['timm_kwargs']}")


if __name__ == "__main__":
    main()
