#!/usr/bin/env python3
"""Benchmark: nonneg's greedy feature-addition attack vs an equivalent PyTorch one.

Both attack the same model (nonneg's .safetensors, read here without the `safetensors`
package: 8-byte header length, JSON header, raw little-endian tensors) on the same data:
the first N detected positives, up to budget B, each step adding the feature that lowers
the logit most, scored exactly over every candidate. Both score candidates incrementally:
adding feature j moves the first layer's pre-activation by d_j * W1[j], so the PyTorch
version computes relu(z1 + d_j W1[j]) for all candidates at once (with d_j W1[j]
precomputed per target) and runs the upper layers as batched GEMMs. nonneg uses its
cached scorer (see src/attack/cached.rs). Both run in this one process invocation, on the same
thread count, alternating, best of --repeat; the chosen features are cross-checked. Wall
time is the headline; CPU time (all threads) is printed too, as it is less sensitive to
other load on a shared machine.

Data: synthetic sparse binary "text" (a 38,000-word vocabulary, Zipf word frequencies,
about 150 distinct words per document, class-dependent word preferences), written as
svmlight, and a quick unconstrained model trained with the CLI (hidden 256,64, ReLU).

Usage (from the repository root, torch and numpy in .venv):
    .venv/bin/python bench/attack_bench.py [--targets 200] [--budget 50] [--threads 2]
        [--repeat 2] [--scoring auto|batched|cached] [--torch-block 4096]
        [--workdir target/attack-bench] [--no-build]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np

VOCAB = 38_000


def generate(path, rows, seed, words=165, vocab=VOCAB):
    """Documents of ~150 distinct words; spam and ham prefer different words."""
    lang = np.random.default_rng(1234)  # the "language" is the same for every file
    w = lang.normal(size=vocab) * (lang.random(vocab) < 0.3)
    base = 1.0 / (np.arange(vocab) + 20.0)
    cdfs = []
    for sign in (-1.0, 1.0):
        p = base * np.exp(0.3 * sign * w)
        cdfs.append(np.cumsum(p / p.sum()))
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.5).astype(int)
    with open(path, "w") as f:
        for r in range(rows):
            idx = np.unique(np.minimum(np.searchsorted(cdfs[y[r]], rng.random(words)), vocab - 1))
            if r == 0:  # the full width appears in the training data
                idx = np.unique(np.append(idx, vocab - 1))
            f.write(f"{y[r]} " + " ".join(f"{j}:1" for j in idx) + "\n")


def load_model(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["nonneg"])
    tensors = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        assert v["dtype"] == "F32", v
        a, b = v["data_offsets"]
        tensors[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(v["shape"])
    return tensors, meta


def load_svmlight(path):
    rows, labels = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            labels.append(float(parts[0]))
            idx, val = [], []
            for tok in parts[1:]:
                i, v = tok.split(":")
                idx.append(int(i))
                val.append(float(v))
            rows.append((np.array(idx, dtype=np.int64), np.array(val, dtype=np.float32)))
    return rows, np.array(labels)


def torch_greedy(tensors, meta, rows, labels, n_targets, budget, threads, block):
    import torch

    torch.set_num_threads(threads)
    n_layers = len(meta["layers"])
    assert n_layers >= 2 and meta["layers"][0]["activation"] == "relu", "bench expects a ReLU MLP"
    scaler = meta["scaler"]
    assert scaler["kind"] in ("none", "minmax", "log1p"), "sparse scalings only"
    W = [torch.from_numpy(tensors[f"layers.{i}.weight"].copy()) for i in range(n_layers)]
    B = [torch.from_numpy(tensors[f"layers.{i}.bias"].copy()) for i in range(n_layers)]
    acts = [l["activation"] for l in meta["layers"]]
    W1 = W[0].t().contiguous()  # [D, h1], row j = weights leaving input j
    upper = [(W[i].t().contiguous(), B[i], acts[i]) for i in range(1, n_layers)]
    D = W1.shape[0]
    cap = torch.from_numpy(tensors["input.max"].copy())
    mult = torch.from_numpy(np.array(scaler.get("mult") or [1.0] * D, dtype=np.float32))
    log = scaler["kind"] == "log1p"

    def scaled(v):  # sparse semantics: zero stays zero
        t = torch.sign(v) * torch.log1p(v.abs()) if log else v
        return t * mult

    def act(x, name):
        if name == "relu":
            return x.relu_()
        assert name == "identity", name
        return x

    def upper_logits(h):
        for w, b, a in upper:
            h = act(torch.addmm(b, h, w), a)
        return h[:, 0]

    thr = meta["threshold"][0]
    with torch.no_grad():
        # Targets: positives the model detects, in row order (not timed).
        targets = []
        for r, (idx, val) in enumerate(rows):
            if labels[r] != 1:
                continue
            x = torch.zeros(D)
            x[torch.from_numpy(idx)] = torch.from_numpy(val)
            z1 = B[0] + scaled(x) @ W1
            if float(upper_logits(act(z1.clone(), acts[0])[None, :])[0]) >= thr:
                targets.append((r, x))
            if len(targets) == n_targets:
                break
        t0, c0 = time.perf_counter(), time.process_time()
        results = []
        block = block or D
        H = torch.empty(min(block, D), W1.shape[1])
        s = torch.empty(D)
        for r, x in targets:
            z1 = B[0] + scaled(x) @ W1
            d = (scaled(torch.maximum(x, cap)) - scaled(x))
            alive = x < cap
            U = d[:, None] * W1  # the first-layer change of each candidate
            added, evaded = [], None
            for step in range(1, budget + 1):
                if not bool(alive.any()):
                    break
                for a in range(0, D, block):
                    b = min(D, a + block)
                    h = H[:b - a]
                    torch.add(U[a:b], z1, out=h)
                    s[a:b] = upper_logits(act(h, acts[0]))
                s.masked_fill_(~alive, float("inf"))
                k = int(torch.argmin(s))
                z1 += U[k]
                alive[k] = False
                added.append(k)
                logit = float(upper_logits(act(z1.clone(), acts[0])[None, :])[0])
                if logit < thr:
                    evaded = step
                    break
            results.append((r, evaded, added))
        return time.perf_counter() - t0, time.process_time() - c0, results


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="best of N timings, alternating")
    ap.add_argument("--workdir", default=os.path.join(root, "target", "attack-bench"))
    ap.add_argument("--torch-block", type=int, default=4096,
                    help="PyTorch scores candidates in blocks of this many rows (0: all at once)")
    ap.add_argument("--scoring", default="auto", choices=["auto", "batched", "cached"],
                    help="nonneg's candidate scorer (batched: the same algorithm as PyTorch's)")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "nonneg", "--example", "attack_bench"],
                       cwd=root, check=True)
    exe = os.path.join(root, "target", "release", "nonneg")
    bench = os.path.join(root, "target", "release", "examples", "attack_bench")
    os.makedirs(args.workdir, exist_ok=True)
    train = os.path.join(args.workdir, "train.svm")
    test = os.path.join(args.workdir, "attack.svm")
    model = os.path.join(args.workdir, "model.safetensors")
    if not os.path.exists(train):
        generate(train, 20_000, seed=1)
    if not os.path.exists(test):
        generate(test, 3_000, seed=2)
    if not os.path.exists(model):
        subprocess.run([exe, "train", "--data", train, "--index-base", "0", "--hidden", "256,64",
                        "--epochs", "3", "--seed", "0", "--out", model, "--threads",
                        str(args.threads), "-q"], check=True)

    tensors, meta = load_model(model)
    rows, labels = load_svmlight(test)
    print(f"model: {meta['input_dim']} features, layers "
          f"{[l['out'] for l in meta['layers']]}, data: {len(rows)} rows, "
          f"{np.mean([len(i) for i, _ in rows]):.0f} active features per row")

    rust_times, torch_times, rust_cpu, torch_cpu = [], [], [], []
    rust = torch_res = None
    for _ in range(args.repeat):
        out = subprocess.run([bench, "--model", model, "--data", test, "--index-base", "0",
                              "--targets", str(args.targets), "--budget", str(args.budget),
                              "--threads", str(args.threads), "--scoring", args.scoring],
                             check=True, capture_output=True, text=True).stdout
        rust = json.loads(out)
        rust_times.append(rust["seconds"])
        rust_cpu.append(rust["cpu_seconds"])
        t, c, torch_res = torch_greedy(tensors, meta, rows, labels, args.targets, args.budget,
                                    args.threads, args.torch_block)
        torch_times.append(t)
        torch_cpu.append(c)

    # Cross-check: same targets, same evasion steps, same features chosen.
    assert [r for r, _, _ in torch_res] == rust["rows"], "different targets"
    same_steps = sum(a == b for (_, a, _), b in zip(torch_res, rust["evaded_at"]))
    same_added = sum(a == b for (_, _, a), b in zip(torch_res, rust["added"]))
    steps = sum(len(a) for _, _, a in torch_res)
    n = len(torch_res)
    tr, tt = min(rust_times), min(torch_times)
    print(f"greedy attack, {n} targets, budget {args.budget}, {args.threads} threads: "
          f"{steps} steps, {rust['evaded']} evaded (torch {sum(e is not None for _, e, _ in torch_res)})")
    print(f"agreement: same evasion step {same_steps}/{n}, same features added {same_added}/{n}")
    print(f"nonneg ({rust['scoring']} scoring): {tr:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in rust_times)})")
    print(f"pytorch {__import__('torch').__version__}: {tt:.3f} s  "
          f"(runs: {', '.join(f'{x:.3f}' for x in torch_times)})")
    print(f"speedup nonneg vs pytorch: {tt / tr:.2f}x  ({1000 * tr / max(steps, 1):.2f} vs "
          f"{1000 * tt / max(steps, 1):.2f} ms per step)")
    cr, ct = min(rust_cpu), min(torch_cpu)
    print(f"CPU time (all threads; less sensitive to other load): nonneg {cr:.3f} s, "
          f"pytorch {ct:.3f} s, ratio {ct / cr:.2f}x")
    print(json.dumps({"nonneg_s": tr, "torch_s": tt, "ratio": tt / tr, "nonneg_cpu_s": cr,
                      "torch_cpu_s": ct, "cpu_ratio": ct / cr, "targets": n, "steps": steps,
                      "same_added": same_added}))


if __name__ == "__main__":
    sys.exit(main())
