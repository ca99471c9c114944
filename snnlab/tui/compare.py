"""What the Surrogates pane compares: one run per chosen surrogate, or the runs of a sweep folder.

No widgets here. This module decides which surrogates (with which parameters) go into a comparison,
builds the config of each run, reads a sweep folder's runs back, and gives each run its name and colour;
the app launches the runs and folds their events, and the pane only draws the entries it is handed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnlab import catalog
from snnlab.config import Config, config_from_dict
from snnlab.sweep import read_sweep
from snnlab.tui import palette
from snnlab.tui.metrics import RunMetrics


@dataclass
class CompareEntry:
    """One run of a comparison: its surrogate's settings and the metrics of its run.

    ``name``, ``color`` and ``legend`` default to the surrogate's; a sweep sets them per grid
    combination (``legend`` "" for a further seed of a combination already in the legend)."""

    surrogate: str
    params: dict[str, float]
    metrics: RunMetrics
    name: str | None = None
    color: str | None = None
    legend: str | None = None
    cell: int | None = None  # a sweep's grid combination: the runs that differ only in their seed share it

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        args = ",".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.surrogate}({args})" if args else self.surrogate

    @property
    def curve_color(self) -> str:
        return self.color or color_of(self.surrogate)

    @property
    def curve_label(self) -> str:
        return self.surrogate if self.legend is None else self.legend


def color_of(surrogate: str) -> str:
    """A surrogate's colour, the same in every plot: its place in the catalog picks it."""
    keys = list(catalog.SURROGATES)
    return palette.series(keys.index(surrogate)) if surrogate in keys else palette.NEUTRAL


def compare_choices(chosen: list[str], params: dict[str, dict[str, float]]) -> list[tuple[str, dict[str, float]]]:
    """``(surrogate, parameters that differ from its defaults)`` for each chosen surrogate whose
    parameters it accepts; one with invalid parameters is left out (the pane shows why)."""
    choices = []
    for name in chosen:
        try:
            catalog.surrogate_params(name, params[name])
        except ValueError:
            continue
        defaults = catalog.SURROGATES[name].defaults
        choices.append((name, {k: v for k, v in params[name].items() if defaults.get(k) != v}))
    return choices


def compare_runs(config: Config, choices: list[tuple[str, dict[str, float]]]) -> list[tuple[CompareEntry, dict]]:
    """One (entry, config data) per surrogate: ``config`` with model.neuron's surrogate swapped.

    Layers with a custom neuron that names its own surrogate keep it. Raises ConfigError when a
    variant is not valid."""
    base = config.to_dict()
    runs = []
    for name, params in choices:
        data = copy.deepcopy(base)
        data["model"]["neuron"].update(surrogate=name, surrogate_params=dict(params))
        data["run"]["name"] = f"{base['run']['name']}-{name}"
        config_from_dict(data, source=f"compare {name}")
        runs.append((CompareEntry(name, dict(params), RunMetrics(status="queued")), data))
    return runs


def sweep_entries(sweep_dir: Path) -> list[CompareEntry]:
    """Every run of a sweep folder as an entry, its metrics read from its events, one colour per grid
    combination (raises ConfigError, RunDirError)."""
    keys, found = read_sweep(sweep_dir)
    entries: list[CompareEntry] = []
    previous = None
    for run in found:
        label = run.label(keys)
        first, previous = run.combination != previous, run.combination
        neuron: dict[str, Any] = run.config.get("model", {}).get("neuron", {})
        entries.append(
            CompareEntry(
                surrogate=str(neuron.get("surrogate", "?")),
                params=dict(neuron.get("surrogate_params") or {}),
                metrics=RunMetrics.of_run(run.path),
                name=f"{label} · seed {run.seed}" if run.seed is not None else label,
                color=palette.series(run.combination),
                legend=run.short_label if first else "",
                cell=run.combination,
            )
        )
    return entries
