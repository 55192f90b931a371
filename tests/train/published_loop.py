"""The published RETFound-Green training loop in plain PyTorch, the peer of test_published_loop.

usage: published_loop.py INPUTS_DIR MODE OUT_DIR
  INPUTS_DIR  what greenfound exported (test_published_loop.cpp): init.safetensors (the wrapper
              at step 0 in published names), steps.safetensors (per step t: t.images,
              t.noise, t.ratio, t.mask_uniform), run.json (timm kwargs, growth interval, and
              per step the lr and the clean sample's index)
  MODE        published: the notebook's loop with its torch.cuda.amp.GradScaler (here
              torch.amp.GradScaler on CPU: the same class, with the scaled backward for real);
              none: the loop without a scaler, the corruption token's gradient cleared every step
  OUT_DIR     steps.json (per step: loss, clip total norm and coefficient, scale) and
              final.safetensors (the wrapper after the last step, plus the token's gradient)

Written from the notebook's description (reference/retfound-green.md §1): a TokenReconstructor
wrapper holding the frozen teacher, the student (timm's vit_small_patch14_reg4_dinov2 class with
small kwargs) with its residual projector, and the corruption token, which no optimizer holds.
Its random draws (randn_like, then rand(B), then rand(B, N)) are served from the export.
"""
import json
import sys

import timm
import torch
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import LayerScale
from timm.optim import param_groups_weight_decay
from torch import nn


class TokenReconstructor(nn.Module):
    def __init__(self, teacher, student):
        super().__init__()
        self.original_encoder = teacher
        self.model = student
        dim = student.embed_dim
        self.corruption_token = nn.Parameter(torch.zeros(1, 1, dim))
        student.projector = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        student.ls_projector = LayerScale(dim, init_values=1e-5)

    def forward(self, imgs, noise_std_normal, ratio_uniform, mask_uniform):
        with torch.inference_mode():
            target = self.original_encoder.forward_features(imgs)
        noise = noise_std_normal * 0.2 * imgs.std(dim=(2, 3), keepdim=True)
        noise[-1] = 0  # the last sample stays clean
        x = self.model.patch_embed(imgs + noise)
        ratio = (ratio_uniform * (1 / 3)).unsqueeze(1)
        mask = mask_uniform < ratio
        mask[-1] = False
        x[mask] = self.corruption_token.to(x.dtype)
        x = self.model._pos_embed(x)
        x = self.model.norm_pre(x)
        x = self.model.blocks(x)
        x = self.model.norm(x)
        x = x + self.model.ls_projector(self.model.projector(x))
        return (x - target).pow(2).mean()


def main(inputs_dir, mode, out_dir):
    torch.set_num_threads(1)
    run = json.load(open(f"{inputs_dir}/run.json"))
    init = load_file(f"{inputs_dir}/init.safetensors")
    steps = load_file(f"{inputs_dir}/steps.safetensors")
    kwargs = run["timm_kwargs"]

    teacher = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, **kwargs).eval()
    student = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, **kwargs)
    encoder_keys = set(student.state_dict())
    teacher.load_state_dict({k: v for k, v in init.items() if k in encoder_keys}, strict=True)
    wrapper = TokenReconstructor(teacher, student)
    wrapper.model.load_state_dict({k: v for k, v in init.items() if k != "corruption_token"}, strict=True)
    with torch.no_grad():
        wrapper.corruption_token.copy_(init["corruption_token"])

    optim = torch.optim.AdamW(param_groups_weight_decay(wrapper.model, weight_decay=1e-4), lr=5e-5, betas=(0.9, 0.99))
    published = mode == "published"
    interval = run["growth_interval"]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                                  growth_interval=interval, enabled=published)
    records = []
    for t, lr in enumerate(run["lr"]):
        assert run["clean_index"][t] == steps[f"{t}.images"].shape[0] - 1, "the clean sample is the batch's last"
        for group in optim.param_groups:
            group["lr"] = lr
        optim.zero_grad()
        if not published:
            wrapper.corruption_token.grad = None  # the intended loop: every gradient is this step's
        loss = wrapper(steps[f"{t}.images"], steps[f"{t}.noise"], steps[f"{t}.ratio"], steps[f"{t}.mask_uniform"])
        scale = scaler.get_scale() if published else 1.0
        if published:
            # The loss scale by hand, as GradScaler keeps it: 2^16, doubled after every `interval`
            # finite steps (no step here is non-finite).
            assert scale == 2.0**16 * 2.0 ** (t // interval), (t, scale)
        scaler.scale(loss).backward()
        scaler.unscale_(optim)
        total = torch.nn.utils.clip_grad_norm_(wrapper.parameters(), 0.1)
        coefficient = torch.clamp(0.1 / (total + 1e-6), max=1.0)  # what clip_grad_norm_ multiplied by
        scaler.step(optim)
        scaler.update()
        records.append({"loss": loss.item(), "grad_norm": total.item(), "clip_coef": coefficient.item(),
                        "grad_scale": scale})

    final = {k: v.detach().clone().contiguous() for k, v in wrapper.model.state_dict().items()}
    final["corruption_token"] = wrapper.corruption_token.detach().clone()
    final["corruption_token.grad"] = wrapper.corruption_token.grad.detach().clone()
    save_file(final, f"{out_dir}/final.safetensors")
    json.dump({"steps": records}, open(f"{out_dir}/steps.json", "w"), indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
