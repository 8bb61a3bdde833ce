"""nonneg: neural classifiers that cannot be evaded by adding features.

``NonNegClassifier`` (a scikit-learn estimator) and ``TextFeaturizer`` over the Rust
library of the same name; models are the CLI's ``.safetensors`` files.
"""

from .estimator import NonNegClassifier
from .featurizer import TextFeaturizer

__all__ = ["NonNegClassifier", "TextFeaturizer"]
