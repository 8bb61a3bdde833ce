#!/usr/bin/env python3
"""Every variant of docs/certified-accuracy.md, measured in one run (Python stdlib only).

    cargo build --release && python3 bench/certified_accuracy.py [--only sa|sb] [--out DIR]
    cargo build --release --example verified_training && python3 bench/certified_accuracy.py --only vt
    python3 bench/certified_accuracy.py --merge OUT.safetensors M1.safetensors M2.safetensors ...


SpamAssassin: featurize train *-1 / test *-2 (the demo's features), then one `nonneg train`
per row; Spambase: `nonneg split` 80/20 seed 0, then the same. Each row is evaluated on the
test set (`nonneg eval --json`), certified (`nonneg certify`, exit code 0 = certified) and
printed as a markdown table row with the exact train arguments, so any row can be rerun
by hand. Training time is `nonneg train`'s wall time on this machine.

`--only vt` (never by default: about an hour on 2 cores) prints the temporal validation table
of docs/verified-training.md: verified training on the first 75% of each `*-1` collection in
archive order, certified on the last 25% (`examples/verified_training.rs`).

`--merge OUT M...` writes the mean-logit ensemble of models with one hidden layer (same
input, one label) as ONE model: the hidden layers side by side, the output weights and bias
averaged, so its logit is exactly the mean; `certify --budget` bounds it jointly, which is
at least the mean of the members' bounds.
"""
import argparse
from array import array
import json
import os
import shlex
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "nonneg")
SA = os.path.join(ROOT, "data", "spamassassin")
SB_LABEL = ["--label-column", "type", "--positive", "spam"]
MONO = "--constraint monotone"

