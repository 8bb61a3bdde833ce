"""NonNegClassifier as a scikit-learn estimator: the estimator checks, model selection,
input kinds, labels, pickling, progress, the GIL and Ctrl-C."""

import json
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.utils.estimator_checks import check_estimator

from nonneg import NonNegClassifier


def test_check_estimator():
    check_estimator(NonNegClassifier())


def test_grid_search_over_hidden_and_presets_picks_a_model(spambase):
    X, y = spambase
    grid = GridSearchCV(
        NonNegClassifier(epochs=5),
        {"hidden": [(), (32, 16)], "constraint": ["none", "monotone"]},
        cv=3,
        scoring="roc_auc",
    )
    grid.fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.all(scores > 0.85), scores
    assert grid.best_params_ in grid.cv_results_["params"]
    assert grid.best_score_ == scores.max()
    assert grid.score(X, y) > 0.9


def test_pipeline_and_cross_val_score(spambase):
    X, y = spambase
    pipe = make_pipeline(MaxAbsScaler(), NonNegClassifier(epochs=5, scale="none"))
    scores = cross_val_score(pipe, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and scores.min() > 0.85, scores


def test_any_two_labels_and_pandas_names(spambase):
    X, y = spambase
    signs = np.where(y == "spam", 1, -1)
    clf = NonNegClassifier(epochs=3).fit(X, signs)
    assert list(clf.classes_) == [-1, 1]
    assert set(np.unique(clf.predict(X))) == {-1, 1}
    assert list(clf.feature_names_in_) == list(X.columns)
    assert clf.model_.feature_names == list(X.columns)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(clf.predict(X) == 1, clf.decision_function(X) >= 0)


def test_more_than_two_classes_is_an_error(spambase):
    X, _ = spambase
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        NonNegClassifier(epochs=1).fit(X, np.arange(len(X)) % 3)


def test_bad_option_names_the_option(spambase):
    X, y = spambase
    with pytest.raises(ValueError, match="activation.*`swish`"):
        NonNegClassifier(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="monotone_features"):
        NonNegClassifier(monotone_features=["no_such_feature"]).fit(X, y)


def test_options_reach_training(spambase):
    X, y = spambase
    free = NonNegClassifier(epochs=2, hidden=(8,)).fit(X, y)
    mono = NonNegClassifier(epochs=2, hidden=(8,), constraint="monotone").fit(X, y)
    assert not free.certify()["certified"]
    assert mono.certify()["certified"]
    part = NonNegClassifier(epochs=2, hidden=(8,), monotone_features=["free"])
    cert = part.fit(X, y).certify(features=["free"])
    assert cert["certified"] and cert["declared"] == 1
    with_fpr = NonNegClassifier(epochs=2, valid_fraction=0.2, threshold_fpr=0.01).fit(X, y)
    assert with_fpr.model_.threshold[0] != 0.0


def test_dropout_reaches_training_and_is_checked(spambase):
    X, y = spambase
    plain = NonNegClassifier(epochs=2, hidden=(8,)).fit(X, y)
    dropped = NonNegClassifier(epochs=2, hidden=(8,), dropout=0.3, input_dropout=0.1).fit(X, y)
    assert not np.array_equal(plain.decision_function(X), dropped.decision_function(X))
    record = json.loads(dropped.model_.training)
    assert record["dropout"] == pytest.approx(0.3) and record["input_dropout"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"`dropout` option must be in \[0, 1\), got 1"):
        NonNegClassifier(dropout=1.0).fit(X, y)


def test_an_ensemble_is_the_mean_of_its_members_and_stays_certified(spambase):
    X, y = spambase
    opts = dict(epochs=2, hidden=(8,), constraint="monotone")
    members = [NonNegClassifier(seed=s, **opts).fit(X, y) for s in (3, 4, 5)]
    ens = NonNegClassifier(seed=3, ensemble=3, **opts).fit(X, y)
    mean = np.mean([m.decision_function(X) for m in members], axis=0)
    np.testing.assert_allclose(ens.decision_function(X), mean, rtol=1e-5, atol=1e-5)
    assert ens.certify()["certified"]
    record = json.loads(ens.model_.training)
    assert record["ensemble"] == 3 and record["ensemble_seeds"] == [3, 4, 5]
    with pytest.raises(ValueError, match=r"`ensemble` option must be at least 1, got 0"):
        NonNegClassifier(ensemble=0).fit(X, y)


def test_a_free_skip_leaves_the_network_monotone_but_not_certified(spambase):
    X, y = spambase
    free = NonNegClassifier(epochs=2, hidden=(8,), constraint="monotone", skip="free").fit(X, y)
    assert json.loads(free.model_.training)["free_skip"] is True
    assert not free.certify()["certified"]
    signed = NonNegClassifier(epochs=2, hidden=(8,), constraint="monotone", skip="on").fit(X, y)
    assert signed.certify()["certified"]
    with pytest.raises(ValueError, match=r"unknown choice `sideways` \(auto, on, off, free\)"):
        NonNegClassifier(skip="sideways").fit(X, y)


def test_autotune_searches_dropout_only_when_asked(spambase):
    X, y = spambase
    rates = lambda **kw: [
        t["settings"]["dropout"]
        for t in json.loads(
            NonNegClassifier(hidden=(8,), autotune=True, autotune_trials=12, **kw).fit(X, y).model_.training
        )["autotune"]["trials"]
    ]
    assert all(r == 0.0 for r in rates())
    assert any(r > 0.0 for r in rates(autotune_dropout=True))
    with pytest.raises(ValueError, match="`autotune_dropout` option searches"):
        NonNegClassifier(autotune=True, autotune_dropout=True, dropout=0.2).fit(X, y)


def test_hidden_auto_takes_the_presets_widths(spambase):
    X, y = spambase
    widths = lambda **kw: json.loads(NonNegClassifier(epochs=1, **kw).fit(X, y).model_.training)["hidden"]
    assert widths() == [64, 32]
    assert widths(constraint="lmn") == [16]
    assert widths(constraint="lmn", hidden=(8,)) == [8]
    assert widths(hidden=()) == []
    with pytest.raises(ValueError, match="hidden: widths"):
        NonNegClassifier(hidden="64,32").fit(X, y)


def test_sparse_input_is_never_densified(monkeypatch):
    # 2^20 columns (dense: 1.6 GB), of which the rows use the first 200.
    rng = np.random.default_rng(0)
    n, d = 2000, 1 << 20
    cols = np.sort(rng.choice(200, size=(n, 10), replace=True), axis=1)
    X = sp.csr_matrix((np.ones(n * 10, dtype=np.float32), cols.ravel(), np.arange(0, n * 10 + 1, 10)),
                      shape=(n, d))
    X.sum_duplicates()
    y = ((cols < 100).sum(axis=1) > 5).astype(int)
    for cls in (sp.csr_matrix, sp.csr_array):
        for name in ("toarray", "todense"):
            monkeypatch.setattr(cls, name, lambda *a, **k: pytest.fail("densified"))
    clf = NonNegClassifier(hidden=(8,), epochs=10, lr=0.01).fit(X, y)
    assert clf.n_features_in_ == d
    assert clf.score(X, y) > 0.85


def test_multilabel_y(spambase):
    X, y = spambase
    Y = np.column_stack([(y == "spam"), (X["charDollar"] > 0)]).astype(int)
    clf = NonNegClassifier(epochs=5).fit(X, Y)
    assert clf.model_.n_labels == 2
    assert clf.predict(X).shape == (len(X), 2)
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert (clf.predict(X) == Y).mean(axis=0).min() > 0.85


def test_pickle_and_clone_keep_the_model(spambase):
    X, y = spambase
    clf = NonNegClassifier(epochs=2, hidden=(8,)).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "model_")


