"""NonNegClassifier: the nonneg training pipeline as a scikit-learn estimator.

Every computation is the Rust library's (``nonneg._nonneg``); this module only checks
and converts inputs the scikit-learn way and converts the outputs back.
"""

import json
import os
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from . import _nonneg

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(est, *args, **kwargs):
        return est._validate_data(*args, **kwargs)


def _data(X, y=None, label_names=(), feature_names=None):
    """A checked ``_nonneg.Data`` from a float32 ndarray or CSR matrix (no densifying)."""
    yb = None if y is None else np.ascontiguousarray(y, dtype="<f4").tobytes()
    names = None if feature_names is None else [str(n) for n in feature_names]
    if sp.issparse(X):
        X = X.tocsr()
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        return _nonneg.Data.csr(
            X.shape[1],
            np.asarray(X.indptr, dtype="<i8").tobytes(),
            np.asarray(X.indices, dtype="<u4").tobytes(),
            np.asarray(X.data, dtype="<f4").tobytes(),
            yb,
            list(label_names),
            names,
        )
    X = np.ascontiguousarray(X, dtype="<f4")
    return _nonneg.Data.dense(
        X.shape[0], X.shape[1], X.tobytes(), yb, list(label_names), names
    )


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))


class NonNegClassifier(ClassifierMixin, BaseEstimator):
    """A (monotone) MLP trained by nonneg; the parameters are ``nonneg train``'s options.

    Binary ``y`` may hold any two labels (``classes_``); a 2-D 0/1 ``y`` is multi-label
    (one sigmoid output per column). ``X``: a numpy array, a pandas DataFrame (its column
    names become the model's feature names) or a scipy.sparse matrix (kept sparse).
    ``monotone_features``: feature names or indices; ``feature_directions``: a dict or
    pairs ``feature -> +1 | -1 | 0``. ``verbose`` prints each epoch's line as the CLI does.
    ``hidden``: the hidden widths (``()``: logistic regression), or ``"auto"``: the
    preset's, 64-32 (16 units for ``constraint="lmn"``), as ``nonneg train`` without ``--hidden``.
    ``dropout`` / ``input_dropout``: dropout on the hidden activations / the input, in
    training only (``nonneg train --dropout`` / ``--input-dropout``).
    ``ensemble=K`` is ``nonneg train --ensemble K``: K members (seeds ``seed``, ``seed + 1``,
    ...) stored as one network whose logit is the mean of theirs (K times the training time
    and the width; a monotone ensemble stays certified); 1: one model.
    ``autotune=True`` is ``nonneg train --autotune``: a search on held-out data (or
    ``autotune_folds`` folds) bounded by ``autotune_duration`` seconds (default 300 s unless
    ``autotune_trials`` bounds it), maximising ``autotune_metric`` (``"auc"`` or
    ``"tpr@fpr"``), over the hidden layers too unless ``autotune_hidden=False`` and over
    dropout with ``autotune_dropout=True`` (``--autotune-dropout``; otherwise ``dropout`` and
    ``input_dropout`` hold for every trial); the winner is refit on all of X and its
    settings are in the model's training record.
    """

    def __init__(
        self,
        hidden="auto",
        activation="auto",
        skip="auto",
        constraint="none",
        monotone_features=None,
        feature_directions=None,
        layer_constraint=(),
        nonneg_mode="project",
        init="auto",
        center_bias=True,
        reset_clipped_moments=False,
        scale=None,
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        nesterov=False,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=None,
        lr_schedule="constant",
        lr_step_epochs=10,
        lr_gamma=0.1,
        min_lr=0.0,
        clip_grad_norm=None,
        dropout=0.0,
        input_dropout=0.0,
        epochs=20,
        batch_size=128,
        seed=0,
        pos_weight="auto",
        patience=None,
        monitor="loss",
        valid_fraction=None,
        threshold_fpr=None,
        ensemble=1,
        robust_budget=0,
        robust_weight=0.5,
        robust_warmup=2,
        robust_crown=0.0,
        threads=None,
        autotune=False,
        autotune_duration=None,
        autotune_trials=None,
        autotune_metric="auc",
        autotune_folds=None,
        autotune_hidden=True,
        autotune_dropout=False,
        verbose=False,
    ):
        self.hidden = hidden
        self.activation = activation
        self.skip = skip
        self.constraint = constraint
        self.monotone_features = monotone_features
        self.feature_directions = feature_directions
        self.layer_constraint = layer_constraint
        self.nonneg_mode = nonneg_mode
        self.init = init
        self.center_bias = center_bias
        self.reset_clipped_moments = reset_clipped_moments
        self.scale = scale
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.lr_step_epochs = lr_step_epochs
        self.lr_gamma = lr_gamma
        self.min_lr = min_lr
        self.clip_grad_norm = clip_grad_norm
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.pos_weight = pos_weight
        self.patience = patience
        self.monitor = monitor
        self.valid_fraction = valid_fraction
        self.threshold_fpr = threshold_fpr
        self.ensemble = ensemble
        self.robust_budget = robust_budget
        self.robust_weight = robust_weight
        self.robust_warmup = robust_warmup
        self.robust_crown = robust_crown
        self.threads = threads
        self.autotune = autotune
        self.autotune_duration = autotune_duration
        self.autotune_trials = autotune_trials
        self.autotune_metric = autotune_metric
        self.autotune_folds = autotune_folds
        self.autotune_hidden = autotune_hidden
        self.autotune_dropout = autotune_dropout
        self.verbose = verbose

    # -- parameters -> the library's options ------------------------------------------

    def _options(self):
        p = self.get_params()
        del p["verbose"]
        h = p["hidden"]
        if isinstance(h, str):
            if h != "auto":
                raise ValueError(f"hidden: widths such as (64, 32), () or 'auto', got {h!r}")
            p["hidden"] = None
        else:
            p["hidden"] = [int(w) for w in (h or ())]
        p["layer_constraint"] = list(p["layer_constraint"] or ())
        if p["monotone_features"] is not None:
            p["monotone_features"] = [str(f) for f in p["monotone_features"]]
        d = p["feature_directions"]
        if d is not None:
            pairs = d.items() if isinstance(d, dict) else d
            p["feature_directions"] = [(str(f), int(s)) for f, s in pairs]
        pw = p["pos_weight"]
        if not isinstance(pw, str):
            p["pos_weight"] = [float(w) for w in np.atleast_1d(pw)]
        return json.dumps(p)

    # -- labels ---------------------------------------------------------------------------

    def _encode_y(self, y):
        """0/1 float32 labels [rows x labels] for ``self.classes_``."""
        if self._multilabel:
            return np.asarray(y, dtype=np.float32)
        return (np.asarray(y) == self.classes_[1]).astype(np.float32)

    def _set_classes(self, y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. "
                "Please change the shape of y to (n_samples, ), for example using ravel().",
                DataConversionWarning,
                stacklevel=3,
            )
            y = y.ravel()
        check_classification_targets(y)
        kind = type_of_target(y)
        self._multilabel = kind == "multilabel-indicator"
        if self._multilabel:
            self.classes_ = np.arange(y.shape[1])
            return y
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{kind} ({len(self.classes_)} classes); NonNegClassifier takes two classes "
                "or a 2-D 0/1 multi-label y."
            )
        return y

    # -- the estimator API ----------------------------------------------------------------

    def fit(self, X, y, featurizer=None):
        """Trains on X, y. ``featurizer``: the fitted TextFeaturizer that made X, stored in
        the model so that the CLI can score raw samples with it."""
        X, y = _validate_data(
            self, X, y, accept_sparse="csr", dtype=np.float32, multi_output=True
        )
        y = self._set_classes(y)
        yb = self._encode_y(y)
        names = getattr(self, "feature_names_in_", None)
        n_labels = yb.shape[1] if yb.ndim == 2 else 1
        label_names = (
            [str(c) for c in self.classes_] if self._multilabel else ["label"]
        )
        data = _data(X, yb, label_names[:n_labels], names)
        spec = None if featurizer is None else featurizer.spec_
        self.model_ = _nonneg.fit(self._options(), data, bool(self.verbose), spec)
        return self

    def _logits(self, X):
        check_is_fitted(self, "model_")
        X = _validate_data(self, X, accept_sparse="csr", dtype=np.float32, reset=False)
        z = np.frombuffer(self.model_.logits(_data(X)), dtype="<f4")
        return z.reshape(X.shape[0], self.model_.n_labels)

    def decision_function(self, X):
        """The logit minus the model's threshold (> 0: positive), per label."""
        d = self._logits(X) - np.asarray(self.model_.threshold, dtype=np.float32)
        return d if self._multilabel else d[:, 0]

    def predict_proba(self, X):
        """sigmoid(logit): ``nonneg predict``'s score; binary: columns for ``classes_``."""
        p = _sigmoid(self._logits(X))
        return p if self._multilabel else np.column_stack([1.0 - p[:, 0], p[:, 0]])

    def predict(self, X):
        """The labels at the model's threshold (``threshold_fpr``, else logit >= 0)."""
        z = self._logits(X)
        on = (z >= np.asarray(self.model_.threshold, dtype=np.float32)).astype(int)
        return on if self._multilabel else self.classes_[on[:, 0]]

    # -- robustness -----------------------------------------------------------------------

    def certify(self, features=None):
        """The certificate (``nonneg certify --json``) as a dict; ``features``: the
        attacker's features (names or indices), default all."""
        check_is_fitted(self, "model_")
        f = None if features is None else [str(x) for x in features]
        return json.loads(self.model_.certify(f))

    def attack(self, X, y, method="greedy", budget=(1, 5, 10, 20, 50), limit=None, seed=0):
        """Attacks the detected positives of X (``nonneg attack``); returns the evasion
        table: one dict per budget (budget, targets, evaded, evasion_rate, ...)."""
        check_is_fitted(self, "model_")
        X = _validate_data(self, X, accept_sparse="csr", dtype=np.float32, reset=False)
        yb = self._encode_y(y)
        n = yb.shape[1] if yb.ndim == 2 else 1
        data = _data(X, yb, self.model_.label_names[:n] or ["label"] * n)
        report = self.model_.attack(data, method, [int(b) for b in budget], limit, seed)
        return json.loads(report)["results"]

    # -- files and pickling ---------------------------------------------------------------

    def _recorded_model(self):
        classes = self.classes_.tolist()
        try:
            record = json.dumps({"classes": classes, "multilabel": self._multilabel})
        except TypeError:  # labels JSON cannot hold: the file keeps 0/1
            return self.model_
        return self.model_.with_record("python", record)

    def save(self, path):
        """Writes the model as the CLI's ``.safetensors`` file (atomically)."""
        check_is_fitted(self, "model_")
        self._recorded_model().save(os.fspath(path))

    def to_onnx(self, path):
        """Writes the model as an ONNX graph (opset 17, as ``nonneg export --onnx``):
        input ``features`` float32 [N, n_features_in_] of raw values (sparse models take
        dense rows of the vocabulary width), outputs ``logit`` and ``score`` [N, labels]."""
        check_is_fitted(self, "model_")
        self.model_.save_onnx(os.fspath(path))

    @classmethod
    def load(cls, path):
        """A fitted estimator from a ``.safetensors`` file of the CLI or of ``save``; its
        parameters are the defaults (the training options are in the file's record)."""
        est = cls()
        est._adopt(_nonneg.Model.load(os.fspath(path)))
        return est

    def _adopt(self, model):
        self.model_ = model
        record = json.loads(model.training or "null") or {}
        py = record.get("python") or {}
        self._multilabel = bool(py.get("multilabel", model.n_labels > 1))
        default = list(range(model.n_labels)) if self._multilabel else [0, 1]
        self.classes_ = np.asarray(py.get("classes", default))
        self.n_features_in_ = model.n_features
        if model.feature_names is not None:
            self.feature_names_in_ = np.asarray(model.feature_names, dtype=object)

    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = self.model_.to_bytes()
        return state

    def __setstate__(self, state):
        if "model_" in state:
            state = dict(state, model_=_nonneg.Model.from_bytes(state["model_"]))
        self.__dict__.update(state)

    # Binary and multi-label, never multi-class: scikit-learn < 1.6 and >= 1.6 spellings.
    def _more_tags(self):
        return {"binary_only": True, "multilabel": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags
