#!/usr/bin/env python3
"""Baselines next to nonneg: the same splits, the same features, one table per data set.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements-bench.txt
    cargo build --release
    .venv-bench/bin/python bench/baselines.py [--threads 2] [--only sms,phishing] [--json out.json]

Data sets (all bundled under data/, see data/README.md):
  spamassassin        train spam-1 + easy-ham-1 + hard-ham-1, test spam-2 + easy-ham-2 (temporal);
                      `nonneg featurize text` with its default options (for emails: header
                      tokens, URL hosts, raw headers), vocabulary from train only
  spamassassin-plain  the same with --no-email-defaults (the featurizer's defaults before they
                      were chosen for emails)
  spamassassin-hard   hard ham as unseen test negatives: train spam-1 + easy-ham-1, test spam-2 +
                      easy-ham-2 + hard-ham-1; default featurizer options
  spambase            `nonneg split --seed 0` (stratified 80/20) of data/spambase.csv
  sms                 the SMS Spam Collection, deduplicated, stored pre-split (stratified 80/20,
                      seed 0) as data/sms-spam/*-{train,test}.tar.gz; featurized like spamassassin
  phishing            UCI Website Phishing (data/phishing-websites.csv.gz), `nonneg split --seed 0`;
                      not add-monotone, so its monotone models take each feature's direction from
                      the sign of its correlation with the label on train (nonneg:
                      --feature-directions, LR: bounds, HGB: monotonic_cst of +-1)

Models, each trained on the train file and scored on the test file only:
  sklearn LR          LogisticRegression (liblinear); C in 1e-3..1e3 and class weights (none or
                      'balanced') from 5-fold stratified CV (ROC AUC) on train
  monotone LR         logistic regression with coefficients >= 0 (L-BFGS-B with bounds, same
                      objective as sklearn's), C and class weights chosen by the same CV
  BernoulliNB         default alpha; dense data binarized at 0 (sklearn's default)
  HGB / HGB monotone  HistGradientBoostingClassifier defaults, free and monotonic_cst all +1;
                      on text, the 1,000 features with the best chi-squared score on train (HGB
                      needs dense input and its time grows with the feature count)
  nonneg ...          `nonneg train` defaults, unconstrained and --constraint monotone, each also
                      with --hidden '' (logistic regression) and with --autotune (30 trials on a
                      stratified 20% of train: reproducible); scored by `nonneg predict` (logits)
  nonneg --dropout    spamassassin and sms only: dropout as validation data chose it for the set
                      (DROPOUT_MODELS; docs/baselines.md, "Dropout, chosen on validation data");
                      on spamassassin, spambase and sms also --autotune --autotune-dropout
Dense (CSV) data is standardised for the two logistic regressions (nonneg scales dense data
itself). Metrics: test ROC AUC and TPR at 1% FPR = the highest TPR over ROC points whose FPR on
the test negatives is <= 1% (the rule of `nonneg eval`), the same for every model.
Vendoring the SMS corpus (done once, kept in data/): `baselines.py vendor-sms SMS-SPAM.CSV`.
"""
import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SA = DATA / "spamassassin"
SMS = DATA / "sms-spam"
PLAIN_OPTS = ["--no-email-defaults"]
CS = np.logspace(-3, 3, 7)
HGB_TEXT_FEATURES = 1000


# ---------------------------------------------------------------- metrics

def metrics(y, s):
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return roc_auc_score(y, s), float(tpr[fpr <= 0.01 + 1e-12].max())


# ---------------------------------------------------------------- nonneg

