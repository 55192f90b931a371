"""The reference formulation of one Token Reconstruction training step, in plain PyTorch.

bench_train_step runs this next to greenfound's step with the same model, objective, batch,
image size and thread count, and prints the ratio. The model is written out here (not
imported from timm) so the script runs with Debian's python3-torch alone: DINOv2 ViT with 4
register tokens as timm builds `vit_*_patch14_reg4_dinov2` (pre-norm blocks, LayerScale,
exact GELU, LayerNorm eps 1e-6, pos_embed on patches only), and the published
TokenReconstructor forward (RETFound-Green's notebook): frozen teacher, pixel noise
0.2 x per-image per-channel std, per-sample corruption ratio U(0, 1/3), last sample clean,
residual projector with LayerScale 1e-5, MSE over all tokens, AdamW with timm's weight-decay
groups and grad-norm clip 0.1.

Prints one JSON object: images_per_s and the mean seconds per step of each phase.
"""
import argparse
import copy
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = {
    "vit_small_patch14_reg4": dict(embed_dim=384, depth=12, num_heads=6),
    "vit_base_patch14_reg4": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch14_reg4": dict(embed_dim=1024, depth=24, num_heads=16),
    "vit_tiny_patch14_reg4": dict(embed_dim=96, depth=3, num_heads=3),
}


class LayerScale(nn.Module):
    def __init__(self, dim, init_values):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, 1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ls2 = LayerScale(dim, 1e-5)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class ViT(nn.Module):
    def __init__(self, img_size, embed_dim, depth, num_heads, patch=14, reg=4):
        super().__init__()
        self.embed_dim = embed_dim
        grid = img_size // patch
        self.patch_embed = nn.Conv2d(3, embed_dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.reg_token = nn.Parameter(torch.zeros(1, reg, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid, embed_dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def embed(self, imgs):
        return self.patch_embed(imgs).flatten(2).transpose(1, 2)

    def pos_and_prefix(self, x):
        x = x + self.pos_embed
        b = x.shape[0]
        return torch.cat([self.cls_token.expand(b, -1, -1), self.reg_token.expand(b, -1, -1), x], dim=1)

    def forward_features(self, imgs):
        return self.norm(self.blocks(self.pos_and_prefix(self.embed(imgs))))


class TokenReconstructor(nn.Module):
    def __init__(self, teacher, student, corruption_ratio=1 / 3, noise_scale=0.2):
        super().__init__()
        self.teacher = teacher
        self.model = student
        self.corruption_ratio = corruption_ratio
        self.noise_scale = noise_scale
        dim = student.embed_dim
        self.corruption_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.model.projector = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.model.ls_projector = LayerScale(dim, 1e-5)

    def teacher_forward(self, imgs):
        with torch.no_grad():
            return self.teacher.forward_features(imgs)

    def student_forward(self, imgs, y):
        noise = torch.randn_like(imgs) * self.noise_scale * imgs.std(dim=(2, 3), keepdim=True)
        noise[-1] = 0
        imgs = imgs + noise
        x = self.model.embed(imgs)
        ratio = torch.rand(x.shape[0], dtype=x.dtype).unsqueeze(1) * self.corruption_ratio
        mask = torch.rand(x.shape[0], x.shape[1], dtype=x.dtype) < ratio
        mask[-1] = False
        x = torch.where(mask.unsqueeze(-1), self.corruption_token.to(x.dtype), x)
        x = self.model.norm(self.model.blocks(self.model.pos_and_prefix(x)))
        x = x + self.model.ls_projector(self.model.projector(x))
        return (x - y).pow(2).mean()


def weight_decay_groups(model, weight_decay):
    """timm's param_groups_weight_decay with no no-decay list (the published call)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_small_patch14_reg4", choices=sorted(ARCHS))
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    student = ViT(args.img_size, **ARCHS[args.arch])
    teacher = copy.deepcopy(student).eval().requires_grad_(False)
    model = TokenReconstructor(teacher, student)
    optim = torch.optim.AdamW(weight_decay_groups(model.model, 1e-4), lr=5e-5, betas=(0.9, 0.99))
    imgs = torch.rand(args.batch, 3, args.img_size, args.img_size) * 2 - 1

    phases = {"teacher": 0.0, "student": 0.0, "optimizer": 0.0}
    measured = 0.0
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optim.zero_grad()
        y = model.teacher_forward(imgs)
        t_teacher = time.perf_counter()
        loss = model.student_forward(imgs, y)
        loss.backward()
        t_student = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optim.step()
        end = time.perf_counter()
        if not math.isfinite(loss.item()):
            raise SystemExit(f"reference_train_step: step {step}: loss is {loss.item()}")
        if step >= args.warmup:
            phases["teacher"] += t_teacher - start
            phases["student"] += t_student - t_teacher
            phases["optimizer"] += end - t_student
            measured += end - start
    result = {name: seconds / args.steps for name, seconds in phases.items()}
    result["step"] = measured / args.steps
    result["images_per_s"] = args.batch * args.steps / measured
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