# (name, train arguments) per data set. The first monotone rows retrace the recipe from
# the naive baseline to the default, one lever at a time.
SA_ROWS = [
    ("unconstrained MLP 64-32 (defaults)", ""),
    ("unconstrained MLP 256-64, 5 epochs", "--hidden 256,64 --epochs 5"),
    ("last-layer NonNeg 64-32 (NOT monotone)", "--constraint last-nonneg"),
    ("monotone, naive: relu, PyTorch init, no skip, no L2",
     f"{MONO} --activation relu --init default --no-center-bias --skip off --weight-decay 0"),
    ("+ positive init, bias centring", f"{MONO} --activation relu --skip off --weight-decay 0"),
    ("+ tanh units (the previous default)", f"{MONO} --skip off --weight-decay 0"),
    ("+ linear skip connection", f"{MONO} --weight-decay 0"),
    ("+ L2 1e-2 = **the default recipe**", MONO),
    ("default without the skip", f"{MONO} --skip off"),
    ("default with PyTorch's zero-mean init", f"{MONO} --init default"),
    ("default without bias centring", f"{MONO} --no-center-bias"),
    ("default, seed 1", f"{MONO} --seed 1"),
    ("default, seed 2", f"{MONO} --seed 2"),
    ("default, 40 epochs, L2 3e-3", f"{MONO} --epochs 40 --weight-decay 3e-3"),
    ("default, 256 units, 40 epochs, L2 3e-3", f"{MONO} --hidden 256 --epochs 40 --weight-decay 3e-3"),
    ("default, 256-64", f"{MONO} --hidden 256,64"),
    ("default, 256-64, seed 1", f"{MONO} --hidden 256,64 --seed 1"),
    ("default, 256-64, 10 epochs, no L2", f"{MONO} --hidden 256,64 --epochs 10 --weight-decay 0"),
    ("default, 256-64, 30 epochs, no L2", f"{MONO} --hidden 256,64 --epochs 30 --weight-decay 0"),
    ("default, L2 3e-2", f"{MONO} --weight-decay 3e-2"),
    ("default, AdamW decay 1", f"{MONO} --optimizer adamw --weight-decay 1"),
    ("default, pos_weight none", f"{MONO} --pos-weight none"),
    ("default, batch 32", f"{MONO} --batch-size 32"),
    ("default, lr 3e-3", f"{MONO} --lr 3e-3"),
    ("default, cosine schedule", f"{MONO} --lr-schedule cosine"),
    ("default, SGD momentum 0.9", f"{MONO} --optimizer sgd --lr 0.1 --momentum 0.9"),
    ("default, SGD Nesterov", f"{MONO} --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov"),
    ("default, moments reset on clipped weights", f"{MONO} --reset-clipped-moments"),
    ("default + MaxNorm(1) on the first kernel's units",
     f"{MONO} --layer-constraint '0.kernel=non_neg+max_norm(1)'"),
    ("default, mixed convex/concave/saturating units", f"{MONO} --activation mixed"),
    ("mixed units, no skip, no L2", f"{MONO} --activation mixed --skip off --weight-decay 0"),
    ("default with relu units", f"{MONO} --activation relu"),
    ("default with sigmoid units", f"{MONO} --activation sigmoid"),
    ("abs reparametrisation instead of projection", f"{MONO} --nonneg-mode abs"),
    ("softplus reparametrisation", f"{MONO} --nonneg-mode softplus"),
    ("monotone logistic regression", f"{MONO} --hidden ''"),
    ("monotone LR, 30 epochs, no L2 (the previous best)", f"{MONO} --hidden '' --epochs 30 --weight-decay 0"),
    ("monotone 256-64 tanh, 10 epochs (the previous demo model)",
     f"{MONO} --hidden 256,64 --epochs 10 --skip off --weight-decay 0"),
]
SB_ROWS = [
    ("unconstrained MLP 64-32 (defaults)", ""),
    ("last-layer NonNeg (NOT monotone)", "--constraint last-nonneg"),
    ("monotone, naive: relu, PyTorch init, standard scaling",
     f"{MONO} --activation relu --init default --no-center-bias --skip off --weight-decay 0 --scale standard"),
    ("+ positive init, bias centring", f"{MONO} --activation relu --skip off --weight-decay 0 --scale standard"),
    ("+ tanh units (the previous default)", f"{MONO} --skip off --weight-decay 0 --scale standard"),
    ("+ log1p-standard scaling", f"{MONO} --skip off --weight-decay 0"),
    ("+ linear skip connection = **the default recipe** (dense: no L2)", MONO),
    ("default + L2 1e-2 (the sparse recipe's)", f"{MONO} --weight-decay 1e-2"),
    ("default, seed 1", f"{MONO} --seed 1"),
    ("default, seed 2", f"{MONO} --seed 2"),
    ("default, 40 epochs", f"{MONO} --epochs 40"),
    ("default with PyTorch's zero-mean init", f"{MONO} --init default"),
    ("default without bias centring", f"{MONO} --no-center-bias"),
    ("default with standard scaling", f"{MONO} --scale standard"),
    ("default, mixed units", f"{MONO} --activation mixed"),
    ("default with relu units", f"{MONO} --activation relu"),
    ("default, moments reset on clipped weights", f"{MONO} --reset-clipped-moments"),
    ("abs reparametrisation", f"{MONO} --nonneg-mode abs"),
    ("softplus reparametrisation", f"{MONO} --nonneg-mode softplus"),
    ("default, SGD momentum 0.9", f"{MONO} --optimizer sgd --lr 0.05 --momentum 0.9"),
    ("monotone logistic regression", f"{MONO} --hidden ''"),
    ("monotone LR, 50 epochs", f"{MONO} --hidden '' --epochs 50"),
]

