"""The ``snnlab`` command. Thin: parses, calls config and engine, maps failures to exit codes.

Exit codes: 0 ok, 1 the run failed or the lab crashed, 2 usage / config / data error, 130 interrupted (Ctrl-C).
Errors go to stderr as one line; ``--debug`` shows the traceback as well. Output piped into a reader that
stops early (``| head``) ends the command quietly, with status 1 as click and Python's docs have it.

Under ``torchrun --nproc_per_node N -m snnlab run PRESET`` every rank trains its share of each batch;
rank 0 alone creates and writes the run directory and prints progress.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from snnlab import __version__
from snnlab.engine.resume import RESUMABLE  # torch-free: the --resume help lists it
from snnlab.exitcodes import Exit

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

# The --set of the commands that load one config (`snnlab sweep` has its own: it applies to every run).
Overrides = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override a config value, e.g. train.lr=1e-3.")
]
TensorBoardFlag = Annotated[
    bool,
    typer.Option(
        "--tensorboard",
        help="Also write TensorBoard logs to RUN/tensorboard/ (adds tensorboard to run.loggers; needs "
        'pip install "snnlab\\[tensorboard]").',
    ),
]
KeymapFile = Annotated[
    Path | None,
    typer.Option(
        "--keymap",
        help="YAML file of binding ids and keys (default: $XDG_CONFIG_HOME/snnlab/keymap.yaml, if it exists).",
    ),
]


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
        _open_lab(None, [], None)  # bare `snnlab` opens the lab


@app.command()
def run(
    preset: Annotated[str | None, typer.Argument(help="Preset name (see `snnlab presets`) or YAML file.")] = None,
    set_: Overrides = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Continue a stopped or killed run (its directory or name) from its last checkpoint; --set may "
            f"change only {', '.join(RESUMABLE)} (a key covers the keys under it).",
        ),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only epoch lines and the summary.")] = False,
    tensorboard: TensorBoardFlag = False,
    into: Annotated[
        str | None,
        # Hidden: `snnlab sweep` names each run's folder itself, so it knows where the run went without
        # reading the run's output; people name runs with run.name and run.runs_dir.
        typer.Option("--into", hidden=True, help="Create the new run's folder at exactly this path."),
    ] = None,
) -> None:
    """Train a network from a preset, headless."""
    from snnlab import config as cfgmod
    from snnlab import runs
    from snnlab.engine import distributed
    from snnlab.resuming import open_resume

    overrides = list(set_ or [])
    if device:
        overrides.append(f"train.device={device}")
    main_rank = distributed.from_env().is_main  # torchrun: only rank 0 writes the run directory
    lock = None
    try:
        if resume and into:
            raise cfgmod.ConfigError("--into names the folder of a new run; --resume continues an existing one")
        if resume:
            target = open_resume(resume, preset, overrides, lock=main_rank)
            run_dir, cfg, ckpt, lock = target.run_dir, target.config, target.checkpoint, target.lock
            if target.note and main_rank:
                _line(f"snnlab: {target.note}", sys.stderr)
        elif preset:
            cfg = cfgmod.load_config(cfgmod.find_preset(preset), overrides)
            run_dir, ckpt = None, None  # created (and locked) by _train once the run can start
        else:
            raise cfgmod.ConfigError("give a preset (see `snnlab presets`) or --resume RUN")
    except (cfgmod.ConfigError, runs.RunDirError) as exc:
        raise fail(str(exc)) from None
    try:
        cfg = _with_loggers(cfg, ["tensorboard"] if tensorboard else [])
    except cfgmod.ConfigError as exc:
        if lock is not None:
            lock.release()
        raise fail(str(exc)) from None
    try:
        code = _train(cfg, run_dir, ckpt, quiet, Path(into) if into else None)
    finally:
        if lock is not None:
            lock.release()
    raise typer.Exit(int(code))


def _with_loggers(cfg, added: list[str]):
    """``cfg`` with the loggers a flag (``--tensorboard``) adds to ``run.loggers``, once it is checked that each
    logger it lists can run here (a ConfigError naming the package to install when one cannot)."""
    from snnlab import config as cfgmod
    from snnlab.interop import loggers

    if any(name not in cfg.run.loggers for name in added):
        data = cfg.to_dict()
        data["run"]["loggers"] = list(dict.fromkeys([*cfg.run.loggers, *added]))
        cfg = cfgmod.config_from_dict(data)
    try:
        loggers.check(cfg.run.loggers)
    except loggers.LoggerUnavailable as exc:
        raise cfgmod.ConfigError(str(exc)) from None
    return cfg


def _train(cfg, run_dir, ckpt, quiet: bool, into: Path | None = None) -> Exit:
    from snnlab import runs
    from snnlab.console import ConsoleSink, print_summary
    from snnlab.engine import distributed
    from snnlab.engine.events import Event, FailureReason, RunStarted
    from snnlab.engine.session import TrainingError, prepare
    from snnlab.engine.trainer import train
    from snnlab.interop import loggers

    ctx = distributed.setup(cpu=cfg.train.device == "cpu")
    new_lock = None  # a new run's claim on its folder (a resume's is taken by open_resume)
    # The pre-flight (device, data, model) runs before a new run directory exists: a run that cannot start
    # leaves none behind.
    try:
        session = prepare(cfg, ctx)
        if run_dir is None and ckpt is None and ctx.is_main:
            if into is not None:
                run_dir = runs.RunDir.create_at(into, cfg.to_dict())
            else:
                run_dir = runs.RunDir(cfg.run.runs_dir, cfg.run.name, cfg.to_dict())
            new_lock = runs.lock_run(run_dir.path)
    except (TrainingError, runs.RunDirError) as exc:
        distributed.teardown(together=False)
        _line(f"snnlab: error{'' if ctx.is_main else f' (rank {ctx.rank})'}: {exc}", sys.stderr)
        return Exit.USAGE if FailureReason.of(getattr(exc, "reason", "config")).before_start else Exit.FAILED
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
    extra = loggers.sinks(cfg.run.loggers, run_dir.path) if run_dir is not None else []  # run.loggers, rank 0 only

    def save_config(event: Event) -> None:
        # The engine announces the run once it has loaded the checkpoint and accepted the config: only then
        # may a resume's changed config replace the one on disk.
        if isinstance(event, RunStarted):
            runs.write_config(run_dir.path, event.config)

    result = None
    try:
        result = train(
            cfg,
            [sink for sink in (save_config if ckpt and run_dir else None, writer, *extra, console) if sink is not None],
            stop=stop,
            run_dir=run_dir.path if run_dir is not None else None,
            resume=ckpt,
            run_name=run_dir.name if run_dir is not None else None,
            ctx=ctx,
            session=session,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        for logger in extra:
            logger.close()
        for sink in (console, writer):
            if sink is not None:
                sink.close()
        if new_lock is not None:
            new_lock.release()
        distributed.teardown(together=result is not None and result.status != "failed")
    if result.status == "failed":
        _line(f"snnlab: error{'' if ctx.is_main else f' (rank {ctx.rank})'}: {result.error}", sys.stderr)
        if run_dir is not None:
            _line(f"run directory: {run_dir.path}", sys.stderr)
            if result.reason == FailureReason.NAN_LOSS and (run_dir.checkpoints_dir / "last.pt").exists():
                _line(f"continue from the last checkpoint with: snnlab run --resume {run_dir.path} "
                      f"--set train.lr={cfg.train.lr / 2:g}", sys.stderr)  # fmt: skip
        return Exit.USAGE if FailureReason.of(result.reason).before_start else Exit.FAILED
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


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
    tensorboard: TensorBoardFlag = False,
) -> None:
    """Run every combination of --grid values times --seeds; write summary.csv and print a table."""
    from snnlab import config as cfgmod
    from snnlab import sweep as sweepmod

    try:
        path = cfgmod.find_preset(preset)
        parsed = sweepmod.parse_grid(list(grid or []))
        # Progress goes to stderr and the table to stdout, so `snnlab sweep ... > table.txt` holds only the table.
        result = sweepmod.run_sweep(
            path, parsed, seeds, list(set_ or []), workers, log=_progress, tensorboard=tensorboard
        )
    except cfgmod.ConfigError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot create the sweep directory: {exc}") from None
    print(sweepmod.table(list(parsed), result.rows))
    print(f"sweep directory: {result.sweep_dir}")
    started = [t for t in result.trials if t.returncode is not None]
    if result.interrupted:
        done = sum(t.returncode == 0 for t in started)
        print(f"snnlab: sweep interrupted: {done} of {len(result.trials)} runs finished; the summary covers "
              "those (stopped runs can be continued with snnlab run --resume)", file=sys.stderr)  # fmt: skip
        raise typer.Exit(int(Exit.INTERRUPTED))
    failed = [t for t in started if t.returncode not in (Exit.OK, Exit.INTERRUPTED) or t.run_dir is None]
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


# --- NIR: export a run's network, import one as a run (the nir extra) ------------------------------------

NIR_MISSING = "NIR files need the nir package: pip install 'snnlab[nir]'"
DtOption = Annotated[
    float | None,
    typer.Option(
        "--dt",
        min=0,
        help="Time step of the file's time constants in seconds (default: the file's, else snnTorch's 1e-4).",
    ),  # fmt: skip
]


@app.command("export")
def export_nir(
    run_name: Annotated[str, typer.Argument(help="Run directory, name or unique prefix.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .nir file to write.")],
    checkpoint: Annotated[
        str | None, typer.Option("--checkpoint", help="best or last (default: best, else last).")
    ] = None,
    dt: DtOption = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
) -> None:
    """Write a run's network to a NIR file (snnTorch, Norse and other NIR tools read it)."""
    if checkpoint not in (None, "best", "last"):
        raise fail(f"--checkpoint must be best or last (got {checkpoint!r})")
    path = _find_run(runs_dir, run_name)
    try:
        from snnlab.interop.nirfiles import InteropError, export_run
    except ImportError:
        raise fail(NIR_MISSING) from None
    try:
        notes = export_run(path, output, checkpoint, dt)
    except InteropError as exc:
        raise fail(str(exc)) from None
    for note in notes:
        _line(f"snnlab: NIR leaves out {note}", sys.stderr)
    print(f"wrote {output}")


