#!/usr/bin/env python3
"""Independent numpy re-implementation of the parity fixtures (no torch).

Replays every tests/fixtures/parity/<case>.json from its "init" with plain
numpy (forward, hand-written backward, optimizer, Keras constraints) and
reports how far the free-running replay drifts from torch's recorded
trajectory.  This is the same thing the Rust parity tests do, so it both
validates the semantics documented in make_parity_fixtures.py and shows what
tolerance a non-torch implementation can reach.

  python3 scripts/check_parity_fixtures.py            # float32 replay
  python3 scripts/check_parity_fixtures.py --f64      # float64 replay

Also re-checks constraints.json.  Exit status 1 if anything exceeds the
tolerance |a - b| <= rtol * max(|a|, |b|) + atol  (defaults 1e-5, 1e-6).
"""

import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(REPO, "tests", "fixtures", "parity")
EPS = 1e-7


def constrain(w, spec, dt):
    """w in Keras layout ([in, out] or 1-D)."""
    name = spec["name"]
    if name == "non_neg":
        return np.maximum(w, dt(0))
    norms = np.sqrt(np.sum(w * w, axis=spec["axis"], keepdims=True))
    eps = dt(EPS)
    if name == "max_norm":
        desired = np.clip(norms, dt(0), dt(spec["max_value"]))
        return w * (desired / (eps + norms))
    if name == "unit_norm":
        return w / (eps + norms)
    if name == "min_max_norm":
        r = dt(spec["rate"])
        desired = r * np.clip(norms, dt(spec["min_value"]), dt(spec["max_value"])) + (dt(1) - r) * norms
        return w * (desired / (eps + norms))
    raise ValueError(name)


def act(z, a):
    if a == "relu":
        return np.maximum(z, 0)
    if a == "tanh":
        return np.tanh(z)
    return z


def dact(z, h, a):
    if a == "relu":
        return (z > 0).astype(z.dtype)
    if a == "tanh":
        return 1 - h * h
    return np.ones_like(z)


def loss_and_grads(params, layers, x, y, pw):
    hs, zs = [x], []
    h = x
    for p, l in zip(params, layers):
        z = h @ p["weight"].T + p["bias"]
        h = act(z, l["activation"])
        zs.append(z)
        hs.append(h)
    z = hs[-1]
    # BCEWithLogits with pos_weight, torch's stable form:
    # l = (1-y) z + (1 + (pw-1) y) (log1p(exp(-|z|)) + max(-z, 0))
    lw = 1 + (pw - 1) * y
    l = (1 - y) * z + lw * (np.log1p(np.exp(-np.abs(z))) + np.maximum(-z, 0))
    n = z.size
    loss = l.sum() / n
    sig = 1 / (1 + np.exp(-z))
    # dl/dz = -pw*y*(1-sig) + (1-y)*sig
    g = (-pw * y * (1 - sig) + (1 - y) * sig) / n
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        g = g * dact(zs[i], hs[i + 1], layers[i]["activation"])
        grads[i] = {"weight": g.T @ hs[i], "bias": g.sum(axis=0)}
        g = g @ params[i]["weight"]
    return loss, grads


def replay(d, dt):
    o = d["optimizer"]
    layers = d["layers"]
    x = np.array(d["x"], dt)
    y = np.array(d["y"], dt)
    pw = np.array(d["pos_weight"], dt)
    params = [{k: np.array(v, dt) for k, v in p.items()} for p in d["init"]]
    state = [{k: {} for k in p} for p in params]
    lr, wd = o["lr"], o["weight_decay"]
    b1, b2, oeps = o["beta1"], o["beta2"], o["eps"]
    out = []
    for t in range(1, len(d["steps"]) + 1):
        loss, grads = loss_and_grads(params, layers, x, y, pw)
        for li, p in enumerate(params):
            for k in ("weight", "bias"):
                w, g, st = p[k], grads[li][k], state[li][k]
                if o["name"] == "sgd":
                    if wd:
                        g = g + dt(wd) * w
                    if o["momentum"]:
                        if "buf" not in st:
                            st["buf"] = g.copy()
                        else:
                            st["buf"] = dt(o["momentum"]) * st["buf"] + g
                        g = g + dt(o["momentum"]) * st["buf"] if o["nesterov"] else st["buf"]
                    w = w - dt(lr) * g
                else:
                    if o["name"] == "adamw":
                        w = w * dt(1 - lr * wd)
                    elif wd:
                        g = g + dt(wd) * w
                    m = st.get("m", np.zeros_like(w))
                    v = st.get("v", np.zeros_like(w))
                    m = m + dt(1 - b1) * (g - m)
                    v = dt(b2) * v + dt(1 - b2) * g * g
                    st["m"], st["v"] = m, v
                    bc1 = 1 - b1 ** t
                    bc2 = 1 - b2 ** t
                    denom = np.sqrt(v) / dt(np.sqrt(bc2)) + dt(oeps)
                    w = w - dt(lr / bc1) * (m / denom)
                p[k] = w.astype(dt)
        for li, p in enumerate(params):
            for spec in d["constraints"]["kernel"][li]:
                p["weight"] = constrain(p["weight"].T, spec, dt).T.copy()
            for spec in d["constraints"]["bias"][li]:
                p["bias"] = constrain(p["bias"], spec, dt)
        out.append((float(loss), [{k: v.copy() for k, v in p.items()} for p in params]))
    return out


def err(a, b, atol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.maximum(np.abs(a), np.abs(b)) + atol / 1e-5
    num = np.abs(a - b)
    return float(np.max(np.where(num == 0, 0.0, num / np.where(den == 0, 1.0, den))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--f64", action="store_true")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-6)
    a = ap.parse_args()
    dt = np.float64 if a.f64 else np.float32
    ok = True
    for case in ("sgd_momentum", "sgd_nesterov", "adam", "adamw"):
        d = json.load(open(os.path.join(FIX, case + ".json")))
        worst = 0.0
        worst_pure_rel = 0.0
        for (loss, params), ref in zip(replay(d, dt), d["steps"]):
            # normalised error: |a-b| / (max(|a|,|b|) + atol/rtol), compared with rtol
            worst = max(worst, err(loss, ref["loss"], a.atol))
            for p, rp in zip(params, ref["params"]):
                for k in ("weight", "bias"):
                    worst = max(worst, err(p[k], rp[k], a.atol))
                    worst_pure_rel = max(worst_pure_rel, err(p[k], rp[k], 0.0))
        good = worst <= a.rtol
        ok &= good
        print(f"{case:13s} max |a-b|/(max(|a|,|b|)+atol/rtol) = {worst:.3g}  "
              f"(pure relative {worst_pure_rel:.3g})  {'OK' if good else 'FAIL'}")
    c = json.load(open(os.path.join(FIX, "constraints.json")))
    worst = 0.0
    for case in c["cases"]:
        w = np.array(case["input"], dt)
        worst = max(worst, err(constrain(w, case["constraint"], dt), case["output"], 1e-12))
    ok &= worst <= a.rtol
    print(f"constraints   max rel err {worst:.3g}  {'OK' if worst <= a.rtol else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
