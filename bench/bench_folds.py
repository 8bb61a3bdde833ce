"""bench/baselines.py with autotuned nonneg models scored on 5 folds (docs/autotune.md)."""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baselines as b
T = sys.argv.pop(1)
F = ["--autotune", "--autotune-trials", T, "--autotune-folds", "5"]
b.NONNEG_MODELS[:] = [
    ("nonneg default", []),
    (f"nonneg --autotune-folds 5 ({T} trials)", F),
    (f"nonneg --autotune-folds 5 tpr@fpr ({T} trials)", F + ["--autotune-metric", "tpr@fpr"]),
    ("nonneg monotone", ["--constraint", "monotone"]),
    (f"nonneg monotone --autotune-folds 5 ({T} trials)", ["--constraint", "monotone"] + F),
]
b.main()
