#!/usr/bin/env python3
"""Generate PyTorch parity fixtures for the `nonneg` Rust crate.

Writes (relative to the repository root):
  tests/fixtures/parity/sgd_momentum.json
  tests/fixtures/parity/sgd_nesterov.json
  tests/fixtures/parity/adam.json
  tests/fixtures/parity/adamw.json
  tests/fixtures/parity/constraints.json

Run with the project venv (torch on CPU):
  .venv/bin/python scripts/make_parity_fixtures.py

Everything is float32 and deterministic (torch.manual_seed(0) before each case,
fixed data generated from that same seeded stream, single-tensor optimizer
implementations via foreach=False, single intra-op thread).

Training cases
--------------
Model: Linear(6,5) -> relu -> Linear(5,4) -> tanh -> Linear(4,2) (identity);
two labels (multi-label).  Loss: BCEWithLogitsLoss(pos_weight=[1.0, 2.5]),
reduction="mean" (mean over all 24*2 elements).  Each of 20 full-batch steps:
  zero_grad; loss = loss_fn(model(x), y); loss.backward(); opt.step();
  with no_grad: apply the constraints below to the parameters in place.
"steps[i].loss" is the loss of step i's forward pass (before its update);
"steps[i].params" are the parameters after step i's update AND constraints;
"steps[i].grads" (extra, for debugging) are the raw loss gradients of step i
(before weight decay / momentum), torch layout.
"init" is torch's default Linear init right after torch.manual_seed(0); it is
NOT projected by the constraints.

All weights are in torch layout [out][in].  Keras kernels are [in, out], so a
Keras `axis=0` MaxNorm (norm over the inputs of each output unit) is the torch
`dim=1` norm.

Constraints (per layer):
  kernel 0: NonNeg
  kernel 1: NonNeg, then MaxNorm(max_value=0.5, axis=0)
  kernel 2: NonNeg
  bias 0:   MaxNorm(max_value=0.3, axis=0)  (1-D: norm of the whole vector)
(The brief suggested 0.8 / 0.5; with those the kernel-1 MaxNorm never binds
and the bias-0 one binds only at step 1, so the values were lowered so that
both projections are actually exercised: kernel 1 has rows clipped at 0.5 and
bias 0 is clipped for most of the run, and for adam it drops below 0.3 late.)
  bias 1,2: none

Optimizer semantics (torch 2.x, single-tensor path, foreach=False), per param p
with gradient g, step t = 1, 2, ...:
  SGD:   g += wd * p
         buf = g (t == 1) else momentum * buf + g          (dampening = 0)
         g = g + momentum * buf if nesterov else buf        (only if momentum != 0)
         p -= lr * g
  Adam:  g += wd * p                                        (coupled L2)
         m = m + (1 - b1) * (g - m)          (torch uses lerp_(g, 1 - b1))
         v = b2 * v + (1 - b2) * g * g
         bc1 = 1 - b1**t ; bc2 = 1 - b2**t                  (python float64)
         denom = sqrt(v) / sqrt(bc2) + eps
         p -= (lr / bc1) * m / denom
  AdamW: p *= (1 - lr * wd)  first, then Adam as above without the L2 term.
"""

import json
import math
import os
import sys

import numpy as np
import torch

# --------------------------------------------------------------------------
# Keras 3 constraint formulas, from keras/src/constraints/constraints.py
# (keras-team/keras, commit 029b19382ce89434655e2bafb47be7106494e312):
#
#   MaxNorm.__call__:
#       norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
#       desired = ops.clip(norms, 0, self.max_value)
#       return ops.cast(w, norms.dtype) * (desired / (backend.epsilon() + norms))
#
#   NonNeg.__call__:
#       return ops.maximum(w, 0)
#   (tf.keras 2 wrote `w * cast(greater_equal(w, 0.), w.dtype)`; identical
#    values except for the sign of zero: the old form maps negatives to -0.0.
#    We follow Keras 3 and use maximum(w, 0).)
#
#   UnitNorm.__call__:
#       norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
#       return ops.cast(w, norms.dtype) / (backend.epsilon() + norms)
#
#   MinMaxNorm.__call__:
#       norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
#       desired = (self.rate * ops.clip(norms, self.min_value, self.max_value)
#                  + (1 - self.rate) * norms)
#       return ops.cast(w, norms.dtype) * (desired / (backend.epsilon() + norms))
#
# backend.epsilon() defaults to 1e-7 (a Python float; added to a float32 tensor
# it is rounded to float32).  Epsilon is only ever added to the norms in the
# denominator; it is never inside the sqrt.
# --------------------------------------------------------------------------
EPS = 1e-7

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "tests", "fixtures", "parity")

