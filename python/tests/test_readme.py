"""The README's Python quick start, run as written (in a scratch folder that sees the
repository's data/ as the repository root would)."""

import os
import subprocess
import sys

from conftest import ROOT


def block_after(heading, lang):
    """The fenced block of `lang` that follows `heading` in the README."""
    readme = (ROOT / "README.md").read_text()
    at = readme.index(heading)
    start = readme.index(f"```{lang}\n", at) + len(lang) + 4
    return readme[start : readme.index("```", start)]


def test_python_quick_start_runs(tmp_path):
    block = block_after("### Python quick start", "python")
    assert "to_onnx" in block and "InferenceSession" in block and "attack" in block
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "quick_start.py").write_text(block)
    run = subprocess.run([sys.executable, "quick_start.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = dict(l.split(" ", 1) for l in run.stdout.splitlines())
    assert lines["certified"] == "True False", run.stdout
    assert lines["monotone"].endswith("[0.0, 0.0, 0.0]"), run.stdout
    assert (tmp_path / "mono.safetensors").exists() and (tmp_path / "mono.onnx").exists()
    assert os.path.getsize(tmp_path / "mono.onnx") > 1000