# Verified training on the temporal validation split (docs/verified-training.md).
VT = "--hidden 64 --activation relu --robust-crown 1 --robust-weight 1"
LIN = "--hidden '' --robust-budget 150 --lr 1e-2"
VT_ROWS = [
    ("`--robust-budget 150` (the random split's choice)", f"{VT} --robust-budget 150"),
    ("K = 150, `--seed 1`", f"{VT} --robust-budget 150 --seed 1"),
    ("K = 150, `--seed 2`", f"{VT} --robust-budget 150 --seed 2"),
    ("K = 150, `--seed 3`", f"{VT} --robust-budget 150 --seed 3"),
    ("K = 150, `--epochs 10`", f"{VT} --robust-budget 150 --epochs 10"),
    ("`--robust-budget 100`", f"{VT} --robust-budget 100"),
    ("`--robust-budget 300`", f"{VT} --robust-budget 300"),
    ("K = 150, `--pos-weight 1`", f"{VT} --robust-budget 150 --pos-weight 1"),
    ("K = 150, `--weight-decay 1e-3`", f"{VT} --robust-budget 150 --weight-decay 1e-3"),
    ("K = 150, `--weight-decay 1e-2`", f"{VT} --robust-budget 150 --weight-decay 1e-2"),
    ("K = 150, `--weight-decay 3e-2`", f"{VT} --robust-budget 150 --weight-decay 3e-2"),
    ("K = 150, L2 1e-2, `--pos-weight 10`", f"{VT} --robust-budget 150 --weight-decay 1e-2 --pos-weight 10"),
    ("K = 200, L2 1e-2", f"{VT} --robust-budget 200 --weight-decay 1e-2"),
    ("K = 150, L2 1e-2, `--epochs 40`", f"{VT} --robust-budget 150 --weight-decay 1e-2 --epochs 40"),
    ("K = 150, L2 3e-2, `--epochs 40`", f"{VT} --robust-budget 150 --weight-decay 3e-2 --epochs 40"),
    ("K = 150, L2 1e-2, `--epochs 80`", f"{VT} --robust-budget 150 --weight-decay 1e-2 --epochs 80"),
    ("linear (the demo's)", LIN),
    ("linear, L2 1e-2", f"{LIN} --weight-decay 1e-2"),
    ("linear, L2 1e-2, 40 epochs", f"{LIN} --weight-decay 1e-2 --epochs 40"),
    ("linear, L2 1e-2, 40 epochs, `w = 1`", f"{LIN} --weight-decay 1e-2 --epochs 40 --robust-weight 1"),
    ("linear, L2 1e-2, 80 epochs", f"{LIN} --weight-decay 1e-2 --epochs 80"),
    # Several budgets at once, per-row budgets, pos_weight with the bound.
    ("several budgets 20,50,150", f"{VT} --robust-budget 20,50,150"),
    ("20,50,150, `--seed 1`", f"{VT} --robust-budget 20,50,150 --seed 1"),
    ("20,50,150, `--seed 2`", f"{VT} --robust-budget 20,50,150 --seed 2"),
    ("20,50,150, `--seed 3`", f"{VT} --robust-budget 20,50,150 --seed 3"),
    ("50,150", f"{VT} --robust-budget 50,150"),
    ("20,150", f"{VT} --robust-budget 20,150"),
    ("20,50,100", f"{VT} --robust-budget 20,50,100"),
    ("5,20,50,150", f"{VT} --robust-budget 5,20,50,150"),
    ("150,300", f"{VT} --robust-budget 150,300"),
    ("50,150,300", f"{VT} --robust-budget 50,150,300"),
    ("20,50,150,300", f"{VT} --robust-budget 20,50,150,300"),
    ("K = 150, per-row `--robust-length 216`", f"{VT} --robust-budget 150 --robust-length 216"),
    ("20,50,150, `--robust-length 216`", f"{VT} --robust-budget 20,50,150 --robust-length 216"),
    ("K = 150, `--pos-weight 10`", f"{VT} --robust-budget 150 --pos-weight 10"),
    ("20,50,150, `--pos-weight 10`", f"{VT} --robust-budget 20,50,150 --pos-weight 10"),
]
VT_BUDGETS = "5,20,50,100,150"


def run(args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, **kw)


def measure(train, test, extra, label_args, out):
    model = os.path.join(out, "m.safetensors")
    args = ["train", "--data", train, "--out", model, "-q", *label_args, *shlex.split(extra)]
    t0 = time.time()
    r = run(args)
    seconds = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"train {extra} failed: {r.stderr}")
    e = json.loads(run(["eval", "--model", model, "--data", test, "--json", *label_args]).stdout)
    cert = run(["certify", "--model", model]).returncode == 0
    return e, seconds, cert, model


def row(name, extra, e, seconds, cert):
    cmd = f"`{extra}`" if extra else "(defaults)"
    return (f"| {name} | {cmd} | {e['auc']:.4f} | {e['accuracy']:.3f} | "
            f"{e['tpr_at_fpr_1pct']:.3f} | {seconds:.1f} | {'yes' if cert else 'no'} |")


def featurize(out, min_df=2, prefix="b"):
    tr, te = os.path.join(out, f"{prefix}-train.svm"), os.path.join(out, f"{prefix}-test.svm")
    c = lambda n: f"{SA}/{n}.tar.gz"
    r = run(["featurize", "text", "-q", "--class", f"spam={c('spam-1')}", "--class",
             f"ham={c('easy-ham-1')}", "--class", f"ham={c('hard-ham-1')}", "--header-tokens",
             "--url-hosts", "--raw-headers", "--min-df", str(min_df), "--out", tr])
    r2 = run(["featurize", "text", "-q", "--class", f"spam={c('spam-2')}", "--class",
              f"ham={c('easy-ham-2')}", "--vocab", tr + ".featurizer.json", "--out", te])
    if r.returncode or r2.returncode:
        sys.exit(r.stderr + r2.stderr)
    return tr, te


