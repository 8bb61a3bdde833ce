"""bench/baselines.py with autotuned nonneg models added (docs/autotune.md)."""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baselines as b
T = sys.argv.pop(1)  # trials
b.NONNEG_MODELS[:] = [
    ("nonneg default", []),
    (f"nonneg --autotune ({T} trials)", ["--autotune", "--autotune-trials", T]),
    (f"nonneg --autotune tpr@fpr ({T} trials)", ["--autotune", "--autotune-trials", T, "--autotune-metric", "tpr@fpr"]),
    ("nonneg monotone", ["--constraint", "monotone"]),
    (f"nonneg monotone --autotune ({T} trials)", ["--constraint", "monotone", "--autotune", "--autotune-trials", T]),
]
b.main()
