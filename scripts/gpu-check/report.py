"""Assembles the one JSON of scripts/gpu-check.sh from what its steps left in the work folder
(README, GPU check, lists the fields). Standard library only. In a dry run the GPU figures are
null and the toy CPU rehearsal's figures go under "rehearsal" (they only show the pipeline ran).
"""
import argparse
import glob
import json
import os
import re
import subprocess
import time

PAPER_EMBED_RATIO = 2.7  # RETFound-Green embeds 2.7x faster than RETFound-MEH (reference, section 3)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def versions(text):
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        out[key.lower()] = value.strip()
    return out


def ctest_counts(text):
    results = re.findall(r"Test\s+#\d+: (\S+) \.+\s*(?:\*\*\*)?(Passed|Skipped|Failed|Not Run|Timeout|Exception)", text)
    counts = {"total": len(results), "passed": 0, "failed": 0, "skipped": 0, "failed_tests": []}
    for name, status in results:
        if status == "Passed":
            counts["passed"] += 1
        elif status == "Skipped":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
            counts["failed_tests"].append(name)
    return counts


def pretrain_figures(work, steps_short, steps_long):
    """Rate over the long run's steps after the short run's count; J/image from the two runs'
    difference (start-up and the final checkpoint cancel)."""
    records = [json.loads(line) for line in read(f"{work}/run-{steps_long}/metrics.jsonl").splitlines() if line.strip()]
    timed = [r for r in records if r["step"] > steps_short]
    seconds = sum(r["time_s"]["step"] for r in timed)
    images = sum(r["images_per_s"] * r["time_s"]["step"] for r in timed)
    split = {k: sum(r["time_s"][k] for r in timed) / seconds for k in ("data", "teacher", "student", "allreduce", "optimizer")}
    out = {"timed_steps": len(timed), "images_per_s": images / seconds, "step_time_split": split,
           "batch": round(images / len(timed)), "joules_per_image": None, "gpu_watts": None, "energy_label": None}
    energy = [json.loads(read(f"{work}/run-{s}/energy.json")) for s in (steps_short, steps_long)]
    gpu = [e.get("domains", {}).get("gpu", {}) for e in energy]
    if all("joules" in g for g in gpu) and all(e.get("images") for e in energy):
        extra_images = energy[1]["images"] - energy[0]["images"]
        extra_joules = gpu[1]["joules"] - gpu[0]["joules"]
        if extra_images > 0 and extra_joules > 0:
            out["joules_per_image"] = extra_joules / extra_images
            out["gpu_watts"] = out["joules_per_image"] * out["images_per_s"]
        out["energy_label"] = gpu[1].get("label")
    return out


def embed_rate(work, which):
    """End-to-end and marginal images/s: the whole set against its test split."""
    runs = {}
    for split in ("test", "all"):
        text = read(f"{work}/embed-{which}-{split}.log")
        match = re.search(r"wrote \S+: (\d+) embeddings.*?, ([0-9.]+) images/s", text)
        if not match:
            raise SystemExit(f"{work}/embed-{which}-{split}.log: no 'wrote ... images/s' line")
        count, rate = int(match.group(1)), float(match.group(2))
        runs[split] = (count, count / rate if rate > 0 else float("inf"))
    (n_test, t_test), (n_all, t_all) = runs["test"], runs["all"]
    marginal = (n_all - n_test) / (t_all - t_test) if t_all > t_test else None
    return {"images": n_all, "images_per_s": marginal, "end_to_end_images_per_s": n_all / t_all}


def project_cost(greenfound, lib_path, gpu, images_per_s, joules_per_image):
    env = dict(os.environ, LD_LIBRARY_PATH=lib_path)
    command = [greenfound, "cost", "--config", "configs/paper.json", "--gpu", gpu, "--gpus", "1",
               "--images-per-s", f"{images_per_s:.6g}", "--json"]
    if joules_per_image:
        command += ["--joules-per-image", f"{joules_per_image:.6g}"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()}
    cost = json.loads(done.stdout)
    keys = ("gpu", "images", "rate", "energy", "mfu", "gpu_hours", "kwh", "kwh_x_pue", "co2e_kg", "cost_usd",
            "gpu_cost_usd", "energy_cost_usd")
    return {k: cost[k] for k in keys}