def test_same_seed_same_model_other_seed_other_model(spambase):
    X, y = spambase
    a = NonNegClassifier(epochs=2, hidden=(8,)).fit(X, y).predict_proba(X)
    b = NonNegClassifier(epochs=2, hidden=(8,), threads=1).fit(X, y).predict_proba(X)
    c = NonNegClassifier(epochs=2, hidden=(8,), seed=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_autotune_searches_records_and_is_deterministic(spambase, capsys):
    X, y = spambase
    X, y = X[::3], y[::3]  # a third of the rows, both classes
    clf = NonNegClassifier(autotune=True, autotune_trials=3, verbose=True).fit(X, y)
    err = capsys.readouterr().err
    trials = [l for l in err.splitlines() if l.startswith("trial")]
    assert len(trials) == 3 and "autotune chose trial" in err, err
    record = json.loads(clf.model_.training)["autotune"]
    assert len(record["trials"]) == 3
    again = NonNegClassifier(autotune=True, autotune_trials=3).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))
    with pytest.raises(ValueError, match="autotune_trials"):
        NonNegClassifier(autotune=True, autotune_trials=0).fit(X, y)


def test_verbose_prints_the_epochs(spambase, capsys):
    X, y = spambase
    NonNegClassifier(epochs=3, hidden=(8,), verbose=True).fit(X, y)
    err = capsys.readouterr().err
    assert [l.split(":")[0] for l in err.splitlines()] == [f"epoch {e:>3}" for e in (1, 2, 3)]
    NonNegClassifier(epochs=3, hidden=(8,)).fit(X, y)
    assert capsys.readouterr().err == ""


def test_fit_releases_the_gil(spambase):
    X, y = spambase
    clf = NonNegClassifier(epochs=400, hidden=(64, 32))
    t = threading.Thread(target=clf.fit, args=(X, y))
    spins, start = 0, time.perf_counter()
    t.start()
    while t.is_alive():
        spins += 1
    elapsed = time.perf_counter() - start
    assert elapsed > 0.5, "training too short to tell"
    # Python code kept running in this thread all along (millions of spins a second).
    assert spins > 100_000 * elapsed, (spins, elapsed)
    assert hasattr(clf, "model_")


def test_ctrl_c_interrupts_a_long_fit(tmp_path):
    script = tmp_path / "long_fit.py"
    script.write_text(textwrap.dedent("""
        import sys, numpy as np
        from nonneg import NonNegClassifier
        rng = np.random.default_rng(0)
        X = rng.normal(size=(20000, 50)).astype(np.float32)
        y = (X[:, 0] > 0).astype(int)
        print("fitting", flush=True)
        try:
            NonNegClassifier(epochs=100000, hidden=(256, 256)).fit(X, y)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        print("finished", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "fitting"
    time.sleep(1.5)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert time.perf_counter() - sent < 5
    assert out.strip() == "interrupted" and proc.returncode == 3
