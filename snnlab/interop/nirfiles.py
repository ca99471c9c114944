"""``snnlab export`` and ``snnlab import``: a run's weights to a ``.nir`` file, and a ``.nir`` file to a run directory.

An exported file holds the network (:func:`snnlab.interop.nirexport.to_nir`) and, in the graph's metadata, ``dt``,
what the graph leaves out, and the run's config (JSON) so that snnlab can read the file back into the same run:
the same data, training and output settings, and every layer's neuron with its surrogate. Other tools ignore it.

An imported run is a run directory as ``snnlab run`` makes one, stopped before its first epoch: ``config.yaml``, an
empty ``events.jsonl``, ``summary.json`` (status stopped) and ``checkpoints/last.pt`` with the imported weights,
a fresh optimizer and the random state a new run of that config starts with (its encoder's for the device this
machine would train on: resume it on the same kind of machine). ``snnlab run --resume DIR`` trains it
on; its checkpoint loads like any other (``snnlab.engine.checkpoint.load``). A file from elsewhere has no config:
the network's input and outputs pick the data (``bundled`` for 28x28 images or 784 inputs and 10 outputs,
``synthetic`` for other flat inputs) and everything else takes its default; ``--set`` changes any of it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import nir  # the extra: importing this module without it raises ImportError, which the CLI turns into advice

from snnlab import __version__, runs
from snnlab.config import ConfigError, apply_overrides, config_from_dict
from snnlab.engine import shapes
from snnlab.engine.files import WriteError, atomic_write

CONFIG_KEY = "snnlab_config"  # graph metadata: the run's config as JSON


class InteropError(Exception):
    """An export or import that cannot be done; the message is one line naming the problem and the fix."""


def export_run(run_path: Path, output: Path, which: str | None = None, dt: float | None = None) -> list[str]:
    """Write the network of the run in ``run_path`` (its ``best.pt``, else ``last.pt``; or ``which``) to ``output``.

    Returns notes for the user: what the file leaves out. Raises :class:`InteropError`.
    """
    from snnlab.engine import checkpoint
    from snnlab.engine.models import build_model
    from snnlab.interop.nirexport import to_nir
    from snnlab.interop.nirgraph import NIRError

    folder = Path(run_path) / runs.CHECKPOINTS_DIR
    names = [f"{which}.pt"] if which else ["best.pt", "last.pt"]
    found = next((folder / name for name in names if (folder / name).is_file()), None)
    if found is None:
        raise InteropError(f"{run_path.name} has no {' or '.join(names)} in {folder}: export a run that has reached "
                           "a checkpoint" + ("" if which != "best" else ", or pick --checkpoint last"))  # fmt: skip
    try:
        state = checkpoint.load(found)
        config = config_from_dict(state["config"], f"{found} (its config)") if state.get("config") else None
    except (checkpoint.CheckpointError, ConfigError) as exc:
        raise InteropError(str(exc)) from None
    if config is None:
        config = config_from_dict(runs.read_config(run_path), str(Path(run_path) / runs.CONFIG_FILE))
    facts = shapes.data_shape(config.data.dataset, config.data.synthetic.model_dump())
    try:
        model = build_model(config.layer_specs(), facts.input_shape)
        model.load_state_dict(state["model"])
        graph, dropped = to_nir(model, config.layer_specs(), dt)
    except (NIRError, ValueError, RuntimeError) as exc:
        raise InteropError(str(exc).strip().splitlines()[0]) from None
    saved = config.to_dict()
    del saved["model"]["layers"]  # the graph is the network; the rest is what NIR has no place for
    graph.metadata = {
        **graph.metadata,  # dt
        "producer": f"snnlab {__version__}",
        "source": f"{Path(run_path).name}/{runs.CHECKPOINTS_DIR}/{found.name} (epoch {state['progress']['epoch']})",
        "left_out": "; ".join(dropped) or "nothing",
        CONFIG_KEY: json.dumps(saved),
    }
    _write(output, lambda path: nir.write(path, graph))
    return dropped


def _write(output: Path, write: Any) -> None:
    """Write a file through ``write(path)`` into a temporary file beside ``output``, then put it in place."""
    output = Path(output)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InteropError(f"cannot write {output}: {exc.strerror or exc}") from None


def import_file(path: Path, output: Path, overrides: list[str] | None = None, dt: float | None = None) -> list[str]:
    """Make the run directory ``output`` (it must not exist) from the NIR file ``path``; returns notes for the user.

    Raises :class:`InteropError` (unreadable file, a network snnlab cannot build) or ConfigError (a bad --set).
    """
    import torch

    from snnlab.engine import checkpoint
    from snnlab.engine.models import build_model
    from snnlab.engine.session import Progress, make_optimizer, make_scheduler
    from snnlab.interop.nirgraph import SNNTORCH_DT, NIRError
    from snnlab.interop.nirimport import from_nir

    path = Path(path)
    if not path.is_file():
        raise InteropError(f"{path}: no such file")
    try:
        # NIR's own type check refuses graphs traced with a batch axis (snnTorch without ignore_dims, Norse);
        # from_nir checks every shape itself and drops such an axis.
        graph = nir.read(path, type_check=False)
    except Exception as exc:  # h5py and nir raise many kinds for a file that is not NIR
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InteropError(f"{path}: not a NIR file snnlab can read ({first[:200]})") from None
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    notes = []
    if dt is None:
        dt = float(meta["dt"]) if "dt" in meta else SNNTORCH_DT
        if "dt" not in meta:
            notes.append(f"the file names no dt: read with snnTorch's {SNNTORCH_DT:g} s (give another with --dt)")
    try:
        imported = from_nir(graph, dt)
    except NIRError as exc:
        raise InteropError(f"{path.name}: {exc}") from None
    notes += imported.notes
    saved = _saved_config(meta)
    data = saved if saved is not None else _default_config(imported, path)
    data.setdefault("model", {})["layers"] = imported.layers
    apply_overrides(data, overrides or [])
    dataset = data.get("data", {}).get("dataset", "bundled")
    if imported.layers[0]["type"] == "linear" and dataset in shapes.IMAGE_SETS:
        imported.flatten_first()
    config = config_from_dict(data, path.name)
    facts = shapes.data_shape(config.data.dataset, config.data.synthetic.model_dump())
    if tuple(facts.input_shape) != tuple(imported.input_shape) and not (
        len(imported.input_shape) == 1 and imported.input_shape[0] == _size(facts.input_shape)
    ):
        raise InteropError(f"{path.name}: the network takes {list(imported.input_shape)} per step but "
                           f"{config.data.dataset} gives {list(facts.input_shape)}; pick data with --set "
                           "data.dataset=...")  # fmt: skip
    torch.manual_seed(config.train.seed)  # the random state a new run of this config starts from
    try:
        model = build_model(config.layer_specs(), facts.input_shape)
        model.load_state_dict(imported.state_dict())
    except (ValueError, RuntimeError) as exc:
        raise InteropError(f"{path.name}: {str(exc).strip().splitlines()[0]}") from None
    optimizer = make_optimizer(model, config.train, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, config.train)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler else None,
        "progress": vars(Progress()).copy(),
        "rng": checkpoint.rng_state(),
        "encoder_rng": torch.Generator(device=_device(config)).manual_seed(config.train.seed).get_state(),
        "config": config.to_dict(),
    }
    try:
        run_dir = runs.RunDir.create_at(output, config.to_dict())
    except runs.RunDirError as exc:
        raise InteropError(str(exc)) from None
    try:
        checkpoint.save(run_dir.checkpoints_dir / "last.pt", state)
        summary = {"name": run_dir.name, "status": "stopped", "started": time.time(), "epochs_done": 0,
                   "epochs": config.train.epochs, "steps": 0, "dataset": config.data.dataset,
                   "decoder": config.train.decoder, "imported_from": str(path)}  # fmt: skip
        with atomic_write(run_dir.summary_path) as f:
            f.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    except WriteError as exc:
        raise InteropError(str(exc)) from None
    return notes


def _device(config: Any) -> Any:
    """The device a run of ``config`` trains on here: its encoder's random state is that device's kind (a CUDA
    generator's state does not fit a CPU one, so a run imported on one kind of machine resumes on the same kind)."""
    from snnlab.engine.session import TrainingError, pick_device

    try:
        return pick_device(config.train.device)
    except TrainingError:
        return "cpu"


def _size(shape: tuple[int, ...]) -> int:
    total = 1
    for v in shape:
        total *= v
    return total


def _saved_config(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The config snnlab wrote into the graph's metadata, if it did."""
    raw = meta.get(CONFIG_KEY)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _default_config(imported: Any, path: Path) -> dict[str, Any]:
    """A config for a graph from elsewhere: data that fits its input and outputs, defaults for the rest."""
    shape, layers = imported.input_shape, imported.layers
    outputs = layers[-1].get("out_features") or layers[-1].get("out_channels")
    data: dict[str, Any]
    if (shape in ((1, 28, 28), (784,))) and outputs == 10:
        data = {"dataset": "bundled"}
    elif len(shape) == 1 and isinstance(outputs, int) and outputs >= 2:
        data = {"dataset": "synthetic", "encoder": "none", "synthetic": {"inputs": shape[0], "classes": outputs}}
    else:
        data = {}  # no dataset fits: the check after --set names the shapes
    train: dict[str, Any] = {}
    if layers[-1]["neuron"]["type"] == "expon":
        train["decoder"] = "membrane"  # a readout that never fires is read by its membrane
    return {"description": f"imported from {path.name}"[:200], "data": data, "model": {}, "train": train,
            "run": {"name": "imported"}}  # fmt: skip