@app.command("import")
def import_nir(
    file: Annotated[Path, typer.Argument(help="The .nir file to read.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The run directory to create (must not exist).")],
    set_: Overrides = None,
    dt: DtOption = None,
) -> None:
    """Make a run directory from a NIR file; continue training it with snnlab run --resume DIR."""
    from snnlab.config import ConfigError

    try:
        from snnlab.interop.nirfiles import InteropError, import_file
    except ImportError:
        raise fail(NIR_MISSING) from None
    try:
        notes = import_file(file, output, list(set_ or []), dt)
    except (InteropError, ConfigError) as exc:
        raise fail(str(exc)) from None
    for note in notes:
        _line(f"snnlab: {note}", sys.stderr)
    print(f"run directory: {output}")
    print(f"train it with: snnlab run --resume {output}")


# --json of the `runs` commands: for scripts, whole values instead of a table.
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (whole values) instead of a table.")]


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
    as_json: AsJson = False,
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
    if as_json:
        _print_json(_runs_json(infos, sweeps))
        return
    if not infos and not sweeps:
        print(f"no runs in {runs_dir}/ yet; start one with: snnlab run quickstart")
        return
    if infos:
        # Piped, the table is as wide as it needs to be: rich would otherwise wrap it to 80 columns.
        console = Console() if sys.stdout.isatty() else Console(width=10_000)
        console.print(runs_table(infos, console.width))
    if sweeps:
        print("sweeps (snnlab runs show SWEEP for the summary, snnlab watch SWEEP for the curves):")
        for path in sweeps:
            print(f"  {path.name}  {run_count(path)} runs")