def auc(scores, labels):
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            j += 1
        for k in range(i, j):
            ranks[order[k]] = (i + j + 1) / 2
        i = j
    pos = sum(labels)
    neg = len(labels) - pos
    return (sum(r for r, y in zip(ranks, labels) if y) - pos * (pos + 1) / 2) / (pos * neg)


def logits(model, data, label_args):
    out = run(["predict", "--model", model, "--data", data, *label_args]).stdout.splitlines()[1:]
    return [float(l.split(",")[1]) for l in out]


def spamassassin(out):
    print("\n## SpamAssassin (train *-1, test *-2; features: the demo's, 34,218)\n")
    print("| variant | `nonneg train --data b-train.svm` + | ROC AUC | acc. | TPR@1%FPR | train s | certified |")
    print("|---|---|---|---|---|---|---|")
    tr, te = featurize(out)
    for name, extra in SA_ROWS:
        e, s, c, _ = measure(tr, te, extra, [], out)
        print(row(name, extra, e, s, c), flush=True)
    for min_df in (1, 5):
        tr2, te2 = featurize(out, min_df, f"df{min_df}")
        e, s, c, _ = measure(tr2, te2, MONO, [], out)
        print(row(f"default, vocabulary `--min-df {min_df}` (featurizer)", MONO, e, s, c), flush=True)
    # Ensembles: the mean and the max of the logits of 5 default models (seeds 0-4); a sum
    # or max of monotone models is monotone.
    labels = [int(float(l.split()[0])) for l in open(te)]
    all_logits = []
    for seed in range(5):
        _, _, _, model = measure(tr, te, f"{MONO} --seed {seed}", [], out)
        all_logits.append(logits(model, te, []))
    mean = [sum(v) / len(v) for v in zip(*all_logits)]
    mx = [max(v) for v in zip(*all_logits)]
    print(f"| ensemble: mean logit of the default, seeds 0-4 | (script) | {auc(mean, labels):.4f} | | | | yes |")
    print(f"| ensemble: max logit of the default, seeds 0-4 | (script) | {auc(mx, labels):.4f} | | | | yes |")


def spambase(out):
    print("\n## Spambase (80/20 stratified, seed 0)\n")
    print("| variant | `nonneg train --data sb-train.csv --label-column type --positive spam` + | ROC AUC | acc. | TPR@1%FPR | train s | certified |")
    print("|---|---|---|---|---|---|---|")
    tr, te = os.path.join(out, "sb-train.csv"), os.path.join(out, "sb-test.csv")
    r = run(["split", "-q", "--data", os.path.join(ROOT, "data", "spambase.csv"), *SB_LABEL,
             "--test-fraction", "0.2", "--seed", "0", "--train-out", tr, "--test-out", te])
    if r.returncode:
        sys.exit(r.stderr)
    for name, extra in SB_ROWS:
        e, s, c, _ = measure(tr, te, extra, SB_LABEL, out)
        print(row(name, extra, e, s, c), flush=True)


