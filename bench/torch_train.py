#!/usr/bin/env python3
"""PyTorch CPU training-throughput baseline for the `nonneg` benchmarks.

Prints ONE JSON line on stdout per thread count (`--threads 1,2,4`), e.g.
  {"impl": "torch", "case": "dense", "samples_per_s": ..., "threads": 2, ...}

Usage (project venv, CPU only):
  .venv/bin/python bench/torch_train.py --case dense --threads 2
  .venv/bin/python bench/torch_train.py --case sparse --variant embbag-sparse --threads 2

Training loop (all cases): shuffled mini-batches (a fresh permutation per
epoch); per step: build batch -> zero_grad -> forward -> BCEWithLogitsLoss
(mean) -> backward -> optimizer.step() -> NonNeg projection of every kernel
under no_grad.  Batch construction is inside the timed region.  The clock
starts after --warmup steps and stops after --steps timed steps, or earlier
once --max-seconds have elapsed (at least --min-steps are always timed).
samples_per_s = timed_steps * batch / timed_seconds; cpu_seconds = the process's CPU
time (all threads) over the timed steps.

Data generators (numpy, so the Rust side can reproduce the distributions; the
exact bits need not match):

dense:  rng = np.random.default_rng(seed)
        x = rng.standard_normal((rows, 2381), dtype=np.float32)    # N(0,1)
        y = rng.integers(0, 2, size=rows).astype(np.float32)        # Bernoulli(0.5)
        epoch order: rng.permutation(rows)
        model 2381 -> 512 (relu) -> 512 (relu) -> 1, batch 256, Adam(lr=1e-3),
        kernels clamped with w.clamp_(min=0) after every step.

sparse: rng = np.random.default_rng(seed)
        u = rng.random((rows, nnz_draws))                # U[0,1), nnz_draws=300
        idx = floor(2**20 * u**3)  (int64), deduplicated per row (np.unique),
        i.e. P(idx < k) = (k / 2**20) ** (1/3): a Zipf-like head.  About 1%
        of the draws collide, so rows have ~296.7 distinct active features
        (min 285, max 300 for seed 0, 16384 rows); the whole feature space
        is reachable but ~1% of draws land on index 0 and ~10% below 1024.
        y = rng.integers(0, 2, size=rows).astype(np.float32)
        features are binary (value 1.0 at each active index).
        model 2**20 -> 256 (relu) -> 64 (relu) -> 1, batch 64.
        variants:
          linear        nn.Linear(2**20, 256) fed a dense [64 x 2**20] float32
                        batch built per step from the index lists; Adam on
                        all params; clamp every kernel entirely.
          embbag        nn.EmbeddingBag(2**20, 256, mode='sum') + a bias
                        Parameter(256) (== the Linear above for binary x);
                        dense gradients, Adam on all params; clamp everything.
          embbag-sparse EmbeddingBag(sparse=True); torch.optim.SparseAdam for
                        the embedding table, Adam for the rest; after each
                        step clamp only the embedding rows touched by the
                        batch (plus the small dense kernels entirely).
        The embedding table is initialised like nn.Linear(2**20, 256)
        (U(-1/sqrt(2**20), 1/sqrt(2**20))) so all variants compute the same
        function at init.
"""

import argparse
import json
import math
import os
import platform
import time

import numpy as np
import torch
import torch.nn as nn

N_SPARSE = 1 << 20


def sparse_rows(rng, rows, draws):
    """CSR (offsets, indices) of deduplicated Zipf-like feature indices."""
    u = rng.random((rows, draws))
    idx = np.floor(float(N_SPARSE) * u ** 3).astype(np.int64)
    idx = np.minimum(idx, N_SPARSE - 1)
    idx.sort(axis=1)
    keep = np.ones_like(idx, dtype=bool)
    keep[:, 1:] = idx[:, 1:] != idx[:, :-1]
    counts = keep.sum(axis=1)
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, idx[keep]


