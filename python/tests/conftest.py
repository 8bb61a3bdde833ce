"""Shared fixtures: the repository, the CLI binary (built by scripts/test.sh) and data."""

import pathlib
import subprocess

import pandas as pd
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "nonneg"
SPAMASSASSIN = ROOT.parent / "shared" / "data" / "spamassassin"


def run_cli(*args, check=True, **kw):
    """Runs target/release/nonneg; returns the CompletedProcess (text output)."""
    assert CLI.exists(), f"{CLI} is missing: build it with cargo build --release"
    return subprocess.run(
        [str(CLI), *map(str, args)], capture_output=True, text=True, check=check, **kw
    )


@pytest.fixture(scope="session")
def spambase():
    """Spambase as (X DataFrame, y Series of 'spam'/'nonspam')."""
    df = pd.read_csv(ROOT / "data" / "spambase.csv")
    y = df.pop("type")
    return df, y


@pytest.fixture(scope="session")
def spambase_split(tmp_path_factory):
    """The CLI's stratified split of Spambase: (train.csv, test.csv) paths."""
    d = tmp_path_factory.mktemp("spambase")
    train, test = d / "train.csv", d / "test.csv"
    run_cli("split", "--data", ROOT / "data" / "spambase.csv", "--label-column", "type",
            "--positive", "spam", "--test-fraction", "0.2", "--seed", "0",
            "--train-out", train, "--test-out", test)
    return train, test