@runs_app.command("show")
def runs_show(
    run_name: Annotated[str, typer.Argument(help="Run directory, name or unique prefix.")],
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
    as_json: AsJson = False,
) -> None:
    """Show one run: config, metrics and curves; or a sweep's summary."""
    from snnlab import runs
    from snnlab import sweep as sweepmod
    from snnlab.config import ConfigError
    from snnlab.console import show_run
    from snnlab.runs.records import run_record

    path = _find_run(runs_dir, run_name)
    if not sweepmod.is_sweep_dir(path):
        if as_json:
            record, problems = run_record(path)
            _print_json(record)
        else:
            problems = show_run(path)  # shows what it can read; what it cannot ends in one error line
        if problems:
            raise fail("; ".join(problems))
        return
    try:
        keys, rows = sweepmod.current_summary(path)
    except (ConfigError, runs.RunDirError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        _print_json({"sweep": path.name, "path": str(path), "keys": keys, "rows": [_sweep_row(keys, r) for r in rows]})
        return
    print(f"{path.name}  ({path})")
    print(sweepmod.table(keys, rows))


def _runs_json(infos: list, sweeps: list[Path]) -> list[dict[str, Any]]:
    """``snnlab runs --json``: the runs of the table, then the runs inside each sweep (with its name)."""
    from snnlab import runs
    from snnlab.runs.records import info_record

    listed = [info_record(info) for info in infos]
    for sweep in sweeps:
        listed += [info_record(info, sweep=sweep.name) for info in runs.list_runs(sweep)]
    return listed


def _sweep_row(keys: list[str], row: Any) -> dict[str, Any]:
    import dataclasses

    from snnlab.runs.records import finite

    fields = dataclasses.asdict(row)
    fields["values"] = dict(zip(keys, row.values, strict=True))
    return finite(fields)


def _print_json(data: Any) -> None:
    import json

    _line(json.dumps(data, indent=2, allow_nan=False))


def _find_run(runs_dir: Path, run_name: str) -> Path:
    """The run directory a user named (path, folder name or unique prefix), or a one-line error."""
    from snnlab import runs

    try:
        return runs.find_run(runs_dir, run_name)
    except runs.RunDirError as exc:
        raise fail(str(exc)) from None


@app.command("eval")
def eval_(
    run_name: Annotated[str, typer.Argument(help="Run directory, name or unique prefix.")],
    which: Annotated[
        str, typer.Option("--checkpoint", "-c", help="Which checkpoint to evaluate: best or last.")
    ] = "best",
    set_: Overrides = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a line.")] = False,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
) -> None:
    """Evaluate a run's checkpoint on the test split of its config (--set changes it, e.g. data.dataset)."""
    import json

    from snnlab import evaluation
    from snnlab.config import ConfigError
    from snnlab.formatting import format_percent

    path = _find_run(runs_dir, run_name)
    try:
        checkpoint = cast(evaluation.Which, which)  # checkpoint_path refuses any other name in one line
        evaluation.checkpoint_path(path, checkpoint)
        config = evaluation.run_config(path, [*(set_ or []), *([f"train.device={device}"] if device else [])])
    except ConfigError as exc:
        raise fail(str(exc)) from None
    from snnlab.engine.checkpoint import CheckpointError  # torch: only once the config is known to load
    from snnlab.engine.session import TrainingError

    try:
        result = evaluation.evaluate(path, checkpoint, config)
    except (ConfigError, TrainingError, CheckpointError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        _line(json.dumps(result.to_dict()))
        return
    _line(
        f"{path.name}  {result.checkpoint.name} (epoch {result.epoch})  {result.dataset} test, "
        f"{result.test_samples:,} samples: loss {result.loss:.4f}  accuracy {format_percent(result.accuracy)} "
        f"({result.decoder} decoder)"
    )


@app.command()
def lab(
    preset: Annotated[str | None, typer.Argument(help="Preset name or YAML file (default: quickstart).")] = None,
    set_: Overrides = None,
    keymap: KeymapFile = None,
) -> None:
    """Open the lab (the default): build a network, train it, look inside, compare surrogates."""
    _open_lab(preset, list(set_ or []), keymap)


@app.command()
def watch(
    run_name: Annotated[str, typer.Argument(help="Run directory or sweep folder: path, name or unique prefix.")],
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories.")] = Path("runs"),
    keymap: KeymapFile = None,
) -> None:
    """Follow a run directory, live or finished, in the lab's Training and Inside panes; a sweep folder
    opens in the Surrogates pane with every run's curves overlaid, new runs added as the sweep starts them."""
    from snnlab.sweep import is_sweep_dir

    path = _find_run(runs_dir, run_name)
    keys = _read_keymap(keymap)
    if is_sweep_dir(path):
        _run_lab(sweep=path, runs_dir=path.parent, keymap=keys)
    else:
        _run_lab(watch=path, runs_dir=runs_dir, keymap=keys)


def _open_lab(preset: str | None, overrides: list[str], keymap: Path | None) -> None:
    from snnlab import config as cfgmod

    try:
        if overrides and not preset:
            raise cfgmod.ConfigError("--set needs a preset: snnlab lab PRESET --set KEY=VALUE")
        cfg = cfgmod.load_config(cfgmod.find_preset(preset), overrides) if preset else None
    except cfgmod.ConfigError as exc:
        raise fail(str(exc)) from None
    _run_lab(preset=preset, config=cfg, keymap=_read_keymap(keymap))


def _read_keymap(path: Path | None) -> dict[str, str]:
    """The user's keymap (``path``, else the default file if there is one), or a one-line error."""
    from snnlab.tui.app import binding_groups
    from snnlab.tui.keymap import KeymapError, read_keymap

    try:
        return read_keymap(path, binding_groups())
    except KeymapError as exc:
        raise fail(str(exc)) from None


def _run_lab(**options) -> None:
    from snnlab import config as cfgmod
    from snnlab import runs

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise fail("the lab needs an interactive terminal; for headless training use `snnlab run PRESET`")
    from rich.console import Console

    from snnlab.tui.app import make_app

    try:
        lab_app = make_app(**options)
    except (cfgmod.ConfigError, runs.RunDirError) as exc:
        raise fail(str(exc)) from None
    # Textual prints an unhandled exception at exit, locals and all, over the user's shell, and run()
    # returns as if nothing happened. Its report goes to the crash log instead, and the exit code says it.
    report = io.StringIO()
    lab_app.error_console = Console(file=report, markup=False, highlight=False, color_system=None, width=120)
    lab_app.run()
    if lab_app.crash is None and not lab_app.return_code:
        return
    crash = lab_app.crash
    what = "Textual reported an error"
    if crash is not None:
        first = (str(crash).strip().splitlines() or [""])[0]
        what = f"{type(crash).__name__}: {first[:200]}" if first else type(crash).__name__
    text = _crash_report(crash, report.getvalue())
    log = _write_crash_log(text)
    where = f"details in {log}" if log else "no log could be written"
    _line(f"snnlab: the lab crashed ({what}); {where}", sys.stderr)
    if log is None:
        _line(text, sys.stderr)
    raise typer.Exit(int(Exit.FAILED))


def _crash_report(crash: BaseException | None, textual_report: str) -> str:
    """What is known about a crash of the lab: versions, the command, the traceback and Textual's report."""
    import platform

    import textual

    lines = [
        f"snnlab {__version__} lab crashed at {time.strftime('%Y-%m-%d %H:%M:%S')} "
        f"(Python {platform.python_version()}, textual {textual.__version__}, {platform.platform()})",
        f"command: {' '.join(sys.argv)}",
        "",
    ]
    if crash is not None:
        lines += ["".join(traceback.format_exception(crash)), ""]
    if textual_report.strip():
        lines += ["Textual's report, with local variables:", textual_report]
    return "\n".join(lines)


def _write_crash_log(text: str) -> Path | None:
    """Write ``text`` to a new file under the user's cache (else the temp folder); its path, or None."""
    from snnlab.engine.files import cache_dir

    cache = cache_dir()
    name = f"lab-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (cache, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return folder / name
        except OSError:
            continue
    return None


def main() -> None:
    entry: Callable[[], Any] = app
    torchrun_worker = "TORCHELASTIC_RUN_ID" in os.environ
    if torchrun_worker:
        # Started by torchrun: an uncaught error on any rank is recorded for the launcher to show.
        from torch.distributed.elastic.multiprocessing.errors import record

        entry = record(app)
    try:
        try:
            entry()
            code: int | str | None = 0
        except SystemExit as exc:  # typer always ends this way
            code = exc.code
        # What is still buffered goes out now, so that a reader who left early is noticed here.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of our output went away (`snnlab runs show RUN | head`): nothing is wrong and nothing
        # is left to say. Point stdout at /dev/null so that the interpreter's own flush at exit stays quiet
        # too (the recipe of Python's signal docs, with click's exit status for the same case).
        _discard_output()
        code = 1
    except KeyboardInterrupt:
        print("snnlab: interrupted", file=sys.stderr)
        code = int(Exit.INTERRUPTED)
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
