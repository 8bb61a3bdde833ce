#!/usr/bin/env python3
"""Thread scaling of dense training, nonneg vs PyTorch on CPU, side by side in one run.

    python3 -m venv .venv && .venv/bin/pip install torch numpy
    .venv/bin/python bench/scaling.py [--threads 1,2,4,8,16] [--seconds 4] [--rounds 3]
        [--baseline OLD_TRAIN_SPEED_BINARY]

Model 2381 -> 512 -> 512 -> 1 (ReLU), batch 256, Adam, NonNeg on every kernel, 16,384
rows of N(0,1) in memory (benches/train_speed.rs and bench/torch_train.py, `--case
dense`). In every round each side trains for --seconds at every thread count (one
process a side, the data generated once), the order of the sides and of the thread
counts rotating from round to round (A B A B), so a machine shared with other work
disturbs both sides alike; the table shows medians over the rounds. Thread counts above
the machine's cores are run and marked "over": they show how each side copes with more
threads than cores.

Besides samples/s it prints CPU milliseconds per 1,000 samples (all threads of the
process, user + system): flat across thread counts when threads never spin or wait on
each other, growing when they do. --baseline runs a second build of
benches/train_speed.rs (e.g. of an older commit) in the same rounds, for before/after.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_binary():
    """Builds benches/train_speed.rs and returns its executable."""
    out = subprocess.run(
        ["cargo", "bench", "--no-run", "--bench", "train_speed", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == "train_speed":
            return msg["executable"]
    sys.exit("cargo built no train_speed executable")


def json_lines(cmd):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def rust(binary, threads, seconds):
    return json_lines([binary, "--case", "dense", "--threads", threads,
                       "--seconds", str(seconds)])


def torch(threads, seconds):
    return json_lines([sys.executable, "bench/torch_train.py", "--case", "dense",
                       "--threads", threads, "--max-seconds", str(seconds),
                       "--steps", "1000000"])


def cpu_per_k(r):
    """CPU ms per 1,000 samples, or None when the run did not report CPU time."""
    if "cpu_seconds" not in r:
        return None
    samples = r["samples_per_s"] * r["seconds"]
    return 1e6 * r["cpu_seconds"] / samples


def median(runs, key):
    vals = [v for v in (key(r) for r in runs) if v is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", help="another train_speed binary, run as 'before'")
    a = ap.parse_args()
    counts = [int(t) for t in a.threads.split(",")]
    cores = len(os.sched_getaffinity(0))
    sides = {"nonneg": lambda t: rust(binary, t, a.seconds),
             "pytorch": lambda t: torch(t, a.seconds)}
    binary = bench_binary()
    if a.baseline:
        sides["before"] = lambda t: rust(a.baseline, t, a.seconds)
    names = list(sides)
    runs = {(n, t): [] for n in names for t in counts}
    for rnd in range(a.rounds):
        # Each side runs every thread count in one process (its data generated once);
        # the order of the sides and of the thread counts rotates from round to round.
        k, c = rnd % len(names), rnd % len(counts)
        order = counts[c:] + counts[:c]
        for name in names[k:] + names[:k]:
            for t, r in zip(order, sides[name](",".join(map(str, order)))):
                runs[(name, t)].append(r)
                print(f"  round {rnd + 1} threads {t:>2} {name:<8} {r['samples_per_s']:>9.1f} "
                      f"samples/s  load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    print(f"\nDense 2381-512-512-1, batch 256: samples/s, medians of {a.rounds} rounds of "
          f"{a.seconds:g} s; {cores} cores, load average {os.getloadavg()[0]:.1f} at the end.")
    head = "| threads | nonneg | PyTorch | nonneg / PyTorch |"
    rule = "|---|---|---|---|"
    if a.baseline:
        head += " before | after / before |"
        rule += "---|---|"
    head += " CPU ms / 1k samples (nonneg, PyTorch" + (", before" if a.baseline else "") + ") |"
    rule += "---|"
    print(head)
    print(rule)
    for t in counts:
        med = {n: median(runs[(n, t)], lambda r: r["samples_per_s"]) for n in names}
        cpu = [median(runs[(n, t)], cpu_per_k) for n in names]
        label = f"{t}" + (" (over)" if t > cores else "")
        row = f"| {label} | {med['nonneg']:,.0f} | {med['pytorch']:,.0f} | " \
              f"{med['nonneg'] / med['pytorch']:.2f}x |"
        if a.baseline:
            row += f" {med['before']:,.0f} | {med['nonneg'] / med['before']:.2f}x |"
        row += " " + " / ".join("-" if c is None else f"{c:.0f}" for c in cpu) + " |"
        print(row)


if __name__ == "__main__":
    main()
