"""One Token Reconstruction training step in plain PyTorch eager, with the real timm model.

bench_train_step runs this next to greenfound's step (same torch, batch, image size and thread
count) and prints the ratio. The student and teacher are timm's own
`vit_small_patch14_reg4_dinov2` (random init: the step costs the same with any weights); the
wrapper follows RETFound-Green's published TokenReconstructor (reference/retfound-green.md
§1): teacher forward_features under inference_mode, pixel noise 0.2 x per-image per-channel
std, patch_embed, per-sample ratio r ~ U(0, 1/3) of patches replaced by a zero corruption
token, last sample clean, _pos_embed, norm_pre, blocks, norm, residual projector
(LayerNorm, Linear, GELU, Linear, LayerScale 1e-5), MSE over all tokens; AdamW 5e-5 betas
(0.9, 0.99) over timm's param_groups_weight_decay(1e-4) and clip_grad_norm_ 0.1 over the
wrapper's parameters, with PyTorch's defaults everywhere else (as the published loop).

Prints one JSON object: the torch and timm versions, the thread count, and the seconds of
every timed step, of its phases (teacher, student forward+backward, clip+optimizer) and the
process's CPU seconds per step (all threads).
"""
import argparse
import json
import math
import time

import timm
import torch
import torch.nn as nn
from timm.layers import LayerScale
from timm.optim import param_groups_weight_decay

# greenfound's registered architectures as timm builds them: the model name and its kwargs.
ARCHS = {
    "vit_small_patch14_reg4": ("vit_small_patch14_reg4_dinov2", {}),
    "vit_base_patch14_reg4": ("vit_base_patch14_reg4_dinov2", {}),
    "vit_large_patch14_reg4": ("vit_large_patch14_reg4_dinov2", {}),
    "vit_tiny_patch14_reg4": ("vit_small_patch14_reg4_dinov2", dict(embed_dim=96, depth=3, num_heads=3)),
}


class TokenReconstructor(nn.Module):
    """The published wrapper's forward, restated: returns the loss of one batch."""

    def __init__(self, teacher, student, max_ratio=1 / 3, noise_scale=0.2):
        super().__init__()
        self.original_encoder = teacher
        self.model = student
        self.max_ratio = max_ratio
        self.noise_scale = noise_scale
        dim = student.embed_dim
        self.corruption_token = nn.Parameter(torch.zeros(1, 1, dim))
        student.projector = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        student.ls_projector = LayerScale(dim, init_values=1e-5)

    def teacher_forward(self, imgs):
        with torch.inference_mode():
            return self.original_encoder.forward_features(imgs)

    def student_loss(self, imgs, target):
        m = self.model
        noise = torch.randn_like(imgs) * self.noise_scale * imgs.std(dim=(2, 3), keepdim=True)
        noise[-1] = 0  # the last sample stays clean
        x = m.patch_embed(imgs + noise)
        ratio = torch.rand(x.shape[0], device=x.device, dtype=x.dtype).unsqueeze(1) * self.max_ratio
        mask = torch.rand(x.shape[0], x.shape[1], device=x.device, dtype=x.dtype) < ratio
        mask[-1] = False
        x[mask] = self.corruption_token.to(x.dtype)
        x = m.norm(m.blocks(m.norm_pre(m._pos_embed(x))))
        x = x + m.ls_projector(m.projector(x))
        return (x - target).pow(2).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_small_patch14_reg4", choices=sorted(ARCHS))
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    name, kwargs = ARCHS[args.arch]
    create = lambda: timm.create_model(name, pretrained=False, img_size=args.img_size, num_classes=0, **kwargs)
    student = create()
    teacher = create().eval()
    teacher.load_state_dict(student.state_dict())
    model = TokenReconstructor(teacher, student)
    optim = torch.optim.AdamW(param_groups_weight_decay(model.model, weight_decay=1e-4), lr=5e-5, betas=(0.9, 0.99))
    imgs = torch.rand(args.batch, 3, args.img_size, args.img_size) * 2 - 1

    times = {"step": [], "teacher": [], "student": [], "optimizer": [], "cpu": []}
    for step in range(args.warmup + args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        optim.zero_grad()
        target = model.teacher_forward(imgs)
        t_teacher = time.perf_counter()
        loss = model.student_loss(imgs, target)
        loss.backward()
        t_student = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optim.step()
        end, cpu_end = time.perf_counter(), time.process_time()
        if not math.isfinite(loss.item()):
            raise SystemExit(f"reference_train_step: step {step}: loss is {loss.item()}")
        if step >= args.warmup:
            times["teacher"].append(t_teacher - start)
            times["student"].append(t_student - t_teacher)
            times["optimizer"].append(end - t_student)
            times["step"].append(end - start)
            times["cpu"].append(cpu_end - cpu_start)
    print(json.dumps({"torch": torch.__version__, "timm": timm.__version__, "threads": torch.get_num_threads(),
                      "seconds": times}))


if __name__ == "__main__":
    main()
