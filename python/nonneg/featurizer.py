"""TextFeaturizer: ``nonneg featurize text`` as a scikit-learn transformer."""

import json
import os

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import _nonneg


def _docs(docs):
    """Strings and bytes are documents; ``os.PathLike`` objects (``pathlib.Path``) are
    files, folders or archives whose every sample is a row."""
    if isinstance(docs, (str, bytes, os.PathLike)):
        raise TypeError("give a list of documents or paths, not a single one")
    return list(docs)


def _csr(n_features, parts):
    """The CSR matrix of the library's parts (int64 indptr, uint32 indices, float32)."""
    kinds = ("<i8", "<u4", "<f4")
    indptr, indices, values = (np.frombuffer(b, dtype=t) for b, t in zip(parts, kinds))
    shape = (len(indptr) - 1, n_features)
    return sp.csr_matrix((values, indices.astype(np.int64), indptr), shape=shape)


class TextFeaturizer(TransformerMixin, BaseEstimator):
    """Binary (or capped-count) token features of emails and texts: the featurizer the
    CLI builds and stores in models. Parameters are ``nonneg featurize text``'s options;
    the vocabulary is built from the documents given to ``fit`` (``hash_bits``: hashing,
    no vocabulary). As on the command line, without ``header_tokens``, ``url_hosts`` or
    ``raw_headers`` all three are turned on when every document is an email
    (``email_defaults=False``: never, as ``--no-email-defaults``)."""

    def __init__(
        self,
        min_df=2,
        max_features=None,
        hash_bits=None,
        input_kind="auto",
        subject_words=False,
        header_tokens=False,
        url_hosts=False,
        raw_headers=False,
        email_defaults=True,
        counts=False,
        cap=10,
        tfidf=False,
        normalize=False,
    ):
        self.min_df = min_df
        self.max_features = max_features
        self.hash_bits = hash_bits
        self.input_kind = input_kind
        self.subject_words = subject_words
        self.header_tokens = header_tokens
        self.url_hosts = url_hosts
        self.raw_headers = raw_headers
        self.email_defaults = email_defaults
        self.counts = counts
        self.cap = cap
        self.tfidf = tfidf
        self.normalize = normalize

    def fit_transform(self, docs, y=None):
        spec, n, parts = _nonneg.featurize_text(_docs(docs), options=json.dumps(self.get_params()))
        self.spec_ = spec
        self.n_features_ = n
        return _csr(n, parts)

    def fit(self, docs, y=None):
        self.fit_transform(docs)
        return self

    def transform(self, docs):
        """One CSR row per document (or per sample under a path), float32."""
        check_is_fitted(self, "spec_")
        spec, n, parts = _nonneg.featurize_text(_docs(docs), spec=self.spec_)
        return _csr(n, parts)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "spec_")
        terms = json.loads(self.spec_)["vocabulary"].get("terms")
        if terms is None:
            raise AttributeError("a hashing featurizer has no feature names")
        return np.asarray(terms, dtype=object)

    def save(self, path):
        """Writes the spec as ``nonneg featurize`` does (``--vocab`` reads it), through a
        temporary file renamed into place, so a failed write leaves no partial file."""
        check_is_fitted(self, "spec_")
        path = os.fspath(path)
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                f.write(json.dumps(json.loads(self.spec_), indent=2) + "\n")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path):
        """A fitted featurizer from a CLI spec (``<out>.featurizer.json``); its parameters
        are the defaults, the spec's own settings apply."""
        with open(path) as f:
            spec = f.read()
        est = cls()
        est.spec_ = spec
        est.n_features_ = json.loads(spec)["n_features"]
        return est