class Nonneg:
    def __init__(self, exe, threads, work):
        self.exe, self.threads, self.work = str(exe), threads, Path(work)

    def __call__(self, *args):
        cmd = [self.exe, *map(str, args), "--threads", str(self.threads), "-q"]
        r = subprocess.run(cmd, cwd=self.work, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
        return r.stdout

    def scores(self, name, train, test, extra, csv_label):
        model = self.work / f"{name}.safetensors"
        self("train", "--data", train, "--out", model, *csv_label, *extra)
        out = self.work / f"{name}.scores.csv"
        self("predict", "--model", model, "--data", test, *csv_label, "--out", out)
        with open(out) as f:
            return np.array([float(r["logit"]) for r in csv.DictReader(f)])


NONNEG_MODELS = [
    ("nonneg default", []),
    ("nonneg --hidden ''", ["--hidden", ""]),
    ("nonneg monotone", ["--constraint", "monotone"]),
    ("nonneg monotone --hidden ''", ["--constraint", "monotone", "--hidden", ""]),
    ("nonneg autotuned", ["--autotune", "--autotune-trials", "30"]),
    ("nonneg monotone autotuned", ["--constraint", "monotone", "--autotune", "--autotune-trials", "30"]),
]
# Dropout as validation data chose it, per data set (docs/baselines.md, "Dropout"): the
# SpamAssassin temporal validation split and 5-fold `nonneg cv` of the sms training file.
# Spambase's folds chose none.
# The search with dropout among its dimensions (off by default: docs/autotune.md).
AUTOTUNE_DROPOUT = ("nonneg autotuned --autotune-dropout",
                    ["--autotune", "--autotune-trials", "30", "--autotune-dropout"])
DROPOUT_MODELS = {
    "spamassassin": [("nonneg --dropout 0.5", ["--dropout", "0.5"]), AUTOTUNE_DROPOUT],
    "spambase": [AUTOTUNE_DROPOUT],
    "sms": [("nonneg --input-dropout 0.2", ["--input-dropout", "0.2"]),
            ("nonneg --hidden '' --input-dropout 0.5", ["--hidden", "", "--input-dropout", "0.5"]),
            AUTOTUNE_DROPOUT],
}


# ---------------------------------------------------------------- data sets

def featurize(nn, name, train_classes, test_classes, opts):
    """Vocabulary from the training samples only; the test set reuses it."""
    tr, te, spec = (nn.work / f"{name}.{s}" for s in ("train.svm", "test.svm", "vocab.json"))
    cls = lambda cs: [a for c in cs for a in ("--class", c)]
    nn("featurize", "text", *cls(train_classes), *opts, "--build-vocab", spec, "--out", tr)
    nn("featurize", "text", *cls(test_classes), "--vocab", spec, "--out", te)
    return tr, te


def load_svm(tr, te):
    from sklearn.datasets import load_svmlight_files

    xtr, ytr, xte, yte = load_svmlight_files([str(tr), str(te)], dtype=np.float64)
    return csr32(xtr), ytr.astype(int), csr32(xte), yte.astype(int)


def csr32(x):
    """liblinear takes 32-bit sparse indices only."""
    x = x.tocsr()
    x.indices, x.indptr = x.indices.astype(np.int32), x.indptr.astype(np.int32)
    return x


def load_csv(path, label, positive):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], rows[1:]
    j = head.index(label)
    y = np.array([int(r[j] == positive) for r in rows])
    x = np.array([[float(v) for i, v in enumerate(r) if i != j] for r in rows])
    return x, y, [h for i, h in enumerate(head) if i != j]


def text_set(nn, name, train_classes, test_classes, opts):
    tr, te = featurize(nn, name, train_classes, test_classes, opts)
    return dict(train=tr, test=te, arrays=load_svm(tr, te), csv_label=[])


def csv_set(nn, name, src, label, positive, learn_directions=False):
    """learn_directions: monotone models follow the sign of each feature's correlation with
    the label on the training data instead of +1 everywhere."""
    tr, te = nn.work / f"{name}.train.csv", nn.work / f"{name}.test.csv"
    lab = ["--label-column", label, "--positive", positive]
    nn("split", "--data", src, *lab, "--seed", "0", "--test-fraction", "0.2",
       "--train-out", tr, "--test-out", te)
    xtr, ytr, names = load_csv(tr, label, positive)
    xte, yte, _ = load_csv(te, label, positive)
    d = dict(train=tr, test=te, arrays=(xtr, ytr, xte, yte), csv_label=lab)
    if learn_directions:
        corr = [np.corrcoef(xtr[:, k], ytr)[0, 1] for k in range(xtr.shape[1])]
        d["directions"] = [1 if r >= 0 else -1 for r in corr]
        d["direction_names"] = names
    return d


def datasets(nn):
    sa_tr = [f"spam={SA}/spam-1.tar.gz", f"ham={SA}/easy-ham-1.tar.gz",
             f"ham={SA}/hard-ham-1.tar.gz"]
    sa_te = [f"spam={SA}/spam-2.tar.gz", f"ham={SA}/easy-ham-2.tar.gz"]
    sms_tr = [f"spam={SMS}/spam-train.tar.gz", f"ham={SMS}/ham-train.tar.gz"]
    sms_te = [f"spam={SMS}/spam-test.tar.gz", f"ham={SMS}/ham-test.tar.gz"]
    return {
        "spamassassin": lambda: text_set(nn, "sa", sa_tr, sa_te, []),
        "spamassassin-plain": lambda: text_set(nn, "sa-plain", sa_tr, sa_te, PLAIN_OPTS),
        "spamassassin-hard": lambda: text_set(nn, "sa-hard", sa_tr[:2], sa_te + sa_tr[2:], []),
        "spambase": lambda: csv_set(nn, "spambase", DATA / "spambase.csv", "type", "spam"),
        "sms": lambda: text_set(nn, "sms", sms_tr, sms_te, []),
        "phishing": lambda: csv_set(nn, "phishing", DATA / "phishing-websites.csv.gz",
                                    "is_phishing", "1", learn_directions=True),
    }


# ---------------------------------------------------------------- scikit-learn baselines

def dense_scaled(xtr, xte):
    from scipy import sparse
    from sklearn.preprocessing import StandardScaler

    if sparse.issparse(xtr):
        return xtr, xte
    sc = StandardScaler().fit(xtr)
    return sc.transform(xtr), sc.transform(xte)


def balanced_weights(y):
    """sklearn's class_weight='balanced': n / (2 * n_class) per sample."""
    return len(y) / (2 * np.bincount(y, minlength=2))[y]


def fit_monotone_lr(x, y, cfg, directions):
    """min C * sum(w_i logloss_i) + |w|^2 / 2 over direction * w >= 0, free bias (as sklearn)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    (c, balanced), d = cfg, x.shape[1]
    sign = 2 * y - 1
    sw = c * (balanced_weights(y) if balanced else np.ones(len(y)))

    def f(p):
        z = sign * (x @ p[:d] + p[d])
        loss = sw @ np.logaddexp(0, -z) + 0.5 * p[:d] @ p[:d]
        g = -sw * sign * expit(-z)
        return loss, np.concatenate([x.T @ g + p[:d], [g.sum()]])

    bounds = [(0, None) if s > 0 else (None, 0) for s in directions] + [(None, None)]
    r = minimize(f, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                 options={"maxiter": 2000})
    return r.x


def cv_config(xtr, ytr, fit_score):
    """(C, balanced class weights) with the best mean 5-fold ROC AUC on the training data."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(xtr, ytr))
    cfgs = [(c, bal) for c in CS for bal in (False, True)]
    aucs = [np.mean([roc_auc_score(ytr[b], fit_score(xtr[a], ytr[a], xtr[b], cfg))
                     for a, b in folds]) for cfg in cfgs]
    return cfgs[int(np.argmax(aucs))]


def cfg_name(cfg):
    return f"C={cfg[0]:g}" + (", balanced" if cfg[1] else "")


def lr_scores(xtr, ytr, xte, cfg):
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=cfg[0], class_weight="balanced" if cfg[1] else None,
                           solver="liblinear", max_iter=5000).fit(xtr, ytr)
    return m.decision_function(xte)


def mono_lr_scores(xtr, ytr, xte, cfg, directions):
    p = fit_monotone_lr(xtr, ytr, cfg, directions)
    return xte @ p[:-1] + p[-1]


def hgb_inputs(xtr, ytr, xte):
    """HGB needs dense input and its time grows with the feature count: on text, keep the
    features with the highest chi-squared score on the training data."""
    from scipy import sparse
    from sklearn.feature_selection import SelectKBest, chi2

    if not sparse.issparse(xtr):
        return xtr, xte
    sel = SelectKBest(chi2, k=min(HGB_TEXT_FEATURES, xtr.shape[1])).fit(xtr, ytr)
    return sel.transform(xtr).toarray(), sel.transform(xte).toarray()


def sklearn_models(xtr, ytr, xte, directions):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.naive_bayes import BernoulliNB

    out = {}
    str_, ste = dense_scaled(xtr, xte)
    cfg = cv_config(str_, ytr, lr_scores)
    out[f"sklearn LR ({cfg_name(cfg)})"] = lr_scores(str_, ytr, ste, cfg)
    mono = lambda a, b, t, c: mono_lr_scores(a, b, t, c, directions)
    cfg = cv_config(str_, ytr, mono)
    out[f"monotone LR ({cfg_name(cfg)})"] = mono(str_, ytr, ste, cfg)
    nb = BernoulliNB().fit(xtr, ytr)
    lp = nb.predict_log_proba(xte)
    out["BernoulliNB"] = lp[:, 1] - lp[:, 0]
    htr, hte = hgb_inputs(xtr, ytr, xte)
    cst = list(directions) if htr.shape[1] == len(directions) else [1] * htr.shape[1]
    for name, cst in [("HGB", None), ("HGB monotone", cst)]:
        m = HistGradientBoostingClassifier(random_state=0, monotonic_cst=cst).fit(htr, ytr)
        out[name] = m.decision_function(hte)
    return out


# ---------------------------------------------------------------- one table per data set

def run_set(nn, name, make):
    t0 = time.time()
    d = make()
    xtr, ytr, xte, yte = d["arrays"]
    directions = d.get("directions", [1] * xtr.shape[1])
    scores = sklearn_models(xtr, ytr, xte, directions)
    for label, extra in NONNEG_MODELS + DROPOUT_MODELS.get(name, []):
        slug = f"{name}-{len(scores)}"
        if "directions" in d and "monotone" in extra:
            path = nn.work / f"{name}.directions.txt"
            path.write_text("".join(f"{n} {s}\n" for n, s in zip(d["direction_names"], directions)))
            extra = ["--feature-directions", path] + extra[2:]
        scores[label] = nn.scores(slug, d["train"], d["test"], extra, d["csv_label"])
    rows = {k: metrics(yte, s) for k, s in scores.items()}
    print(f"\n### {name}: train {len(ytr)} ({ytr.sum()} pos), test {len(yte)} ({yte.sum()} pos), "
          f"{xtr.shape[1]} features, {time.time() - t0:.0f} s\n")
    if "directions" in d:
        print(f"monotone = in the directions of the training correlations: {directions}\n")
    print("| model | test ROC AUC | TPR at 1% FPR |\n| --- | --- | --- |")
    for k, (auc, tpr) in rows.items():
        print(f"| {k} | {auc:.4f} | {tpr:.3f} |")
    sys.stdout.flush()
    return {"train": int(len(ytr)), "test": int(len(yte)), "features": int(xtr.shape[1]),
            "models": {k: {"auc": a, "tpr_at_fpr_1pct": t} for k, (a, t) in rows.items()}}


def vendor_sms(src):
    """Deduplicate, split stratified 80/20 with seed 0, write one tar.gz per class and part."""
    with open(src, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    seen, by_class = set(), {"ham": [], "spam": []}
    for idx, label, text in rows:
        if text not in seen:
            seen.add(text)
            by_class["spam" if label == "1" else "ham"].append((int(idx), text))
    rng = np.random.default_rng(0)
    SMS.mkdir(exist_ok=True)
    for cls, items in by_class.items():
        perm = rng.permutation(len(items))
        n_test = round(0.2 * len(items))
        for part, sel in [("test", perm[:n_test]), ("train", perm[n_test:])]:
            folder = f"{cls}-{part}"
            gz = gzip.GzipFile(SMS / f"{folder}.tar.gz", "wb", mtime=0)  # same bytes each run
            with gz, tarfile.open(fileobj=gz, mode="w") as tar:
                for i in sorted(sel):
                    idx, text = items[i]
                    data = (text + "\n").encode("utf-8")
                    info = tarfile.TarInfo(f"{folder}/{idx:04d}.txt")
                    info.size, info.mtime, info.mode = len(data), 0, 0o444
                    tar.addfile(info, io.BytesIO(data))
            print(f"{folder}: {len(sel)}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "vendor-sms":
        return vendor_sms(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nonneg", default=ROOT / "target/release/nonneg")
    ap.add_argument("--threads", type=int, default=2, help="for nonneg (scikit-learn uses one)")
    ap.add_argument("--only", help="comma-separated data set names")
    ap.add_argument("--json", help="also write all numbers here")
    a = ap.parse_args()
    import sklearn

    print(f"nonneg: {subprocess.run([str(a.nonneg), '--version'], capture_output=True, text=True).stdout.strip()}"
          f"; scikit-learn {sklearn.__version__}; numpy {np.__version__}; threads {a.threads}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # OpenMP's spinning threads slow HGB tenfold on a busy machine
    results = {}
    with tempfile.TemporaryDirectory() as work:
        nn = Nonneg(a.nonneg, a.threads, work)
        sets = datasets(nn)
        for name in (a.only.split(",") if a.only else sets):
            results[name] = run_set(nn, name, sets[name])
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
