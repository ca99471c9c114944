"""Do the tutorial presets learn what the tutorials' own code learns? One epoch each, several seeds a side.

    python benchmarks/tutorial_accuracy.py                       # all, 10 seeds a side
    python benchmarks/tutorial_accuracy.py --seeds 5 --only snntorch-tutorial5
    python benchmarks/tutorial_accuracy.py --json /tmp/tutacc/results.json   # resumable: done seeds are kept

Run it with snnlab's interpreter (it starts ``snnlab run`` with ``sys.executable``). For every comparison
and seed it starts two fresh processes on the same data (Fashion-MNIST's idx files, by default Debian's
copy in /usr/share/datasets/fashion-mnist):

- ``snnlab``: ``snnlab run <preset> --set data.dataset=fashion-mnist --set train.seed=N`` (plus
  ``data.data_dir`` when given), read back from the run directory's ``summary.json``: the final test
  accuracy, decoded as the preset says (``rate_first`` for both tutorials: the most output spikes, a tie
  to the lowest class, which is what ``max(1)`` on spike counts returns).
- ``tutorial``: the tutorial's own training loop in the peers' venv (``--peer-python``, default
  /work/bench-venv/bin/python; snnTorch 1.0, SpikingJelly 2.0), one epoch, then its test accuracy over
  all 10,000 test images. This file holds that code too (``--worker``), written after the tutorials:

  * ``snntorch-tutorial5``: snnTorch tutorial 5. A ``Net`` of ``nn.Linear(784, 1000)``, ``snn.Leaky(0.95)``,
    ``nn.Linear(1000, 10)``, ``snn.Leaky(0.95)`` stepped 25 times on the same image; torchvision's
    transform chain (Resize 28, Grayscale, ToTensor, Normalize(0, 1)); ``DataLoader(batch 128,
    shuffle, drop_last=True)``; the loss summed over steps of ``nn.CrossEntropyLoss`` on the output
    membrane; ``Adam(lr=5e-4, betas=(0.9, 0.999))``; test accuracy from ``spk.sum(0).max(1)`` over a
    ``drop_last=False`` loader. Left out: the tutorial also pushes one test batch through the network
    after every training step, only to print and plot a test loss; it changes no weight, so it is skipped.
  * ``spikingjelly-lif-fc``: ``activation_based/examples/lif_fc_mnist.py`` as SpikingJelly 2.0.0 ships
    it. ``layer.Flatten``, ``layer.Linear(784, 10, bias=False)``, ``neuron.LIFNode(tau=2.0,
    surrogate_function=surrogate.ATan())`` in single-step mode (the example names ATan; LIFNode's own
    default is Sigmoid), a ``PoissonEncoder`` called afresh at each of T=100 steps,
    ``DataLoader(batch 64, shuffle, drop_last=True)`` over ``ToTensor()`` images, ``F.mse_loss`` of the
    firing rate against the one-hot label, ``Adam(lr=1e-3)``, ``functional.reset_net`` after each batch;
    test accuracy from ``out_fr.argmax(1)`` over an unshuffled loader (Poisson input at test time too).
    Changed: 1 epoch instead of the example's 100 (the preset's own epoch count); the loaders read in
    the main process (the example asks for 4 workers and pinned memory: the same batches); the AMP and
    SGD options, tensorboard writer, checkpoints and the closing firing-rate plot are left out.

  Each side seeds ``torch.manual_seed(N)`` once before it builds anything, so the two sides do not share
  weights or batch order: what is compared is the spread over seeds, not runs.

The verdict (RULE below): the two sides are "within seed spread" when the difference of their mean
accuracies is at most the pooled standard deviation of one run, sqrt((s_a^2 + s_b^2) / 2): the gap
between the libraries is no larger than the gap between two seeds of either. Welch's t is printed too.

``fashion-csnn`` is left out on purpose: it is not snnTorch tutorial 6 (the tutorial pools the
convolution's currents before its Leaky neurons, with beta 0.5, fast_sigmoid slope 25, T=50,
mse_count_loss(0.8, 0.2), Adam 1e-2; the preset spikes before pooling, beta 0.9, ATan, T=10,
cross-entropy on the membrane, Adam 1e-3), so there is no tutorial of its to run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
PEER_PYTHON = "/work/bench-venv/bin/python"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
RULE = "within seed spread when |mean(snnlab) - mean(tutorial)| <= pooled SD = sqrt((s_snnlab^2 + s_tutorial^2) / 2)"

# comparison -> (preset file, --set overrides on snnlab's side beyond dataset / seed)
COMPARISONS = {
    "snntorch-tutorial5": ("presets/snntorch-tutorial5.yaml", []),
    "spikingjelly-lif-fc": ("presets/spikingjelly-lif-fc.yaml", []),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the tutorials
# These run in the peers' venv (--worker) and import nothing from snnlab.


def _fashion_root(source: Path) -> str:
    """A torchvision root whose FashionMNIST/raw holds unpacked copies of the idx files in ``source``
    (torchvision looks for the unpacked names and, finding them, downloads nothing)."""
    root = Path(tempfile.gettempdir()) / "tutacc-data"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        target = raw / name
        if not target.exists():
            packed = source / f"{name}.gz"
            data = gzip.open(packed).read() if packed.exists() else (source / name).read_bytes()
            part = target.with_suffix(".part")
            part.write_bytes(data)
            part.replace(target)
    return str(root)


def tutorial5(seed: int, source: Path) -> dict:
    import snntorch as snn
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    batch_size, num_steps, beta = 128, 25, 0.95
    transform = transforms.Compose(
        [transforms.Resize((28, 28)), transforms.Grayscale(), transforms.ToTensor(), transforms.Normalize((0,), (1,))]
    )
    root = _fashion_root(source)
    train_set = datasets.FashionMNIST(root, train=True, download=False, transform=transform)
    test_set = datasets.FashionMNIST(root, train=False, download=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 1000)
            self.lif1 = snn.Leaky(beta=beta)
            self.fc2 = nn.Linear(1000, 10)
            self.lif2 = snn.Leaky(beta=beta)

        def forward(self, x):
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            spikes, membranes = [], []
            for _ in range(num_steps):
                spk1, mem1 = self.lif1(self.fc1(x), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                spikes.append(spk2)
                membranes.append(mem2)
            return torch.stack(spikes), torch.stack(membranes)

    net = Net()
    loss = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999))

    start = time.perf_counter()
    for data, targets in train_loader:
        net.train()
        _, mem_rec = net(data.view(batch_size, -1))
        loss_val = torch.zeros(1)
        for step in range(num_steps):
            loss_val += loss(mem_rec[step], targets)
        optimizer.zero_grad()
        loss_val.backward()
        optimizer.step()
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    correct = total = 0
    test_loader = DataLoader(test_set, batch_size=batch_size, shuffle=True, drop_last=False)
    with torch.no_grad():
        net.eval()
        for data, targets in test_loader:
            spk, _ = net(data.view(data.size(0), -1))
            _, predicted = spk.sum(dim=0).max(1)
            total += targets.size(0)
            correct += (predicted == targets).sum().item()
    return {
        "accuracy": correct / total,
        "test_images": total,
        "train_s": train_s,
        "test_s": time.perf_counter() - start,
    }


def lif_fc(seed: int, source: Path) -> dict:
    import torch
    import torch.nn.functional as F
    import torchvision
    from spikingjelly.activation_based import encoding, functional, layer, neuron, surrogate
    from torch import nn
    from torch.utils import data

    torch.manual_seed(seed)
    batch_size, T, tau, lr = 64, 100, 2.0, 1e-3
    root = _fashion_root(source)
    to_tensor = torchvision.transforms.ToTensor()
    train_set = torchvision.datasets.FashionMNIST(root, train=True, transform=to_tensor, download=False)
    test_set = torchvision.datasets.FashionMNIST(root, train=False, transform=to_tensor, download=False)
    train_loader = data.DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)
    test_loader = data.DataLoader(test_set, batch_size=batch_size, shuffle=False, drop_last=False)

    net = nn.Sequential(
        layer.Flatten(),
        layer.Linear(28 * 28, 10, bias=False),
        neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan()),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    encoder = encoding.PoissonEncoder()

    start = time.perf_counter()
    net.train()
    for img, label in train_loader:
        optimizer.zero_grad()
        label_onehot = F.one_hot(label, 10).float()
        out_fr = 0.0
        for _ in range(T):
            out_fr += net(encoder(img))
        out_fr = out_fr / T
        F.mse_loss(out_fr, label_onehot).backward()
        optimizer.step()
        functional.reset_net(net)
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for img, label in test_loader:
            out_fr = 0.0
            for _ in range(T):
                out_fr += net(encoder(img))
            out_fr = out_fr / T
            correct += (out_fr.argmax(1) == label).float().sum().item()
            total += label.numel()
            functional.reset_net(net)
    return {
        "accuracy": correct / total,
        "test_images": total,
        "train_s": train_s,
        "test_s": time.perf_counter() - start,
    }


WORKERS = {"snntorch-tutorial5": tutorial5, "spikingjelly-lif-fc": lif_fc}


# ---------------------------------------------------------------------------------------------- one seed


def _last_json_line(text: str) -> dict | None:
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def _env(args) -> dict:
    # One thread a process by default: on a shared CPU, torch's second OpenMP thread waits for a core
    # another process holds, and a step of the tutorial-5 network took seconds instead of a tenth of one.
    return {**os.environ, "OMP_NUM_THREADS": str(args.threads)} if args.threads else dict(os.environ)


def run_tutorial(name: str, seed: int, args) -> dict:
    cmd = [args.peer_python, str(Path(__file__).resolve()), "--worker", name, "--seed", str(seed)]
    cmd += ["--data-dir", str(args.data_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=_env(args))
    row = _last_json_line(proc.stdout)
    if proc.returncode != 0 or row is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"tutorial {name} seed {seed}: exit {proc.returncode}: {tail}")
    row["seconds"] = row["train_s"] + row["test_s"]
    return row


def run_snnlab(name: str, seed: int, args) -> dict:
    preset, extra = COMPARISONS[name]
    runs_dir = Path(tempfile.mkdtemp(prefix=f"tutacc-{name}-s{seed}-"))
    sets = ["data.dataset=fashion-mnist", f"train.seed={seed}", f"run.runs_dir={runs_dir}", f"run.name={name}"]
    if args.snnlab_data_dir:
        sets.append(f"data.data_dir={args.snnlab_data_dir}")
    cmd = [sys.executable, "-m", "snnlab", "run", str(ROOT / preset), "-q"]
    for item in sets + extra:
        cmd += ["--set", item]
    env = {**_env(args), "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
        summaries = list(runs_dir.glob("*/summary.json"))
        if proc.returncode != 0 or not summaries:
            tail = ((proc.stderr + proc.stdout).strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"snnlab {name} seed {seed}: exit {proc.returncode}: {tail}")
        summary = json.loads(summaries[0].read_text())
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    if summary.get("status") != "completed" or summary.get("epochs_done") != 1:
        raise RuntimeError(f"snnlab {name} seed {seed}: run {summary.get('status')}")
    return {
        "accuracy": summary["test_accuracy"],
        "decoder": summary.get("decoder"),
        "dataset": summary.get("dataset"),
        "seconds": summary["wall_time"],  # the trainer's wall time: the epoch plus its test evaluation
    }


# ---------------------------------------------------------------------------------------------- table


def stats(values: list[float]) -> dict:
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else float("nan"),
        "min": min(values),
        "max": max(values),
    }


def verdict(a: dict, b: dict) -> dict:
    diff = a["mean"] - b["mean"]
    pooled = math.sqrt((a["sd"] ** 2 + b["sd"] ** 2) / 2)
    se = math.sqrt(a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"])
    return {
        "diff": diff,
        "pooled_sd": pooled,
        "welch_t": diff / se if se > 0 else float("nan"),
        "ranges_overlap": a["min"] <= b["max"] and b["min"] <= a["max"],
        "within": abs(diff) <= pooled,
    }


def table(results: dict) -> str:
    head = (
        "| comparison | side | seeds | mean | SD | min - max | s / epoch (+ test) |\n|---|---|---:|---:|---:|---:|---:|"
    )
    rows, verdicts = [head], []
    for name in COMPARISONS:
        sides = results.get(name, {})
        summary = {}
        for side in ("snnlab", "tutorial"):
            done = sides.get(side, {})
            if not done:
                continue
            acc = stats([r["accuracy"] * 100 for r in done.values()])
            secs = statistics.median(r["seconds"] for r in done.values())
            summary[side] = acc
            rows.append(
                f"| {name} | {side} | {acc['n']} | {acc['mean']:.2f}% | {acc['sd']:.2f} | "
                f"{acc['min']:.2f} - {acc['max']:.2f} | {secs:.0f} |"
            )
        if len(summary) == 2 and min(s["n"] for s in summary.values()) > 1:
            v = verdict(summary["snnlab"], summary["tutorial"])
            word = "within seed spread" if v["within"] else "NOT within seed spread"
            verdicts.append(
                f"- {name}: difference of means {v['diff']:+.2f} points, pooled SD {v['pooled_sd']:.2f}, "
                f"Welch t {v['welch_t']:+.2f}, ranges {'overlap' if v['ranges_overlap'] else 'do not overlap'}: "
                f"**{word}**"
            )
    return "\n".join(rows) + "\n\n" + "\n".join(verdicts)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}"


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 on each side (default 10)")
    p.add_argument("--only", default="", help="comma-separated comparisons, e.g. snntorch-tutorial5")
    p.add_argument("--side", choices=("both", "snnlab", "tutorial"), default="both")
    p.add_argument("--json", type=Path, help="results file: read first (done seeds are skipped), rewritten per seed")
    p.add_argument("--data-dir", type=Path, default=DEBIAN_FASHION, help="folder of Fashion-MNIST's idx(.gz) files")
    p.add_argument("--snnlab-data-dir", help="data.data_dir for snnlab (default: its own lookup, Debian's copy)")
    p.add_argument("--peer-python", default=PEER_PYTHON, help="interpreter with snnTorch and SpikingJelly")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every run (0: leave as is)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.seed, args.data_dir)), flush=True)
        return 0
    names = [n for n in args.only.split(",") if n] or list(COMPARISONS)
    unknown = [n for n in names if n not in COMPARISONS]
    if unknown:
        log(f"error: unknown comparison {', '.join(unknown)}; choose from {', '.join(COMPARISONS)}")
        return 2
    results = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    sides = ("snnlab", "tutorial") if args.side == "both" else (args.side,)
    runners = {"snnlab": run_snnlab, "tutorial": run_tutorial}
    for seed in range(args.seeds):  # seeds outermost, so a partial run has every comparison at some seeds
        for name in names:
            for side in sides:
                done = results.setdefault(name, {}).setdefault(side, {})
                if str(seed) in done:
                    continue
                log(f"{name:20} {side:8} seed {seed} ...")
                try:
                    row = runners[side](name, seed, args)
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    log(f"  failed: {error}")
                    continue
                done[str(seed)] = row
                log(f"  {row['accuracy'] * 100:.2f}%  {row['seconds']:.0f} s")
                if args.json:
                    part = args.json.with_suffix(".part")
                    part.write_text(json.dumps(results, indent=1))
                    part.replace(args.json)
    print(f"Machine: {machine()}\n")
    print(table(results))
    print(f"\nRule: {RULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
