"""The ``snnlab`` command. Thin: parses, calls config and engine, maps failures to exit codes.

Exit codes: 0 ok, 1 the run failed, 2 usage / config / data error, 130 interrupted (Ctrl-C).
Errors go to stderr as one line; ``--debug`` shows the traceback as well.

Under ``torchrun --nproc_per_node N -m snnlab run PRESET`` every rank trains its share of each batch;
rank 0 alone creates and writes the run directory and prints progress.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Annotated

import typer

from snnlab import __version__


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


app = typer.Typer(
    name="snnlab",
    help="A terminal lab for training spiking neural networks with surrogate gradients.",
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
runs_app = typer.Typer(help="List and inspect run directories.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")

_debug = False


def _line(text: str, stream=None) -> None:
    """Write one line with a single write: under torchrun every rank shares the terminal, and with unbuffered
    streams (PYTHONUNBUFFERED) another rank's output could otherwise land between a line and its newline."""
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def fail(message: str, code: Exit = Exit.USAGE) -> typer.Exit:
    """Print one error line and return the exit to raise."""
    _line(f"snnlab: error: {message}", sys.stderr)
    if _debug:
        traceback.print_exc()
    return typer.Exit(int(code))


def _version(value: bool) -> None:
    if value:
        print(f"snnlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    global _debug
    _debug = debug
    if ctx.invoked_subcommand is None:
        _open_lab(None, [])  # bare `snnlab` opens the lab


@app.command()
def run(
    preset: Annotated[str | None, typer.Argument(help="Preset name (see `snnlab presets`) or YAML file.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a config value, e.g. train.lr=1e-3.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue a stopped run (its directory or name).")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only epoch lines and the summary.")] = False,
) -> None:
    """Train a network from a preset, headless."""
    from snnlab import config as cfgmod
    from snnlab import runs
    from snnlab.engine import distributed

    overrides = list(set_ or [])
    if device:
        overrides.append(f"train.device={device}")
    main_rank = distributed.from_env().is_main  # torchrun: only rank 0 writes the run directory
    try:
        if resume:
            run_dir, cfg, ckpt = _resume_target(resume, preset, overrides, write=main_rank)
        elif preset:
            cfg = cfgmod.load_config(cfgmod.find_preset(preset), overrides)
            run_dir, ckpt = None, None  # created by _train once the run can start
        else:
            raise cfgmod.ConfigError("give a preset (see `snnlab presets`) or --resume RUN")
    except (cfgmod.ConfigError, runs.RunDirError) as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(int(_train(cfg, run_dir, ckpt, quiet)))


def _resume_target(resume: str, preset: str | None, overrides: list[str], write: bool = True):
    from snnlab import config as cfgmod
    from snnlab import runs
    from snnlab.engine import checkpoint

    path = runs.find_run(Path("runs"), resume) if not Path(resume).is_dir() else Path(resume)
    run_dir = runs.RunDir.open(path)
    source = cfgmod.find_preset(preset) if preset else run_dir.config_path
    cfg = cfgmod.load_config(source, overrides)
    ckpt = run_dir.checkpoints_dir / "last.pt"
    try:
        state = checkpoint.load(ckpt)
    except checkpoint.CheckpointError as exc:
        raise cfgmod.ConfigError(str(exc)) from None
    done = state["progress"]["epoch"]
    if done >= cfg.train.epochs and state["progress"]["batch"] == 0:
        raise cfgmod.ConfigError(
            f"{run_dir.path.name} already finished {done} of {cfg.train.epochs} epochs; "
            f"continue with --set train.epochs={done + 1}"
        )
    if write:
        # Atomically: under torchrun the other ranks may be reading this file right now.
        tmp = run_dir.config_path.with_name(f".{run_dir.config_path.name}.{os.getpid()}.tmp")
        tmp.write_text(cfgmod.dump_yaml(cfg))
        os.replace(tmp, run_dir.config_path)
    return run_dir, cfg, ckpt


def _train(cfg, run_dir, ckpt, quiet: bool) -> Exit:
    from snnlab import runs
    from snnlab.console import ConsoleSink, print_summary
    from snnlab.engine import distributed
    from snnlab.engine.trainer import TrainingError, prepare, train

    ctx = distributed.setup(cpu=cfg.train.device == "cpu")
    # The pre-flight (device, data, model) runs before a new run directory exists: a run that cannot start
    # leaves none behind.
    try:
        session = prepare(cfg, ctx)
        if run_dir is None and ckpt is None and ctx.is_main:
            run_dir = runs.RunDir(cfg.run.runs_dir, cfg.run.name, cfg.to_dict())
    except (TrainingError, runs.RunDirError) as exc:
        distributed.teardown(together=False)
        _line(f"snnlab: error{'' if ctx.is_main else f' (rank {ctx.rank})'}: {exc}", sys.stderr)
        return Exit.USAGE if getattr(exc, "reason", "config") in ("data", "config", "device") else Exit.FAILED
    stop = threading.Event()
    first_interrupt: float | None = None

    def on_sigint(signum, frame):
        nonlocal first_interrupt
        now = time.monotonic()
        # torchrun passes the terminal's Ctrl-C on to its workers, so one press can arrive twice.
        if first_interrupt is not None and not (ctx.distributed and now - first_interrupt < 2.0):
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        if first_interrupt is None:
            first_interrupt = now
            stop.set()
            if ctx.is_main:
                print("\nsnnlab: stopping at the next batch (Ctrl-C again to stop at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    # Rank 0 (or a plain run) writes the run directory and shows progress; other ranks train silently.
    run_dir = run_dir if ctx.is_main else None
    writer = runs.RunWriter(run_dir) if run_dir is not None else None
    console = ConsoleSink(quiet=quiet) if run_dir is not None else None
    result = None
    try:
        result = train(
            cfg,
            [sink for sink in (writer, console) if sink is not None],
            stop=stop,
            run_dir=run_dir.path if run_dir is not None else None,
            resume=ckpt,
            run_name=run_dir.name if run_dir is not None else None,
            ctx=ctx,
            session=session,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        for sink in (console, writer):
            if sink is not None:
                sink.close()
        distributed.teardown(together=result is not None and result.status != "failed")
    if result.status == "failed":
        _line(f"snnlab: error{'' if ctx.is_main else f' (rank {ctx.rank})'}: {result.error}", sys.stderr)
        if run_dir is not None:
            _line(f"run directory: {run_dir.path}", sys.stderr)
        return Exit.USAGE if result.reason in ("data", "config", "device") else Exit.FAILED
    if run_dir is not None:
        try:
            print_summary(runs.read_events(run_dir.path))
            print(f"run directory: {run_dir.path}")
            if result.status == "stopped":
                print(f"stopped; continue with: snnlab run --resume {run_dir.path}", file=sys.stderr)
        except BrokenPipeError:  # the reader is gone (`| head`); the run itself finished and is on disk
            _discard_output()
    return Exit.INTERRUPTED if result.status == "stopped" else Exit.OK


def _discard_output() -> None:
    """Point stdout and stderr at /dev/null, so that flushing them at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


@app.command()
def sweep(
    preset: Annotated[str, typer.Argument(help="Preset name (see `snnlab presets`) or YAML file.")],
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", "-g", help="Values to try, e.g. model.neuron.surrogate=atan,sigmoid (repeatable)."),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs per combination (train.seed, +1, ...).")] = 1,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Runs at the same time.")] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a config value in every run.")] = None,
) -> None:
    """Run every combination of --grid values times --seeds; write summary.csv and print a table."""
    from snnlab import config as cfgmod
    from snnlab import sweep as sweepmod

    try:
        path = cfgmod.find_preset(preset)
        parsed = sweepmod.parse_grid(list(grid or []))
        result = sweepmod.run_sweep(path, parsed, seeds, list(set_ or []), workers)
    except cfgmod.ConfigError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot create the sweep directory: {exc}") from None
    print()
    print(sweepmod.table(list(parsed), result.rows))
    print(f"sweep directory: {result.sweep_dir}")
    started = [t for t in result.trials if t.returncode is not None]
    if result.interrupted:
        done = sum(t.returncode == 0 for t in started)
        print(f"snnlab: sweep interrupted: {done} of {len(result.trials)} runs finished; the summary covers "
              "those (stopped runs can be continued with snnlab run --resume)", file=sys.stderr)  # fmt: skip
        raise typer.Exit(int(Exit.INTERRUPTED))
    failed = [t for t in started if t.returncode not in (0, sweepmod.STOPPED) or t.run_dir is None]
    for trial in failed:
        print(f"snnlab: error: {trial.name} failed: {trial.error or f'exit {trial.returncode}'}", file=sys.stderr)
    raise typer.Exit(int(Exit.FAILED if failed else Exit.OK))


@app.command()
def presets() -> None:
    """List the bundled presets."""
    from snnlab import config as cfgmod

    rows = cfgmod.list_presets()
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
) -> None:
    """List runs (name, status, dataset, best accuracy, epochs, time)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from snnlab import runs
    from snnlab.console import runs_table
    from snnlab.sweep import list_sweeps, run_count

    infos = runs.list_runs(runs_dir)
    sweeps = list_sweeps(runs_dir)
    if not infos and not sweeps:
        print(f"no runs in {runs_dir}/ yet; start one with: snnlab run quickstart")
        return
    if infos:
        Console().print(runs_table(infos))
    if sweeps:
        print("sweeps (snnlab runs show SWEEP for the summary, snnlab watch SWEEP for the curves):")
        for path in sweeps:
            print(f"  {path.name}  {run_count(path)} runs")


@runs_app.command("show")
def runs_show(
    run_name: Annotated[str, typer.Argument(help="Run directory, name or unique prefix.")],
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
) -> None:
    """Show one run: config, metrics and curves; or a sweep's summary."""
    from snnlab import runs
    from snnlab import sweep as sweepmod
    from snnlab.config import ConfigError
    from snnlab.console import show_run

    path = _find_run(runs_dir, run_name)
    if not sweepmod.is_sweep_dir(path):
        show_run(path)
        return
    try:
        keys, rows = sweepmod.current_summary(path)
    except (ConfigError, runs.RunDirError) as exc:
        raise fail(str(exc)) from None
    print(f"{path.name}  ({path})")
    print(sweepmod.table(keys, rows))


def _find_run(runs_dir: Path, run_name: str) -> Path:
    """The run directory a user named (path, folder name or unique prefix), or a one-line error."""
    from snnlab import runs

    try:
        return runs.find_run(runs_dir, run_name)
    except runs.RunDirError as exc:
        raise fail(str(exc)) from None


@app.command()
def lab(
    preset: Annotated[str | None, typer.Argument(help="Preset name or YAML file (default: quickstart).")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a config value, e.g. train.lr=1e-3.")
    ] = None,
) -> None:
    """Open the lab (the default): build a network, train it, look inside, compare surrogates."""
    _open_lab(preset, list(set_ or []))


@app.command()
def watch(
    run_name: Annotated[str, typer.Argument(help="Run directory or sweep folder: path, name or unique prefix.")],
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
) -> None:
    """Follow a run directory, live or finished, in the lab's Training and Inside panes; a sweep folder
    opens in the Surrogates pane with every run's curves overlaid."""
    from snnlab.sweep import is_sweep_dir

    path = _find_run(runs_dir, run_name)
    if is_sweep_dir(path):
        _run_lab(sweep=path, runs_dir=path.parent)
    else:
        _run_lab(watch=path, runs_dir=runs_dir)


def _open_lab(preset: str | None, overrides: list[str]) -> None:
    from snnlab import config as cfgmod

    try:
        cfg = cfgmod.load_config(cfgmod.find_preset(preset), overrides) if preset or overrides else None
        if cfg is None and overrides:
            raise cfgmod.ConfigError("--set needs a preset: snnlab lab PRESET --set KEY=VALUE")
    except cfgmod.ConfigError as exc:
        raise fail(str(exc)) from None
    _run_lab(preset=preset, config=cfg)


def _run_lab(**options) -> None:
    from snnlab import config as cfgmod
    from snnlab import runs

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise fail("the lab needs an interactive terminal; for headless training use `snnlab run PRESET`")
    from snnlab.tui.app import make_app

    try:
        lab_app = make_app(**options)
    except (cfgmod.ConfigError, runs.RunDirError) as exc:
        raise fail(str(exc)) from None
    lab_app.run()


def main() -> None:
    entry = app
    torchrun_worker = "TORCHELASTIC_RUN_ID" in os.environ
    if torchrun_worker:
        # Started by torchrun: an uncaught error on any rank is recorded for the launcher to show.
        from torch.distributed.elastic.multiprocessing.errors import record

        entry = record(app)
    try:
        entry()
        code: int | str | None = 0
    except KeyboardInterrupt:
        print("snnlab: interrupted", file=sys.stderr)
        code = int(Exit.INTERRUPTED)
    except SystemExit as exc:  # typer always ends this way
        code = exc.code
    except Exception:  # an unexpected error; `record` has already written it for torchrun
        if not torchrun_worker:
            raise
        traceback.print_exc()
        code = 1
    if torchrun_worker and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _leave_without_finalizing(code)
    sys.exit(code)


def _leave_without_finalizing(code: int | str | None) -> None:
    """End a torchrun worker once its output is flushed, skipping the interpreter's finalization.

    Gloo's worker threads drop their last references to finished collectives (and so to Python tensors)
    shortly after the collective completes. If that happens while the interpreter is shutting down, the
    thread cannot take the GIL, and the process aborts with "terminate called without an active exception"
    after the run had finished and was saved (caught under gdb in the two-process test on this machine).
    Everything this process writes is closed by now, so it leaves without finalizing.
    """
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)