def batches(rng, rows, batch):
    while True:
        perm = rng.permutation(rows)
        for s in range(0, rows - batch + 1, batch):
            yield perm[s:s + batch]


def project_kernels(linears):
    with torch.no_grad():
        for lin in linears:
            lin.weight.clamp_(min=0)


class SparseNet(nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.variant = variant
        bound = 1.0 / math.sqrt(N_SPARSE)
        if variant == "linear":
            self.first = nn.Linear(N_SPARSE, 256)
        else:
            self.emb = nn.EmbeddingBag(N_SPARSE, 256, mode="sum",
                                       sparse=(variant == "embbag-sparse"))
            with torch.no_grad():
                self.emb.weight.uniform_(-bound, bound)
            self.bias = nn.Parameter(torch.empty(256).uniform_(-bound, bound))
        self.l2 = nn.Linear(256, 64)
        self.l3 = nn.Linear(64, 1)

    def forward(self, inp):
        if self.variant == "linear":
            h = self.first(inp)
        else:
            flat, offs = inp
            h = self.emb(flat, offs) + self.bias
        h = torch.relu(h)
        h = torch.relu(self.l2(h))
        return self.l3(h).squeeze(1)


def generated(cache, key, rng, make):
    """`make()`'s data, made once per process: later runs (other thread counts) reuse it
    and continue from the same generator state."""
    if key not in cache:
        cache[key] = (make(), rng.bit_generator.state)
    data, state = cache[key]
    rng.bit_generator.state = state
    return data


def run(args, threads, cache):
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    info = {}

    if args.case == "dense":
        batch = args.batch or 256
        rows = args.rows or 16384
        d_in = 2381
        x, y = generated(cache, "dense", rng, lambda: (
            torch.from_numpy(rng.standard_normal((rows, d_in), dtype=np.float32)),
            torch.from_numpy(rng.integers(0, 2, size=rows).astype(np.float32))))
        model = nn.Sequential(nn.Linear(d_in, 512), nn.ReLU(),
                              nn.Linear(512, 512), nn.ReLU(),
                              nn.Linear(512, 1))
        linears = [m for m in model if isinstance(m, nn.Linear)]
        opts = [torch.optim.Adam(model.parameters(), lr=args.lr)]

        def make_batch(b):
            bt = torch.from_numpy(b)
            return x.index_select(0, bt), y.index_select(0, bt)

        def fwd(inp):
            return model(inp).squeeze(1)

        def project(_inp):
            project_kernels(linears)

        info.update({"layers": [d_in, 512, 512, 1], "activation": "relu",
                     "data": "x~N(0,1) float32 dense, y~Bernoulli(0.5)"})
    else:
        variant = args.variant
        batch = args.batch or 64
        rows = args.rows or 16384
        offsets, indices, y_all = generated(cache, "sparse", rng, lambda: (
            *sparse_rows(rng, rows, args.nnz_draws),
            rng.integers(0, 2, size=rows).astype(np.float32)))
        model = SparseNet(variant)
        small = [model.l2, model.l3]
        if variant == "embbag-sparse":
            opts = [torch.optim.SparseAdam([model.emb.weight], lr=args.lr),
                    torch.optim.Adam([model.bias] + list(model.l2.parameters())
                                     + list(model.l3.parameters()), lr=args.lr)]
        else:
            opts = [torch.optim.Adam(model.parameters(), lr=args.lr)]

        def make_batch(b):
            starts, ends = offsets[b], offsets[b + 1]
            lens = ends - starts
            flat = np.concatenate([indices[s:e] for s, e in zip(starts, ends)])
            yb = torch.from_numpy(y_all[b])
            if variant == "linear":
                xb = torch.zeros(len(b), N_SPARSE)
                rows_ix = np.repeat(np.arange(len(b)), lens)
                xb[torch.from_numpy(rows_ix), torch.from_numpy(flat)] = 1.0
                return xb, yb
            offs = np.zeros(len(b), dtype=np.int64)
            np.cumsum(lens[:-1], out=offs[1:])
            return (torch.from_numpy(flat), torch.from_numpy(offs)), yb

        fwd = model

        def project(inp):
            with torch.no_grad():
                if variant == "linear":
                    model.first.weight.clamp_(min=0)
                elif variant == "embbag":
                    model.emb.weight.clamp_(min=0)
                else:
                    touched = torch.unique(inp[0])
                    w = model.emb.weight
                    w.index_copy_(0, touched, w.index_select(0, touched).clamp_(min=0))
            project_kernels(small)

        nnz = np.diff(offsets)
        info.update({"variant": variant,
                     "layers": [N_SPARSE, 256, 64, 1], "activation": "relu",
                     "distribution": f"per row: {args.nnz_draws} draws idx=floor(2^20*u^3), "
                                     "u~U[0,1), deduplicated; binary values; y~Bernoulli(0.5)",
                     "nnz_mean": float(nnz.mean()), "nnz_min": int(nnz.min()),
                     "nnz_max": int(nnz.max())})

    loss_fn = nn.BCEWithLogitsLoss()
    it = batches(rng, rows, batch)

    def step():
        inp, yb = make_batch(next(it))
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss = loss_fn(fwd(inp), yb)
        loss.backward()
        for o in opts:
            o.step()
        project(inp)
        return loss

    load_before = os.getloadavg()[0]
    for _ in range(args.warmup):
        step()
    n = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    while True:
        loss = step()
        n += 1
        el = time.perf_counter() - t0
        if n >= args.steps or (n >= args.min_steps and el >= args.max_seconds):
            break
    el = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    out = {"impl": "torch", "case": args.case}
    out.update({"variant": info.pop("variant")} if "variant" in info else {})
    out.update({
        "samples_per_s": n * batch / el,
        "steps_per_s": n / el,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "batch": batch,
        "rows": rows,
        "warmup_steps": args.warmup,
        "timed_steps": n,
        "seconds": el,
        # CPU time of the timed steps, all threads (user + system).
        "cpu_seconds": cpu,
        "final_loss": float(loss.item()),
        "optimizer": "SparseAdam+Adam" if opts and len(opts) == 2 else "Adam",
        "lr": args.lr,
        "constraint": "non_neg on every kernel after each step",
        "cpu": platform.processor() or platform.machine(),
        "os_cpus": os.cpu_count(),
        # 1-minute load average before warm-up / after timing: values well
        # above 0 mean other processes competed for the cores.
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": os.getloadavg()[0],
    })
    out.update(info)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=["dense", "sparse"], required=True)
    ap.add_argument("--variant", choices=["linear", "embbag", "embbag-sparse"],
                    default="embbag-sparse")
    ap.add_argument("--threads", default="1",
                    help="N or N,N,...: a JSON line per thread count, the data generated once")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed steps (default dense 200, sparse linear 3, embbag 6, "
                         "embbag-sparse 500)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed warm-up steps (default 5; 1 for sparse linear/embbag)")
    ap.add_argument("--min-steps", type=int, default=None,
                    help="always time at least this many steps (default min(steps, 40))")
    ap.add_argument("--max-seconds", type=float, default=10.0,
                    help="stop timing after this long (once --min-steps are done)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--nnz-draws", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.case == "dense":
        dsteps, dwarm = 200, 5
    else:
        dsteps, dwarm = {"linear": (3, 1), "embbag": (6, 1), "embbag-sparse": (500, 5)}[args.variant]
    if args.steps is None:
        args.steps = dsteps
    if args.warmup is None:
        args.warmup = dwarm
    if args.min_steps is None:
        args.min_steps = min(args.steps, 40)
    cache = {}
    for threads in args.threads.split(","):
        print(json.dumps(run(args, int(threads), cache)), flush=True)


if __name__ == "__main__":
    main()
