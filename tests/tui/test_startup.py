"""The lab's start: no torch in the UI process, the surrogate curves from their own process, and the
instant after the first frame, when the hidden panes are still mounting."""

from __future__ import annotations

import copy
import subprocess
import sys
import time

import pytest
import torch
from textual.lazy import Lazy
from textual.widgets import Input, Static

from snnlab.engine import surrogates
from snnlab.tui.app import SnnLabApp, make_app
from snnlab.tui.surrogate_curves import POINTS, X_RANGE, CurveService, compute
from snnlab.tui.widgets.metric_plot import MetricPlot
from snnlab.tui.widgets.surrogate_lab import SurrogateLab
from tests.conftest import TINY
from tests.tui.conftest import wait_for


def test_the_lab_process_never_imports_torch():
    # The whole lab: first frame, every pane shown, the surrogate curves drawn. Only the curve process and
    # the training process import torch.
    code = """
import asyncio, copy, sys
from textual.lazy import Lazy
from snnlab.tui.app import make_app
from snnlab.tui.widgets.metric_plot import MetricPlot
from snnlab.tui.widgets.surrogate_lab import SurrogateLab
from tests.conftest import TINY

async def main():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 36)) as pilot:
        for key in "1234":
            await pilot.press(key)
            await pilot.pause(0.2)
        for _ in range(600):
            if not app.main.query(Lazy) and app.main.query_one(SurrogateLab).curves_shown:
                break
            await pilot.pause(0.1)
        print(len(app.main.query_one("#sg-grad", MetricPlot).series), "torch" in sys.modules)

if __name__ == "__main__":
    asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["3", "False"]  # the three default surrogates drawn, torch never loaded


def test_the_curves_are_the_engines_surrogates():
    got = compute([("atan", {"alpha": 3.0}), ("triangle", {"width": -1.0})])
    x = torch.linspace(*X_RANGE, POINTS)
    fn = surrogates.get("atan", alpha=3.0)
    assert got[0] == (x.tolist(), fn.smooth(x).tolist(), fn.grad(x).tolist())
    assert isinstance(got[1], str) and "width" in got[1]  # bad parameters come back as the engine's message


def test_the_curve_service_starts_again_after_it_was_closed():
    service = CurveService()
    results: list = []
    try:
        for _ in range(2):
            service.request([("fast_sigmoid", {"slope": 10.0})], results.append)
            service.close()  # the pending answer is cancelled or delivered; never lost silently as a hang
            service.request([("fast_sigmoid", {"slope": 10.0})], results.append)
            start = time.monotonic()
            while not any(isinstance(r, list) for r in results) and time.monotonic() - start < 120:
                time.sleep(0.05)
            assert any(isinstance(r, list) and len(r[0][0]) == POINTS for r in results)
            results.clear()
    finally:
        service.close()


@pytest.mark.asyncio
async def test_the_surrogates_pane_draws_the_engines_curves_and_reports_bad_parameters():
    app = make_app(config=copy.deepcopy(TINY))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")
        lab = app.main.query_one(SurrogateLab)
        grad = lab.query_one("#sg-grad", MetricPlot)
        await wait_for(pilot, lambda: lab.curves_shown, 120, "the first curves")
        x = torch.linspace(*X_RANGE, POINTS)
        assert [s.label for s in grad.series] == ["atan", "fast_sigmoid", "triangle"]
        assert grad.series[0].ys == surrogates.get("atan", alpha=2.0).grad(x).tolist()
        width = next(i for i in lab.query(Input) if i.name == "triangle.width")
        width.value = "-1"
        error = lab.query_one("#sg-error", Static)
        await wait_for(pilot, lambda: "width" in str(error.render()), 60, "the parameter's error")
        assert [s.label for s in grad.series] == ["atan", "fast_sigmoid"]  # the others still drawn
        width.value = "0.5"
        await wait_for(pilot, lambda: len(grad.series) == 3, 60, "the curve back")
        assert grad.series[2].ys == surrogates.get("triangle", width=0.5).grad(x).tolist()
        assert not str(error.render()).strip()


@pytest.mark.asyncio
async def test_compare_in_the_instant_before_the_surrogates_pane_mounts_says_so(tiny):
    app = make_app(config=tiny)  # its runs under tmp_path: the second c starts one
    async with SnnLabApp.run_test.unpatched(app, size=(120, 36)) as pilot:  # type: ignore[attr-defined]
        if not app.main.query(Lazy):
            pytest.skip("the panes mounted before the pilot got control")
        app.action_compare()  # what `c` does, at the instant a fast finger could press it
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["the Surrogates pane is still loading: press c again"]
        await wait_for(pilot, lambda: not app.main.query(Lazy), 30, "the panes")
        await pilot.press("c")
        await pilot.pause(0.2)
        assert app.crash is None and app.is_running
