#!/usr/bin/env python3
"""Loads a nonneg model with Python's `safetensors` package into an equivalent
torch.nn.Sequential (plus a bias-free Linear for the skip connection, when the model has
one: logit = Sequential(x) + skip(x)) and compares its logits with `nonneg predict` on a
CSV.

    .venv/bin/pip install torch safetensors
    .venv/bin/python scripts/check_torch_load.py MODEL.safetensors DATA.csv [--label-column C --positive V]
"""
import csv
import json
import subprocess
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

class Mixed(torch.nn.Module):
    """nonneg's `mixed` units: relu, min(z, 0), clamp(z, -1, 1) by unit index mod 3."""

    def forward(self, z):
        kind = torch.arange(z.shape[-1]) % 3
        return torch.where(kind == 0, z.clamp(min=0),
                           torch.where(kind == 1, z.clamp(max=0), z.clamp(-1, 1)))


ACTS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
        "softplus": torch.nn.Softplus, "leaky_relu": torch.nn.LeakyReLU, "mixed": Mixed}


def sequential(path):
    t = load_file(path)
    meta = json.loads(safe_open(path, "pt").metadata()["nonneg"])
    layers = []
    for i, l in enumerate(meta["layers"]):
        lin = torch.nn.Linear(l["in"], l["out"])
        lin.load_state_dict({"weight": t[f"layers.{i}.weight"], "bias": t[f"layers.{i}.bias"]})
        layers.append(lin)
        if l["activation"] != "identity":
            layers.append(ACTS[l["activation"]]())
    seq = torch.nn.Sequential(*layers)
    if meta.get("skip") is None:
        return seq, meta
    skip = torch.nn.Linear(meta["input_dim"], meta["n_labels"], bias=False)
    skip.load_state_dict({"weight": t["skip.weight"]})
    return (lambda x: seq(x) + skip(x)), meta


def main():
    model, data, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    net, meta = sequential(model)
    rows = list(csv.reader(open(data)))
    header, body = rows[0], rows[1:]
    names = meta["feature_names"]
    cols = [header.index(n) for n in names]
    x = torch.tensor([[float(r[c]) for c in cols] for r in body])
    sc = meta["scaler"]
    if sc["kind"] in ("log1p", "log1p_standard"):
        x = torch.sign(x) * torch.log1p(x.abs())
    if "mult" in sc:
        x = (x - torch.tensor(sc["shift"])) * torch.tensor(sc["mult"])
    ours = net(x).detach()[:, 0]
    out = subprocess.run(["target/release/nonneg", "predict", "--model", model, "--data", data, *extra],
                         check=True, capture_output=True, text=True).stdout.splitlines()[1:]
    theirs = torch.tensor([float(l.split(",")[1]) for l in out])
    diff = (ours - theirs).abs().max().item()
    print(f"{len(body)} rows, max |torch - nonneg| logit difference {diff:.2e}")
    sys.exit(0 if diff < 1e-4 else 1)


if __name__ == "__main__":
    main()
