"""One line at the bottom: run state, run name, epoch and step, speed, ETA and device."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from snnlab.formatting import format_duration
from snnlab.tui import palette
from snnlab.tui.metrics import RunMetrics


def status_text(m: RunMetrics, extra: str = "") -> Text:
    """The status line for ``m``; ``extra`` is appended (e.g. a queued comparison)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f" {m.status.upper()} ", f"bold reverse {palette.STATES.get(m.status, palette.NEUTRAL)}")
    if m.name:
        text.append(f" {m.name}", "bold")
    if m.epochs:
        text.append(f"  epoch {m.epoch}/{m.epochs}")
        text.append(f"  step {m.step}/{m.total_steps}")
    if m.samples_per_s == m.samples_per_s:  # not NaN
        text.append(f"  {m.samples_per_s:,.0f} samples/s")
    eta = m.eta()
    if eta is not None:
        text.append(f"  ETA {format_duration(eta)}")
    text.append(f"  {m.device}", "italic")
    if extra:
        text.append(f"  {extra}", palette.ACCENT)
    return text


class StatusBar(Static):
    """Shows :func:`status_text`; the app calls :meth:`update_from` from its redraw timer."""

    def update_from(self, metrics: RunMetrics, extra: str = "") -> None:
        self.update(status_text(metrics, extra))
