"""The Python package and the CLI agree: same model file both ways, same scores, same
certificates, same features, same training on the same data."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_svmlight_file

from conftest import SPAMASSASSIN, run_cli
from nonneg import NonNegClassifier, TextFeaturizer


def cli_scores(model, *data_args):
    out = run_cli("predict", "--model", model, *data_args).stdout
    return pd.read_csv(io.StringIO(out))


def test_predict_proba_equals_cli_predict(spambase_split, tmp_path):
    train, test = (pd.read_csv(p) for p in spambase_split)
    y = train.pop("type")
    test.pop("type")
    clf = NonNegClassifier(constraint="monotone", epochs=5).fit(train, y)
    model = tmp_path / "py.safetensors"
    clf.save(model)
    cli = cli_scores(model, "--data", spambase_split[1], "--label-column", "type",
                     "--positive", "spam")
    proba = clf.predict_proba(test)[:, 1]
    assert np.abs(proba - cli["score"].to_numpy()).max() < 1e-6
    assert np.array_equal(clf.predict(test) == "spam", cli["label"].to_numpy() == 1)


def test_python_model_certifies_with_the_cli(spambase, tmp_path):
    X, y = spambase
    mono, free = tmp_path / "mono.safetensors", tmp_path / "free.safetensors"
    NonNegClassifier(constraint="monotone", epochs=2).fit(X, y).save(mono)
    NonNegClassifier(epochs=2).fit(X, y).save(free)
    cert = run_cli("certify", "--model", mono, "--json")
    assert json.loads(cert.stdout)["certified"] is True
    assert run_cli("certify", "--model", free, check=False).returncode == 1


def test_cli_model_loads_in_python(spambase_split, tmp_path):
    model = tmp_path / "cli.safetensors"
    run_cli("train", "--data", spambase_split[0], "--label-column", "type", "--positive",
            "spam", "--out", model, "--epochs", "2", "--hidden", "16")
    clf = NonNegClassifier.load(model)
    test = pd.read_csv(spambase_split[1])
    truth = (test.pop("type") == "spam").astype(int)
    assert list(clf.classes_) == [0, 1] and list(clf.feature_names_in_) == list(test.columns)
    cli = cli_scores(model, "--data", spambase_split[1], "--label-column", "type",
                     "--positive", "spam")
    assert np.abs(clf.predict_proba(test)[:, 1] - cli["score"].to_numpy()).max() < 1e-6
    assert clf.score(test, truth) > 0.85
    assert clf.certify() == json.loads(run_cli("certify", "--model", model, "--json",
                                               check=False).stdout)


def test_save_load_keeps_string_classes(spambase, tmp_path):
    X, y = spambase
    clf = NonNegClassifier(epochs=1, hidden=(4,)).fit(X, y)
    clf.save(tmp_path / "m.safetensors")
    back = NonNegClassifier.load(tmp_path / "m.safetensors")
    assert list(back.classes_) == ["nonspam", "spam"]
    assert set(back.predict(X)) <= {"nonspam", "spam"}
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """spam-1 and hard-ham-1 featurized by the CLI: (svm path, spec path, class paths)."""
    d = tmp_path_factory.mktemp("corpus")
    classes = [SPAMASSASSIN / "spam-1", SPAMASSASSIN / "hard-ham-1"]
    svm = d / "train.svm"
    run_cli("featurize", "text", "--class", f"spam={classes[0]}", "--class",
            f"ham={classes[1]}", "--header-tokens", "--url-hosts", "--out", svm)
    return svm, d / "train.svm.featurizer.json", classes


def test_text_featurizer_equals_the_cli(small_corpus, tmp_path):
    svm, spec_path, classes = small_corpus
    tf = TextFeaturizer(header_tokens=True, url_hosts=True)
    X = tf.fit_transform(classes)
    cli_spec = json.loads(spec_path.read_text())
    # The CLI's sidecar also records which data file it was written for.
    assert "data_fingerprint" in cli_spec
    del cli_spec["data_fingerprint"]
    assert json.loads(tf.spec_) == cli_spec
    Xc, _ = load_svmlight_file(str(svm), n_features=tf.n_features_, zero_based=False)
    assert X.shape == Xc.shape and (X != Xc).nnz == 0
    loaded = TextFeaturizer.load(spec_path)
    ham = loaded.transform(classes[1:])
    assert (ham != X[-ham.shape[0]:]).nnz == 0
    files = sorted(p for p in classes[1].iterdir())[:5]
    as_text = tf.transform([p.read_bytes() for p in files])
    as_paths = tf.transform(files)
    assert (as_text != as_paths).nnz == 0 and as_text.nnz > 0
    assert len(tf.get_feature_names_out()) == tf.n_features_
    # A spec saved from Python is the CLI's --vocab.
    tf.save(tmp_path / "vocab.json")
    run_cli("featurize", "text", "--class", f"ham={classes[1]}", "--vocab",
            tmp_path / "vocab.json", "--out", tmp_path / "ham.svm")
    Xh, _ = load_svmlight_file(str(tmp_path / "ham.svm"), n_features=tf.n_features_,
                               zero_based=False)
    assert (Xh != ham).nnz == 0


def test_sparse_fit_equals_cli_train(small_corpus, tmp_path):
    svm, spec_path, classes = small_corpus
    cli_model, py_model = tmp_path / "cli.safetensors", tmp_path / "py.safetensors"
    run_cli("train", "--data", svm, "--out", cli_model, "--constraint", "monotone",
            "--epochs", "3", "--hidden", "32,16")
    tf = TextFeaturizer.load(spec_path)
    X, y = load_svmlight_file(str(svm), n_features=tf.n_features_, zero_based=False)
    clf = NonNegClassifier(constraint="monotone", epochs=3, hidden=(32, 16))
    clf.fit(X.astype(np.float32).tocsr(), y.astype(int), featurizer=tf)
    clf.save(py_model)
    cli = cli_scores(cli_model, "--data", svm)["score"].to_numpy()
    assert np.abs(clf.predict_proba(X)[:, 1] - cli).max() < 1e-6
    # The featurizer went into the file: the CLI scores raw emails with the Python model.
    files = sorted(classes[1].iterdir())[:3]
    raw = cli_scores(py_model, *files)
    assert np.abs(raw["score"].to_numpy() - clf.predict_proba(tf.transform(files))[:, 1]).max() < 1e-6
    assert run_cli("certify", "--model", py_model, check=False).returncode == 0
