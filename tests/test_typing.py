"""mypy over snnlab/ (its settings are in pyproject.toml): a type error fails the suite like any other defect."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # mypy over the package

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_errors():
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
