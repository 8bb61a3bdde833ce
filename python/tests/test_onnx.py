"""`nonneg export --onnx` run in ONNX Runtime: its logits equal `nonneg predict`'s on the
Spambase and SpamAssassin test sets, for unconstrained, monotone (tanh + skip) and
mixed-activation models; multi-label models give one logit per label.

The `nonneg` binary is $NONNEG_BIN, else target/release/nonneg in this checkout.
"""

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("NONNEG_BIN", str(ROOT / "target" / "release" / "nonneg"))
SPAMBASE_LABEL = ["--label-column", "type", "--positive", "spam"]
SA = ROOT / "data" / "spamassassin"

# The models compared: train options, and what `inspect` must show for them.
KINDS = {
    "unconstrained": ([], "relu", False),
    "monotone": (["--constraint", "monotone"], "tanh", True),
    "mixed": (["--constraint", "monotone", "--activation", "mixed"], "mixed", True),
}


def nonneg(*args):
    out = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, f"nonneg {args} failed:\n{out.stderr}"
    return out.stdout


def read_svmlight(path, width):
    """Dense rows of an svmlight file, index base as `nonneg` reads it (auto: 1-based
    unless a 0 appears)."""
    rows = [line.split()[1:] for line in Path(path).read_text().splitlines()]
    pairs = [[(int(j), float(v)) for j, v in (t.split(":") for t in r)] for r in rows]
    base = 0 if any(j == 0 for r in pairs for j, _ in r) else 1
    x = np.zeros((len(rows), width), dtype=np.float32)
    for i, r in enumerate(pairs):
        for j, v in r:
            x[i, j - base] = v
    return x


def read_csv(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    cols = [c for c in rows[0] if c != "type"]
    return np.array([[float(r[c]) for c in cols] for r in rows], dtype=np.float32)


@pytest.fixture(scope="module")
def spambase(tmp_path_factory):
    d = tmp_path_factory.mktemp("spambase")
    train, test = d / "train.csv", d / "test.csv"
    nonneg("split", "--data", ROOT / "data" / "spambase.csv", *SPAMBASE_LABEL,
           "--test-fraction", "0.2", "--seed", "0", "--train-out", train, "--test-out", test, "-q")
    return d, ["--data", train, *SPAMBASE_LABEL], ["--data", test, *SPAMBASE_LABEL], read_csv(test)


@pytest.fixture(scope="module")
def spamassassin(tmp_path_factory):
    """The README quick start's split: vocabulary and training on the `*-1` collections,
    test on the `*-2` ones."""
    d = tmp_path_factory.mktemp("spamassassin")
    train, test = d / "train.svm", d / "test.svm"
    nonneg("featurize", "text", "--class", f"spam={SA}/spam-1.tar.gz",
           "--class", f"ham={SA}/easy-ham-1.tar.gz", "--class", f"ham={SA}/hard-ham-1.tar.gz",
           "--header-tokens", "--url-hosts", "--raw-headers", "--out", train, "-q")
    nonneg("featurize", "text", "--class", f"spam={SA}/spam-2.tar.gz",
           "--class", f"ham={SA}/easy-ham-2.tar.gz", "--vocab", f"{train}.featurizer.json",
           "--out", test, "-q")
    return d, ["--data", train], ["--data", test], None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dataset", ["spambase", "spamassassin"])
def test_onnx_runtime_logits_equal_nonneg_predict(dataset, kind, request):
    d, train, test, x = request.getfixturevalue(dataset)
    options, activation, skip = KINDS[kind]
    model, onnx = d / f"{kind}.safetensors", d / f"{kind}.onnx"
    nonneg("train", *train, "--out", model, *options, "-q")
    info = json.loads(nonneg("inspect", "--model", model, "--json"))
    assert [l["activation"] for l in info["layers"][:-1]] == [activation] * 2
    assert (info["skip"] is not None) == skip
    nonneg("export", "--model", model, "--onnx", onnx, "-q")
    # score, logit, label (then the class name, for models that know their classes)
    predicted = np.loadtxt(nonneg("predict", "--model", model, *test).splitlines()[1:],
                           delimiter=",", ndmin=2, usecols=(0, 1, 2))

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["logit", "score"]
    if x is None:  # sparse: dense rows of the vocabulary's width
        x = read_svmlight(test[1], session.get_inputs()[0].shape[1])
    logit, score = session.run(None, {"features": x})
    assert logit.shape == score.shape == (len(predicted), 1)
    want = predicted[:, 1]
    diff = np.abs(logit[:, 0] - want)
    print(f"{dataset} {kind}: max |logit diff| {diff.max():.3g} (largest |logit| {np.abs(want).max():.3g})")
    assert diff.max() <= 1e-5
    assert np.abs(score[:, 0] - predicted[:, 0]).max() <= 1e-6
    assert want.std() > 0.1, "a model that scores every row alike proves nothing"


@pytest.mark.parametrize("constraint", [[], ["--constraint", "monotone"]])
def test_quantile_scaling_exports_the_same_logits(spambase, constraint):
    """The quantile transform in the graph; rows beyond the training range (scaled up a
    thousandfold, negative) take the end levels as in `nonneg predict`."""
    d, train, test, x = spambase
    model, onnx = d / "quantile.safetensors", d / "quantile.onnx"
    nonneg("train", *train, "--out", model, "--scale", "quantile", *constraint, "-q")
    assert json.loads(nonneg("inspect", "--model", model, "--json"))["scaler"] == "quantile"
    nonneg("export", "--model", model, "--onnx", onnx, "-q")
    wide = np.concatenate([x, x[:50] * 1000.0, -x[:50] - 1.0]).astype(np.float32)
    rows = d / "quantile-rows.csv"
    with open(rows, "w") as f:
        cols = [c for c in csv.DictReader(open(test[1])).fieldnames if c != "type"]
        f.write(",".join(cols) + "\n")
        f.writelines(",".join(f"{v:.9g}" for v in r) + "\n" for r in wide)
    want = np.loadtxt(nonneg("predict", "--model", model, "--data", rows).splitlines()[1:],
                      delimiter=",", ndmin=2, usecols=(1,))[:, 0]
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    logit, _ = session.run(None, {"features": wide})
    worst = (np.abs(logit[:, 0] - want) / np.maximum(1.0, np.abs(want))).max()
    assert worst <= 1e-5, worst
    assert want.std() > 0.1


def test_multi_label_models_export_one_logit_per_label(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.exponential(1.0, size=(400, 12)).astype(np.float32)
    y = [[k for k in range(3) if r[k] + r[k + 3] > 2.0] for r in x]
    lines = [",".join(map(str, ys)) + " " + " ".join(f"{j + 1}:{v}" for j, v in enumerate(r))
             for ys, r in zip(y, x)]
    data = tmp_path / "multi.svm"
    data.write_text("\n".join(lines) + "\n")
    model, onnx = tmp_path / "m.safetensors", tmp_path / "m.onnx"
    nonneg("train", "--data", data, "--multilabel", "--out", model, "--constraint", "monotone",
           "--hidden", "8", "-q")
    nonneg("export", "--model", model, "--onnx", onnx, "-q")
    predicted = np.loadtxt(nonneg("predict", "--model", model, "--data", data, "--multilabel")
                           .splitlines()[1:], delimiter=",")
    want = predicted[:, 1::3]  # score_k, logit_k, label_k per label
    logit, _ = ort.InferenceSession(str(onnx)).run(None, {"features": x})
    assert logit.shape == want.shape == (400, 3)
    assert np.abs(logit - want).max() <= 1e-5
    assert want.std(axis=0).min() > 0.1
