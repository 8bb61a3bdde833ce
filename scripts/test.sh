#!/usr/bin/env bash
# The test suite: the Rust tests (with the `distributed` feature's under mpirun when Open
# MPI is installed), then the Python package's (README's second command, and
# what .ci/run runs after fmt and clippy). Python: a virtual environment .venv-ci with the
# pinned packages of python/requirements-test.txt (created on first use, from PyPI), the
# wheel built by maturin and installed there, pytest on python/tests against the release
# CLI binary.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-ci
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
fi
# Installs or updates the pins (a no-op when they are there).
"$venv/bin/pip" install --quiet -r python/requirements-test.txt
cargo test --release
# Data-parallel training under `mpirun -np 2` (Open MPI; .ci/run installs it when missing).
if command -v mpirun >/dev/null; then
    cargo test --release --features distributed --lib --test distributed -- train::distributed under_mpirun
else
    echo "scripts/test.sh: no mpirun: the MPI test is skipped (apt-get install openmpi-bin libopenmpi-dev libclang-dev)" >&2
fi
# A folder of its own: exactly this build's wheel.
rm -rf target/python-wheel
(cd python && "../$venv/bin/maturin" build --release --quiet --out ../target/python-wheel)
"$venv/bin/pip" install --quiet --force-reinstall --no-deps target/python-wheel/nonneg-*.whl
cargo build --release
"$venv/bin/python" -m pytest -q python/tests
