"""The GPU's measured dense bf16 matmul peak, for scripts/gpu-check.sh: the mean rate of twenty
8192^3 bf16 products through torch after warm-ups, timed with CUDA events. Prints one JSON."""
import json

import torch

N, WARMUP, TIMED = 8192, 5, 20
a = torch.randn(N, N, device="cuda", dtype=torch.bfloat16)
b = torch.randn(N, N, device="cuda", dtype=torch.bfloat16)
for _ in range(WARMUP):
    torch.matmul(a, b)
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(TIMED):
    torch.matmul(a, b)
end.record()
torch.cuda.synchronize()
seconds = start.elapsed_time(end) / 1000
print(json.dumps({"device": torch.cuda.get_device_name(0), "n": N, "products": TIMED,
                  "tflops": 2 * N**3 * TIMED / seconds / 1e12}))