N_ROWS = 24
N_STEPS = 20
LAYERS = [(6, 5, "relu"), (5, 4, "tanh"), (4, 2, "identity")]
POS_WEIGHT = [1.0, 2.5]

KERNEL_CONSTRAINTS = [
    [{"name": "non_neg"}],
    [{"name": "non_neg"}, {"name": "max_norm", "max_value": 0.5, "axis": 0}],
    [{"name": "non_neg"}],
]
BIAS_CONSTRAINTS = [
    [{"name": "max_norm", "max_value": 0.3, "axis": 0}],
    [],
    [],
]

CASES = {
    "sgd_momentum": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": False,
                     "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
    "sgd_nesterov": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                     "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adam": {"name": "adam", "lr": 0.01, "momentum": 0.0, "nesterov": False,
             "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
    "adamw": {"name": "adamw", "lr": 0.01, "momentum": 0.0, "nesterov": False,
              "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
}


# ------------------------------ constraints -------------------------------
# All functions below take a float32 torch tensor in KERAS layout (kernel
# [in, out], or a 1-D vector) and return a new float32 tensor.

def _norms(w, axis):
    return torch.sqrt(torch.sum(w * w, dim=axis, keepdim=True))


def keras_non_neg(w):
    return torch.maximum(w, torch.zeros((), dtype=w.dtype))


def keras_max_norm(w, max_value, axis):
    norms = _norms(w, axis)
    desired = torch.clamp(norms, 0.0, max_value)
    return w * (desired / (EPS + norms))


def keras_unit_norm(w, axis):
    norms = _norms(w, axis)
    return w / (EPS + norms)


def keras_min_max_norm(w, min_value, max_value, rate, axis):
    norms = _norms(w, axis)
    desired = rate * torch.clamp(norms, min_value, max_value) + (1 - rate) * norms
    return w * (desired / (EPS + norms))


def apply_keras(w, spec):
    name = spec["name"]
    if name == "non_neg":
        return keras_non_neg(w)
    if name == "max_norm":
        return keras_max_norm(w, spec["max_value"], spec["axis"])
    if name == "unit_norm":
        return keras_unit_norm(w, spec["axis"])
    if name == "min_max_norm":
        return keras_min_max_norm(w, spec["min_value"], spec["max_value"],
                                  spec["rate"], spec["axis"])
    raise ValueError(name)


# numpy float64 reference of the same formulas (used only as a cross-check)
def np_apply_keras(w, spec):
    name = spec["name"]
    if name == "non_neg":
        return np.maximum(w, 0.0)
    norms = np.sqrt(np.sum(w * w, axis=spec["axis"], keepdims=True))
    if name == "max_norm":
        desired = np.clip(norms, 0.0, spec["max_value"])
        return w * (desired / (EPS + norms))
    if name == "unit_norm":
        return w / (EPS + norms)
    if name == "min_max_norm":
        r = spec["rate"]
        desired = r * np.clip(norms, spec["min_value"], spec["max_value"]) + (1 - r) * norms
        return w * (desired / (EPS + norms))
    raise ValueError(name)


def apply_to_torch_param(p, specs):
    """Apply Keras constraints to a torch parameter (weight [out, in] or bias)."""
    if not specs:
        return
    w = p.detach().t() if p.dim() == 2 else p.detach()  # to Keras layout (a view)
    for spec in specs:
        w = apply_keras(w, spec)
    if p.dim() == 2:
        w = w.t()
    p.copy_(w)


# ------------------------------ training ----------------------------------

def build_model():
    mods = []
    for (i, o, act) in LAYERS:
        mods.append(torch.nn.Linear(i, o))
        if act == "relu":
            mods.append(torch.nn.ReLU())
        elif act == "tanh":
            mods.append(torch.nn.Tanh())
    return torch.nn.Sequential(*mods)


def linears(model):
    return [m for m in model if isinstance(m, torch.nn.Linear)]


def snapshot(model):
    return [{"weight": l.weight.detach().tolist(), "bias": l.bias.detach().tolist()}
            for l in linears(model)]


def grads_snapshot(model):
    return [{"weight": l.weight.grad.detach().tolist(), "bias": l.bias.grad.detach().tolist()}
            for l in linears(model)]


def make_data():
    x = torch.randn(N_ROWS, 6, dtype=torch.float32)
    while True:
        y = (torch.rand(N_ROWS, 2) < 0.5).to(torch.float32)
        s = y.sum(dim=0)
        if bool(((s > 0) & (s < N_ROWS)).all()):
            return x, y


def make_optimizer(cfg, params):
    name = cfg["name"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                               nesterov=cfg["nesterov"], weight_decay=cfg["weight_decay"],
                               dampening=0.0, foreach=False)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                                eps=cfg["eps"], weight_decay=cfg["weight_decay"],
                                amsgrad=False, foreach=False)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                                 eps=cfg["eps"], weight_decay=cfg["weight_decay"],
                                 amsgrad=False, foreach=False)
    raise ValueError(name)


