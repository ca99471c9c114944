"""Build the bundled Fashion-MNIST sample shipped as ``snnlab/data/fashion_mnist_sample.npz``.

The sample lets ``snnlab`` train something real with no download: 5,000 training images (500 per class)
taken from the Fashion-MNIST train file and 1,000 test images (100 per class) from the test file,
chosen with a fixed seed so that rebuilding gives the same file.

Usage::

    python scripts/build_bundled.py [--source /usr/share/datasets/fashion-mnist] [--seed 0]

The default source is Debian's ``fashion-mnist`` package; any folder holding the four original
``*-idx?-ubyte.gz`` files works.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run from a bare checkout too, reading IDX files with the engine's parser

from snnlab.engine.data import read_idx  # noqa: E402

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUTPUT = REPO_ROOT / "snnlab" / "data" / "fashion_mnist_sample.npz"
NUM_CLASSES = 10
SOURCE_NOTE = (
    "Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017), copyright (c) 2017 Zalando SE, MIT license, "
    "https://github.com/zalandoresearch/fashion-mnist. Class-balanced seeded sample built by "
    "scripts/build_bundled.py."
)


def balanced_sample(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` samples of each class, drawn without replacement, in shuffled order."""
    picks = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(NUM_CLASSES)]
    index = np.concatenate(picks)
    rng.shuffle(index)
    return index


def build(source: Path, output: Path, seed: int = 0, train_per_class: int = 500, test_per_class: int = 100) -> None:
    """Sample ``*_per_class`` images of each class from each split of ``source`` and write ``output``."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, prefix, per_class in (("train", "train", train_per_class), ("test", "t10k", test_per_class)):
        images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz")
        index = balanced_sample(labels, per_class, rng)
        arrays[f"{split}_images"] = np.ascontiguousarray(images[index])  # uint8 [N, 28, 28]
        arrays[f"{split}_labels"] = labels[index].astype(np.uint8)  # uint8 [N]; 10 classes fit a byte
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, **arrays, source=np.array(SOURCE_NOTE))
    sizes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB): {sizes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with the IDX .gz files")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the .npz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    args = parser.parse_args()
    build(args.source, args.output, args.seed)


if __name__ == "__main__":
    main()