def temporal_split(train, out):
    """The last 25% of each class block of `train` (featurize writes the classes in the order
    given, each in archive order: spam-1, easy-ham-1, hard-ham-1) held out for validation."""
    lines = open(train).read().splitlines(keepends=True)
    blocks = [(0, 500), (500, 3000), (3000, 3250)]
    if len(lines) != blocks[-1][1]:
        sys.exit(f"{train}: expected {blocks[-1][1]} rows, got {len(lines)}")
    held = {i for a, b in blocks for i in range(b - (b - a) // 4, b)}
    paths = [os.path.join(out, f"vt-{n}.svm") for n in ("train", "valid")]
    spec = json.load(open(train + ".featurizer.json"))
    spec.pop("data_fingerprint", None)  # the sidecar describes the rows' features, not this file
    for path, keep in zip(paths, (False, True)):
        with open(path, "w") as f:
            f.writelines(l for i, l in enumerate(lines) if (i in held) == keep)
        json.dump(spec, open(path + ".featurizer.json", "w"))
    return paths


def verified(out):
    print("\n## Verified training, temporal validation split (last 25% of each `*-1` class)\n")
    print(f"| training | clean | {' | '.join('cert. ' + b for b in VT_BUDGETS.split(','))} | train s |")
    print("|---" * (3 + len(VT_BUDGETS.split(","))) + "|")
    tr, va = temporal_split(featurize(out)[0], out)
    example = os.path.join(ROOT, "target", "release", "examples", "verified_training")
    for i, (name, extra) in enumerate(VT_ROWS):
        model = os.path.join(out, f"vt-{i}.safetensors")
        t0 = time.time()
        r = run(["train", "-q", "--data", tr, "--out", model, *shlex.split(extra)])
        seconds = time.time() - t0
        if r.returncode:
            sys.exit(f"train {extra} failed: {r.stderr}")
        r = subprocess.run([example, "--model", model, "--data", va, "--budgets", VT_BUDGETS],
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"certify {extra} failed: {r.stderr}")
        e = json.loads(r.stdout)
        cert = " | ".join(f"{100 * e['certified'][b]['tpr']:.1f}" for b in VT_BUDGETS.split(","))
        print(f"| {name}: `{extra}` | {100 * e['clean_tpr']:.1f} | {cert} | {seconds:.0f} |", flush=True)


def read_model(path):
    """A nonneg .safetensors file: its f32 tensors (flat, with shapes) and metadata."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {t['dtype']}, not F32")
        a, b = t["data_offsets"]
        values = array("f", raw[8 + n + a:8 + n + b])
        if sys.byteorder != "little":
            values.byteswap()
        tensors[name] = (t["shape"], values)
    return tensors, meta


def write_model(path, tensors, meta):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        values = array("f", values)
        if sys.byteorder != "little":
            values.byteswap()
        blob = values.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    header["__metadata__"] = meta
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def merge(out, paths):
    """The mean-logit ensemble of one-hidden-layer models as one model (module docstring).
    Tensors are stored [out, in]: layer 0's rows and layer 1's columns are concatenated."""
    models = [read_model(p) for p in paths]
    tensors, meta = dict(models[0][0]), dict(models[0][1])
    spec = json.loads(meta["nonneg"])
    for p, (t, m) in zip(paths, models):
        s = json.loads(m["nonneg"])
        if len(s["layers"]) != 2 or s["n_labels"] != 1 or s.get("skip") or s["input_dim"] != spec["input_dim"]:
            sys.exit(f"{p}: --merge takes models with one hidden layer, one label, no skip connection and the same input")
    k = len(models)
    w1 = [t["layers.0.weight"] for t, _ in models]
    tensors["layers.0.weight"] = ([sum(s[0] for s, _ in w1), w1[0][0][1]], array("f", b"".join(v.tobytes() for _, v in w1)))
    tensors["layers.0.bias"] = ([sum(t["layers.0.bias"][0][0] for t, _ in models)],
                                array("f", b"".join(t["layers.0.bias"][1].tobytes() for t, _ in models)))
    w2 = array("f", [x / k for t, _ in models for x in t["layers.1.weight"][1]])
    tensors["layers.1.weight"] = ([1, len(w2)], w2)
    tensors["layers.1.bias"] = ([1], array("f", [sum(t["layers.1.bias"][1][0] for t, _ in models) / k]))
    spec["layers"][0]["out"] = len(w2)
    spec["layers"][1]["in"] = len(w2)
    meta["nonneg"] = json.dumps(spec)
    write_model(out, tensors, meta)
    print(f"wrote {out}: the mean of {k} models, {len(w2)} hidden units")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=["sa", "sb", "vt"])
    p.add_argument("--merge", nargs="+", metavar=("OUT", "MODEL"),
                   help="write the mean-logit ensemble of the MODELs to OUT and stop")
    p.add_argument("--out", default=os.path.join(ROOT, "out", "certified-accuracy"))
    a = p.parse_args()
    if a.merge:
        if len(a.merge) < 3:
            sys.exit("--merge needs OUT and at least two models")
        return merge(a.merge[0], a.merge[1:])
    os.makedirs(a.out, exist_ok=True)
    if a.only == "vt":
        return verified(a.out)
    if a.only != "sb":
        spamassassin(a.out)
    if a.only != "sa":
        spambase(a.out)


if __name__ == "__main__":
    main()
