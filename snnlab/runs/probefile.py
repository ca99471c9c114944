"""The probe file: one evaluation's recorded traces, as numpy arrays in an ``.npz`` archive.

Any process can read it with numpy alone, so the lab and ``snnlab watch`` show probes without importing
torch. Arrays are stored under plain keys (``a0``, ``a1``, ...) and a JSON document named ``meta`` maps them
back to ``layers[name][field]``, beside the evaluation's epoch, step, samples and labels and the
non-array fields (threshold, neuron indices), so layer names may hold any character. Pickles are never
written or read (``allow_pickle=False``). Runs recorded before this format hold ``.pt`` files, which
:func:`snnlab.runs.load_probe` still reads, with torch.
"""

from __future__ import annotations

import json
from typing import IO, Any

import numpy as np

SUFFIX = ".npz"
FORMAT = 1


def _array(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array when it is a tensor or an array; None for anything else."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, on any device
        tensor = value.detach().cpu()
        try:
            return tensor.numpy()
        except TypeError:  # bfloat16 has no numpy dtype
            return tensor.float().numpy()
    return None


def write_probe(file: IO[bytes], epoch: int, step: int, samples: list[int], labels: list[int],
                layers: dict[str, dict[str, Any]]) -> None:  # fmt: skip
    """Write one probe into the open binary ``file``."""
    arrays: dict[str, np.ndarray] = {}
    fields: dict[str, dict[str, Any]] = {}
    for name, layer in layers.items():
        fields[name] = {}
        for key, value in layer.items():
            array = _array(value)
            if array is None:
                fields[name][key] = {"value": value}
            else:
                slot = f"a{len(arrays)}"
                arrays[slot] = array
                fields[name][key] = {"array": slot}
    meta = {"format": FORMAT, "epoch": epoch, "step": step, "samples": list(samples), "labels": list(labels),
            "layers": fields}  # fmt: skip
    entries: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}  # Any: savez types its options too
    np.savez(file, **entries)


def read_probe(file: str | IO[bytes]) -> dict[str, Any]:
    """``{"epoch", "step", "samples", "labels", "layers"}`` from a probe file; layers hold numpy arrays.

    Raises ValueError (or OSError) when the file is not a probe of this format."""
    with np.load(file, allow_pickle=False) as archive:
        if "meta" not in archive.files:
            raise ValueError("no meta record: not a probe file")
        meta = json.loads(str(archive["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"probe format {meta.get('format')!r}, this snnlab reads {FORMAT}")
        layers = {
            name: {key: archive[slot["array"]] if "array" in slot else slot["value"] for key, slot in entry.items()}
            for name, entry in meta["layers"].items()
        }
    return {"epoch": meta["epoch"], "step": meta["step"], "samples": meta["samples"], "labels": meta["labels"],
            "layers": layers}  # fmt: skip
