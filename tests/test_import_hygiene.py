"""The engine is headless: importing it must not pull in any user-interface library. And the other way
round, what the lab's own process needs to check a config and draw its form does not pull in torch."""

import subprocess
import sys

HEADLESS = [
    "snnlab.catalog",
    "snnlab.engine.surrogates",
    "snnlab.engine.neurons",
    "snnlab.engine.kernels.fused",
    "snnlab.engine.encoders",
    "snnlab.engine.losses",
    "snnlab.engine.models",
    "snnlab.engine.data",
    "snnlab.engine.trainer",
    "snnlab.engine.session",
    "snnlab.engine.checkpoint",
    "snnlab.engine.events",
    "snnlab.engine.files",
    "snnlab.engine.resume",
    "snnlab.engine.shapes",
    "snnlab.runs",
    "snnlab.history",
    "snnlab.resuming",
    "snnlab.evaluation",
    "snnlab.api",
    "snnlab.runs.records",
    "snnlab.config",
    "snnlab.formatting",
    "snnlab.exitcodes",
    "snnlab.interop.loggers",
    "snnlab.interop.tensorboard",
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


def test_configs_and_the_labs_form_need_no_torch():
    # The lab trains in a child process; its own process checks configs and draws the form, and torch would
    # cost it about a second at start. Every preset is validated in full (to_dict names every setting, the
    # surrogate and its parameters included), and the Network form is drawn once.
    code = """
import asyncio, sys
import snnlab.catalog, snnlab.config
from snnlab.config import config_from_dict, find_preset, list_presets, load_config
from snnlab.tui.widgets.config_form import ConfigForm
from textual.app import App
for name, _ in list_presets():
    data = load_config(find_preset(name)).to_dict()
    data["model"]["neuron"].update(surrogate="fast_sigmoid", surrogate_params={"slope": 10.0})
    config_from_dict(data)

class FormOnly(App):
    def compose(self):
        yield ConfigForm(data, preset=name)

async def draw():
    async with FormOnly().run_test() as pilot:
        await pilot.pause()
        assert pilot.app.query_one(ConfigForm).config is not None

asyncio.run(draw())
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
