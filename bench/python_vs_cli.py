#!/usr/bin/env python3
"""Benchmark: a sparse fit from Python (NonNegClassifier) vs `nonneg train`, same data,
same settings, measured side by side in one run.

Data: the SpamAssassin `*-1` collections featurized by the CLI as the README's Quick start
does (spam-1, easy-ham-1, hard-ham-1; --header-tokens --url-hosts --raw-headers), read
into a scipy CSR matrix for Python. Both train the certifiable model with `nonneg train`'s
defaults for it (`--constraint monotone`, 64-32, 20 epochs), alternating, best of
--repeat. The CLI's time is its whole process (read the svmlight file, train, write the
model); Python's is `fit` (conversion, training) plus `save`. The two models must score
the data the same (1e-6), or the run fails. Wall time is the headline; CPU time (all
threads) is printed too, as it is less sensitive to other load on a shared machine.

Usage (from the repository root, after scripts/test.sh or with the package installed):
    .venv-ci/bin/python bench/python_vs_cli.py [--repeat 3] [--threads 2]
"""
import argparse
import io
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.datasets import load_svmlight_file

from nonneg import NonNegClassifier, TextFeaturizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = ROOT / "target" / "release" / "nonneg"
CORPUS = ROOT.parent / "shared" / "data" / "spamassassin"


def cli(*args):
    return subprocess.run([str(CLI), *map(str, args)], check=True, capture_output=True, text=True)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="python-vs-cli-"))
    svm = work / "train.svm"
    cli("featurize", "text", "--class", f"spam={CORPUS / 'spam-1'}",
        "--class", f"ham={CORPUS / 'easy-ham-1'}", "--class", f"ham={CORPUS / 'hard-ham-1'}",
        "--header-tokens", "--url-hosts", "--raw-headers", "--quiet", "--out", svm)
    tf = TextFeaturizer.load(str(svm) + ".featurizer.json")
    X, y = load_svmlight_file(str(svm), n_features=tf.n_features_, zero_based=False,
                              dtype=np.float32)
    X = X.tocsr()
    print(f"data: {X.shape[0]} rows, {X.shape[1]} features, {X.nnz} non-zeros")
    cli_model, py_model = work / "cli.safetensors", work / "py.safetensors"
    cli_times, py_times, cli_cpu, py_cpu = [], [], [], []
    for _ in range(a.repeat):
        t, u = time.perf_counter(), children_cpu()
        cli("--threads", a.threads, "train", "--data", svm, "--out", cli_model,
            "--constraint", "monotone", "--quiet")
        cli_times.append(time.perf_counter() - t)
        cli_cpu.append(children_cpu() - u)
        t, u = time.perf_counter(), time.process_time()
        clf = NonNegClassifier(constraint="monotone", threads=a.threads)
        clf.fit(X, y.astype(int), featurizer=tf).save(py_model)
        py_times.append(time.perf_counter() - t)
        py_cpu.append(time.process_time() - u)
    scores = pd.read_csv(io.StringIO(cli("predict", "--model", cli_model, "--data", svm).stdout))
    diff = np.abs(clf.predict_proba(X)[:, 1] - scores["score"].to_numpy()).max()
    print(f"max |python - cli| score difference: {diff:.2e}")
    if diff > 1e-6:
        sys.exit("the two models differ")
    c, p = min(cli_times), min(py_times)
    print(f"nonneg train (CLI process): {c:.2f}s   (runs: {', '.join(f'{t:.2f}' for t in cli_times)})")
    print(f"NonNegClassifier.fit+save:  {p:.2f}s   (runs: {', '.join(f'{t:.2f}' for t in py_times)})")
    print(f"ratio python/cli: {p / c:.3f} (acceptance: <= 1.2)")
    print(f"CPU time (all threads), best: CLI {min(cli_cpu):.2f}s, Python {min(py_cpu):.2f}s, "
          f"ratio {min(py_cpu) / min(cli_cpu):.3f}")


if __name__ == "__main__":
    main()
