#!/usr/bin/env python3
"""Writes the small NumPy / scipy fixtures used by the unit tests of src/data/npz.rs.

Run from the repository root:  python3 scripts/make_data_fixtures.py
Needs numpy and scipy. Output: tests/fixtures/data/*.npz, *.npy (a few KB in all).
The values are fixed (no randomness) and asserted exactly by the Rust tests.
"""
import os

import numpy as np
import scipy.sparse as sp

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data")
os.makedirs(OUT, exist_ok=True)


def out(name):
    return os.path.join(OUT, name)


# X[r, c] = r + c / 8 (+ 0.25 on the diagonal): every value is exact in float32.
X = np.array([[r + c / 8 + (0.25 if r == c else 0.0) for c in range(3)] for r in range(4)])

# Dense, float32 X, 1-D int64 y in {0, 1}.
np.savez(out("dense_f32.npz"), X=X.astype(np.float32), y=np.array([0, 1, 1, 0], dtype=np.int64))
# Dense, float64 X, 1-D int32 y in {-1, 1}.
np.savez(out("dense_f64.npz"), X=X.astype(np.float64), y=np.array([-1, 1, 1, -1], dtype=np.int32))
# Compressed (deflate), bool y.
np.savez_compressed(out("dense_compressed.npz"), X=X.astype(np.float32),
                    y=np.array([True, False, True, False]))
# Multi-label y: 2-D [4 x 3] uint8.
np.savez(out("multilabel.npz"), X=X.astype(np.float32),
         y=np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1]], dtype=np.uint8))
# Fortran-order float64 X.
np.savez(out("fortran.npz"), X=np.asfortranarray(X.astype(np.float64)), y=np.array([1, 0, 0, 1]))
# Dense without labels.
np.savez(out("unlabelled.npz"), X=X.astype(np.float32))
# Dense with a NaN at row 2.
Xn = X.astype(np.float32).copy()
Xn[2, 1] = np.nan
np.savez(out("dense_nan.npz"), X=Xn, y=np.array([0, 1, 1, 0]))
# Big-endian X.
np.savez(out("bigendian.npz"), X=X.astype(">f8"), y=np.array([0, 1, 1, 0]))
# Non-binary y (value 2 at row 3).
np.savez(out("y_multiclass.npz"), X=X.astype(np.float32), y=np.array([0, 1, 1, 2]))

# scipy.sparse CSR (save_npz compresses by default) and its labels.
A = sp.csr_matrix(np.array([
    [0.0, 1.5, 0.0, 0.0, 2.0],
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0, 0.0, 0.0, -4.0, 0.0],
], dtype=np.float32))
sp.save_npz(out("csr.npz"), A)
np.save(out("csr_labels.npy"), np.array([1, 0, 1], dtype=np.int64))
np.save(out("csr_labels_multi.npy"), np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int8))
np.save(out("labels_short.npy"), np.array([1, 0], dtype=np.int64))
# The same labels in .npy format versions 2.0 and 3.0.
with open(out("csr_labels_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, np.array([1, 0, 1], dtype=np.int64), version=(2, 0))
with open(out("csr_labels_v3.npy"), "wb") as f:
    np.lib.format.write_array(f, np.array([1, 0, 1], dtype=np.int64), version=(3, 0))
# CSR with unsorted column indices within rows (float64 data, int64 indices).
U = sp.csr_matrix((np.array([2.0, 1.0, 5.0, 3.0]), np.array([3, 0, 2, 1], dtype=np.int64),
                   np.array([0, 2, 4])), shape=(2, 4))
assert not U.has_sorted_indices
sp.save_npz(out("csr_unsorted.npz"), U, compressed=False)
# CSR with a duplicate column in row 1.
D = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([0, 2, 2]), np.array([0, 1, 3])),
                  shape=(2, 3))
sp.save_npz(out("csr_duplicate.npz"), D)
# CSC: not supported (error case).
sp.save_npz(out("csc.npz"), A.tocsc())

for name in sorted(os.listdir(OUT)):
    print(f"{name:28s} {os.path.getsize(out(name)):6d} bytes")