def measurements(args, gpu_name, peak):
    pretrain = pretrain_figures(args.work, args.steps_short, args.steps_long)
    flops = json.loads(subprocess.run(
        [args.greenfound, "cost", "--config", "configs/paper.json", "--gpu", "H100", "--json"] + args.cost_sets.split(),
        capture_output=True, text=True, env=dict(os.environ, LD_LIBRARY_PATH=args.lib_path), check=True).stdout)
    pretrain["flops_per_image"] = flops["flops_per_image"]
    pretrain["model_tflops"] = pretrain["images_per_s"] * flops["flops_per_image"] / 1e12
    pretrain["mfu_of_measured_peak"] = pretrain["model_tflops"] / peak if peak else None
    small, large = embed_rate(args.work, "s"), embed_rate(args.work, "l")
    ratio = small["images_per_s"] / large["images_per_s"] if small["images_per_s"] and large["images_per_s"] else None
    embed = {"vit_small_patch14_reg4_392": small, "vit_large_patch14_reg4_224": large,
             "ratio_small_over_large": ratio, "paper_ratio": PAPER_EMBED_RATIO}
    projection = project_cost(args.greenfound, args.lib_path, gpu_name, pretrain["images_per_s"],
                              pretrain["joules_per_image"])
    return pretrain, embed, projection


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("gpu", "dry-run"), required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--greenfound", required=True)
    parser.add_argument("--lib-path", default="")
    parser.add_argument("--debs", required=True)
    parser.add_argument("--system-libraries", default="", help="file: prefix sonames the system's copy replaced")
    parser.add_argument("--build-seconds", type=float, required=True)
    parser.add_argument("--start", type=float, required=True)
    parser.add_argument("--steps-short", type=int, required=True)
    parser.add_argument("--steps-long", type=int, required=True)
    parser.add_argument("--cost-sets", default="", help="the --set overrides of the measured config, one string")
    args = parser.parse_args()
    work = args.work

    version = versions(read(f"{work}/version.txt"))
    debs = glob.glob(f"{args.debs}/*.deb")
    unresolved = [line for line in read(f"{work}/ldd-missing.txt").splitlines() if line.strip()]
    report = {
        "greenfound_gpu_check": 1,
        "mode": args.mode,
        "versions": version,
        "build": {"seconds": args.build_seconds, "debs": len(debs),
                  "debs_mib": round(sum(os.path.getsize(d) for d in debs) / 2**20, 1),
                  "system_libraries_used": (read(args.system_libraries).split()
                                            if args.system_libraries and os.path.exists(args.system_libraries) else []),
                  "unresolved_libraries": unresolved},
        "gpu_tests": ctest_counts(read(f"{work}/ctest.log")),
    }
    gpu = args.mode == "gpu"
    skipped = "skipped: no GPU (" + version.get("gpus", "?") + ")"
    peak_json = json.loads(read(f"{work}/peak.json")) if gpu and os.path.exists(f"{work}/peak.json") else {}
    peak = peak_json.get("tflops")
    report["matmul_bf16_peak_tflops"] = peak if gpu else None
    pretrain, embed, projection = measurements(args, peak_json.get("device", "H200"), peak)
    setting = {"arch": "vit_small_patch14_reg4", "img_size": 392, "batch": 128, "precision": "bf16",
               "init": "random", "data": "synthetic, packed (greenfound synth + pack)"}
    if gpu:
        report["pretrain"] = {**setting, **pretrain}
        report["embed"] = embed
        report["projection"] = {"recipe": "configs/paper.json: 120 epochs x 75,000 images", **projection}
    else:
        report["pretrain"] = {**setting, "images_per_s": None, "model_tflops": None, "mfu_of_measured_peak": None,
                              "joules_per_image": None, "status": skipped}
        report["embed"] = {"vit_small_patch14_reg4_392": None, "vit_large_patch14_reg4_224": None,
                           "ratio_small_over_large": None, "paper_ratio": PAPER_EMBED_RATIO, "status": skipped}
        report["projection"] = {"gpu_hours": None, "kwh": None, "cost_usd": None, "status": skipped}
        report["rehearsal"] = {"note": "toy sizes on the CPU: the same commands and parsing, not figures",
                               "pretrain": pretrain, "embed": embed, "projection": projection}
    report["wall_s"] = round(time.time() - args.start, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
