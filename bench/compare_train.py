#!/usr/bin/env python3
"""Training speed, nonneg vs PyTorch on CPU, side by side in one run.

    python3 -m venv .venv && .venv/bin/pip install torch numpy
    .venv/bin/python bench/compare_train.py [--threads 2] [--seconds 10]

(a) dense 2381 -> 512 -> 512 -> 1, batch 256, 16,384 rows, Adam, NonNeg on every kernel;
(b) sparse binary rows, 2^20 features, ~300 active per row (Zipf-like), 256 -> 64 -> 1,
    batch 64, against PyTorch's dense Linear + Adam, EmbeddingBag + Adam and
    EmbeddingBag(sparse=True) + SparseAdam; the ratio is against the best of them.
Both sides use the same thread count and keep the data in memory. Prints samples/second
and the ratio.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_json(cmd):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def nonneg(case, threads, seconds):
    return run_json(["cargo", "bench", "-q", "--bench", "train_speed", "--", "--case", case,
                     "--threads", str(threads), "--seconds", str(seconds)])


def torch(case, threads, seconds, variant=None):
    cmd = [sys.executable, "bench/torch_train.py", "--case", case, "--threads", str(threads),
           "--max-seconds", str(seconds)]
    if variant:
        cmd += ["--variant", variant]
    return run_json(cmd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    subprocess.run(["cargo", "bench", "--no-run", "-q", "--bench", "train_speed"], cwd=ROOT, check=True)
    rows = []
    n = nonneg("dense", a.threads, a.seconds)
    t = torch("dense", a.threads, a.seconds)
    rows.append(("(a) dense 2381-512-512-1, batch 256", n["samples_per_s"], f"torch {t.get('torch', '')}", t["samples_per_s"]))
    n = nonneg("sparse", a.threads, a.seconds)
    best = None
    for v in ["linear", "embbag", "embbag-sparse"]:
        t = torch("sparse", a.threads, a.seconds, v)
        print(f"  torch sparse {v:<14} {t['samples_per_s']:>10.1f} samples/s", flush=True)
        if best is None or t["samples_per_s"] > best[1]:
            best = (v, t["samples_per_s"])
    rows.append(("(b) sparse 2^20-256-64-1, batch 64", n["samples_per_s"], f"torch best ({best[0]})", best[1]))
    print(f"\n{'case':<38} {'nonneg':>10} {'pytorch':>10} {'ratio':>7}  (samples/s, {a.threads} threads)")
    for name, ns, label, ts in rows:
        print(f"{name:<38} {ns:>10.1f} {ts:>10.1f} {ns / ts:>6.2f}x  vs {label}")


if __name__ == "__main__":
    main()
