"""The engine is headless: importing it must not pull in any user-interface library."""

import subprocess
import sys

HEADLESS = [
    "snnlab.engine.surrogates",
    "snnlab.engine.neurons",
    "snnlab.engine.kernels.fused",
    "snnlab.engine.encoders",
    "snnlab.engine.losses",
    "snnlab.engine.models",
    "snnlab.engine.data",
    "snnlab.engine.trainer",
    "snnlab.engine.checkpoint",
    "snnlab.engine.events",
    "snnlab.engine.files",
    "snnlab.engine.resume",
    "snnlab.engine.shapes",
    "snnlab.runs",
    "snnlab.resuming",
    "snnlab.config",
    "snnlab.formatting",
    "snnlab.exitcodes",
]


def test_headless_modules_import_no_ui_library():
    # One fresh interpreter for all of them: torch is slow to import, and any one offender fails the test.
    code = (
        f"import sys, {', '.join(HEADLESS)}\n"
        "bad = [m for m in ('textual', 'rich', 'typer', 'plotext') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"headless modules imported {out.stdout.strip()}"


def test_package_import_is_cheap():
    code = "import sys, snnlab; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
