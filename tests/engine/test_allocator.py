"""The malloc setting (engine/allocator.py) reaches a user's own loop, and stays out of the way when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from snnlab.engine import allocator

# In a fresh interpreter: optionally run one small Leaky scan on the CPU (as a user's loop would), then
# allocate, touch and free a 24 MB tensor and report how much anonymous memory freeing it gave back.
PROBE = r"""
import json, re, sys
import torch
from snnlab.engine import allocator

def anon_mb():
    with open("/proc/self/status") as f:
        return int(re.search(r"RssAnon:\s+(\d+)", f.read()).group(1)) / 1024

if sys.argv[1] == "scan":
    from snnlab.engine.neurons import Leaky
    Leaky(beta=0.9)(torch.rand(4, 2, 8))
x = torch.ones(6 << 20)  # 24 MB, touched
before = anon_mb()
del x
print(json.dumps({"returned_mb": before - anon_mb(), "applied": allocator._result}))
"""


def _probe(scan: bool, **env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k not in ("SNNLAB_MALLOC", "GLIBC_TUNABLES")
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "scan" if scan else "plain"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")


def test_glibc_hands_a_freed_large_block_back_by_default():
    """The baseline the setting changes: without it the 24 MB block is unmapped at once (and faulted in
    again, zero-filled, at its next allocation)."""
    got = _probe(scan=False)
    assert got["applied"] is None and got["returned_mb"] > 20


def test_the_first_cpu_scan_keeps_freed_memory_for_the_next_step():
    got = _probe(scan=True)
    assert got["applied"] is True and got["returned_mb"] < 4


@pytest.mark.parametrize(
    "env",
    [{"SNNLAB_MALLOC": "0"}, {"MALLOC_MMAP_THRESHOLD_": "65536"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}],
)
def test_a_malloc_configured_by_the_environment_is_left_alone(env):
    got = _probe(scan=True, **env)
    assert got["applied"] is False and got["returned_mb"] > 20


def test_configured_elsewhere_reads_only_mallocs_own_settings(monkeypatch):
    for k in [k for k in os.environ if k.startswith("MALLOC_") or k in ("SNNLAB_MALLOC", "GLIBC_TUNABLES")]:
        monkeypatch.delenv(k)
    assert not allocator.configured_elsewhere()
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2")
    monkeypatch.setenv("SNNLAB_MALLOC", "1")
    assert not allocator.configured_elsewhere()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert allocator.configured_elsewhere()