def run_case(case, cfg):
    torch.manual_seed(0)
    model = build_model()
    init = snapshot(model)
    x, y = make_data()
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(POS_WEIGHT, dtype=torch.float32),
                                         reduction="mean")
    opt = make_optimizer(cfg, model.parameters())
    steps = []
    for _ in range(N_STEPS):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        grads = grads_snapshot(model)
        opt.step()
        with torch.no_grad():
            for li, lin in enumerate(linears(model)):
                apply_to_torch_param(lin.weight, KERNEL_CONSTRAINTS[li])
                apply_to_torch_param(lin.bias, BIAS_CONSTRAINTS[li])
        params = snapshot(model)
        for p in model.parameters():
            if not torch.isfinite(p).all():
                raise RuntimeError(f"{case}: non-finite parameters")
        steps.append({"loss": float(loss.item()), "params": params, "grads": grads})
    return {
        "case": case,
        "torch_version": torch.__version__,
        "optimizer": cfg,
        "layers": [{"in": i, "out": o, "activation": a} for (i, o, a) in LAYERS],
        "constraints": {"kernel": KERNEL_CONSTRAINTS, "bias": BIAS_CONSTRAINTS},
        "pos_weight": POS_WEIGHT,
        "x": x.tolist(),
        "y": y.tolist(),
        "init": init,
        "steps": steps,
    }


# --------------------------- constraint cases ------------------------------

def constraint_cases():
    # Keras layout [in=4, out=3]; column 1 and row 2 are all zero.
    # Column norms (axis 0): 0.3742 (< min 0.5), 0, 2.4942 (> 2.0, > 1.5).
    # Row norms (axis 1): 1.2166, 2.0224, 0, 0.9055.
    mat = [[0.2, 0.0, -1.2],
           [-0.3, 0.0, 2.0],
           [0.0, 0.0, 0.0],
           [0.1, 0.0, 0.9]]
    vec = [0.3, -0.4, 0.0, 1.2]  # norm 1.3
    mat_specs = [
        {"name": "non_neg"},
        {"name": "max_norm", "max_value": 2.0, "axis": 0},
        {"name": "max_norm", "max_value": 2.0, "axis": 1},
        {"name": "min_max_norm", "min_value": 0.5, "max_value": 1.5, "rate": 0.7, "axis": 0},
        {"name": "min_max_norm", "min_value": 0.5, "max_value": 1.5, "rate": 0.7, "axis": 1},
        {"name": "min_max_norm", "min_value": 0.5, "max_value": 1.5, "rate": 1.0, "axis": 0},
        {"name": "unit_norm", "axis": 0},
        {"name": "unit_norm", "axis": 1},
    ]
    vec_specs = [
        {"name": "non_neg"},
        {"name": "max_norm", "max_value": 0.5, "axis": 0},
        {"name": "min_max_norm", "min_value": 0.5, "max_value": 1.0, "rate": 0.7, "axis": 0},
        {"name": "unit_norm", "axis": 0},
    ]
    cases = []
    for inp, specs in ((mat, mat_specs), (vec, vec_specs)):
        t_in = torch.tensor(inp, dtype=torch.float32)
        for spec in specs:
            out32 = apply_keras(t_in, spec)
            ref = np_apply_keras(np.array(t_in.tolist(), dtype=np.float64), spec).astype(np.float32)
            diff = np.abs(out32.numpy() - ref)
            tol = 2e-6 * np.maximum(np.abs(ref), 1e-30) + 1e-12
            if not (diff <= tol).all():
                raise RuntimeError(f"torch/numpy mismatch for {spec}: {diff.max()}")
            cases.append({"constraint": spec, "input": t_in.tolist(), "output": out32.tolist()})
    return {
        "layout": "keras [in, out]; axis=0 normalises each output column",
        "epsilon": EPS,
        "torch_version": torch.__version__,
        "cases": cases,
    }


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    for case, cfg in CASES.items():
        data = run_case(case, cfg)
        p = os.path.join(OUT_DIR, f"{case}.json")
        write_json(p, data)
        losses = [s["loss"] for s in data["steps"]]
        print(f"{case}: loss {losses[0]:.6f} -> {losses[-1]:.6f}  ({p})")
    p = os.path.join(OUT_DIR, "constraints.json")
    write_json(p, constraint_cases())
    print(f"constraints: {p}")


if __name__ == "__main__":
    sys.exit(main())
