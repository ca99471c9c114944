"""The lab: one Textual app over the engine, the config and the run directory.

:func:`make_app` builds it for the CLI (``snnlab``, ``snnlab lab``, ``snnlab watch``) and for the tests,
so tests drive the real thing. State lives here and changes only in ``@on`` handlers and actions:
a timer drains the event source (the training child, a followed run directory, or a fake list in
tests) at 10 Hz and posts one :class:`EventsArrived` per batch. What the panes show is held in reactive
attributes (``view``, ``compare``, ``overlays``) whose ``watch_`` methods note which panes are stale;
another timer redraws those at 4 Hz. Neither depends on the training step rate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.reactive import var
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.worker import Worker, WorkerState, get_current_worker

from snnlab.config import Config, ConfigError, config_from_dict, find_preset, list_presets, load_config
from snnlab.engine.events import RunFailed, RunFinished
from snnlab.resuming import resume_refusal
from snnlab.runs import RunDir, RunDirError, read_config
from snnlab.sweep import is_sweep_dir, read_sweep
from snnlab.tui.commands import LabCommands
from snnlab.tui.compare import CompareEntry, SweepFollower, compare_runs
from snnlab.tui.export import export_view
from snnlab.tui.keymap import check_keymap, key_names_of, read_keymap
from snnlab.tui.messages import (
    CompareRequested,
    EventsArrived,
    OverlayLoaded,
    PresetChosen,
    SourceFailed,
    SweepLoaded,
)
from snnlab.tui.metrics import RunMetrics
from snnlab.tui.screens.dialogs import ErrorDialog
from snnlab.tui.screens.help import HelpScreen
from snnlab.tui.screens.main import NARROW, PANE_NAMES, PANES, MainScreen
from snnlab.tui.screens.runs import RunsScreen
from snnlab.tui.widgets.config_form import ConfigForm
from snnlab.tui.widgets.health_panel import HealthPanel
from snnlab.tui.widgets.inside_pane import InsidePane
from snnlab.tui.widgets.raster_view import RasterView
from snnlab.tui.widgets.status_bar import StatusBar
from snnlab.tui.widgets.surrogate_lab import SurrogateLab
from snnlab.tui.widgets.training_pane import TrainingPane
from snnlab.tui.worker import EventSource, FollowSource, TrainingJob

STALE_PARTS = ("training", "inside", "surrogates", "status")


class SnnLabApp(App[None]):
    """The lab. Build it with :func:`make_app`."""

    CSS_PATH = "app.tcss"
    TITLE = "snnlab"
    ESCAPE_TO_MINIMIZE = False  # escape first leaves a field, then restores a maximized pane (MainScreen)
    COMMANDS = App.COMMANDS | {LabCommands}

    # What the panes show. Every assignment counts as a change (RunMetrics compares by value, slowly); the
    # run in `view` is folded from events in place, and whoever changes it says so with mutate_reactive.
    view: var[RunMetrics] = var(RunMetrics, init=False, always_update=True)
    """The run the Training and Inside panes show (and the status bar)."""
    compare: var[list[CompareEntry]] = var(list, init=False, always_update=True)
    """The runs of a surrogate comparison or of a sweep, in the Surrogates pane."""
    overlays: var[list[tuple[str, RunMetrics]]] = var(list, init=False, always_update=True)
    """Finished runs drawn over the Training plots, by name."""

    # Descriptions label the footer; tooltips title the command palette's entries (and the footer's hover).
    # Keys that work while typing: each global action has a letter, which a focused text field takes as
    # text, and a function key, which no field takes. Textual drops the letters from the footer while a field
    # has focus (Input.check_consume_key), so the footer shows the function keys exactly when they are the ones
    # that work. Escape leaves the field for its pane; then the letters work again. ctrl+q always quits.
    BINDINGS = [
        Binding("s,f5", "start", "Start", id="lab.start", tooltip="Start training"),
        # Pause and resume share a key and an id (a keymap moves both); check_action shows the one that applies.
        Binding("p,f6", "pause", "Pause", id="lab.pause", tooltip="Pause training"),
        Binding("p,f6", "resume", "Resume", id="lab.pause", tooltip="Resume training"),
        Binding("x,f7", "stop", "Stop", id="lab.stop", tooltip="Stop training"),
        Binding("c,f8", "compare", "Compare", id="lab.compare", tooltip="Compare surrogates"),
        Binding("z,f2", "maximize_pane", "Max", id="lab.maximize", show=False, tooltip="Maximize / restore the pane"),
        Binding("r,f4", "runs", "Runs", id="lab.runs", tooltip="Open a run or sweep…"),
        Binding("e,f9", "export", "Export", id="lab.export", show=False, tooltip="Export screenshot and CSV"),
        Binding("question_mark,f1", "help", "Help", id="lab.help", tooltip="Help"),
        Binding("q", "quit", "Quit", id="lab.quit", show=False),  # ctrl+q (Textual's) quits even while typing
        *[
            Binding(
                label.split()[0],
                f"pane('{key}')",
                label,
                id=f"lab.pane-{key}",
                show=False,
                tooltip=f"Show the {PANE_NAMES[key]} pane",
            )
            for key, label in PANES.items()
        ],
        Binding("ctrl+pagedown", "next_pane(1)", "Next pane", id="lab.pane-next", show=False),
        Binding("ctrl+pageup", "next_pane(-1)", "Previous pane", id="lab.pane-prev", show=False),
        Binding(
            "l,f3",
            "toggle_layout",
            "Grid / single pane",
            id="lab.layout",
            show=False,
            tooltip="Toggle grid / single pane layout",
        ),
        Binding("ctrl+left", "split(-5, 0)", "Narrower left column", id="lab.split-left", show=False),
        Binding("ctrl+right", "split(5, 0)", "Wider left column", id="lab.split-right", show=False),
        Binding("ctrl+up", "split(0, -5)", "Lower top row", id="lab.split-up", show=False),
        Binding("ctrl+down", "split(0, 5)", "Taller top row", id="lab.split-down", show=False),
        Binding("ctrl+o", "load_yaml", "Load YAML", id="lab.load-yaml", show=False, tooltip="Load config YAML…"),
        Binding("ctrl+s", "save_yaml", "Save YAML", id="lab.save-yaml", show=False, tooltip="Save config YAML…"),
    ]

    def __init__(
        self,
        config_data: dict[str, Any],
        preset: str | None = None,
        *,
        watch: str | Path | None = None,
        sweep: str | Path | None = None,
        source: EventSource | None = None,
        runs_dir: str | Path = "runs",
        mode: str = "process",
        drain_hz: float = 10.0,
        redraw_hz: float = 4.0,
        keymap: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.keymap = dict(keymap or {})  # binding id -> keys, checked (keymap.read_keymap)
        if self.keymap:
            self.set_keymap(self.keymap)
        self.config_data = config_data
        self.preset = preset
        self.watch_path = Path(watch) if watch else None
        self.sweep_path = Path(sweep) if sweep else None
        self.runs_dir = Path(runs_dir)
        self.mode = mode
        self.drain_hz, self.redraw_hz = drain_hz, redraw_hz
        self.config: Config | None = None
        self.source: EventSource | None = source
        self.job: TrainingJob | None = None
        self.compare_queue: list[tuple[CompareEntry, dict[str, Any]]] = []
        self.sweep: SweepFollower | None = None  # the sweep folder shown in the Surrogates pane, followed live
        self._stale = set(STALE_PARTS)  # panes to redraw at the next redraw tick: all of them at first
        self._probes_shown: tuple[RunMetrics, int] | None = None  # (run, probe count) the Inside pane has
        self.main = MainScreen(config_data, preset, watch=bool(watch or source))
        self.crash: BaseException | None = None  # the first unhandled exception, which ended the app
        self.closing = False  # set by exit(): events that arrive later are dropped, the screens are going

    def _handle_exception(self, error: Exception) -> None:
        # Textual's one door for an exception no handler caught (private, the same from 0.80 to 8.2):
        # note it, so `snnlab` can exit 1 with one line instead of 0 after a traceback.
        if self.crash is None:
            self.crash = error
        super()._handle_exception(error)

    # -- set up and tear down

    def get_default_screen(self) -> MainScreen:
        return self.main

    def on_mount(self) -> None:
        if self.watch_path is not None:
            self._follow(self.watch_path)
        elif self.source is not None:
            self.view.run_path = str(getattr(self.source, "run_path", "") or "") or None
            self.mutate_reactive(SnnLabApp.view)
        if self.sweep_path is not None:
            self.open_sweep(self.sweep_path)
        self.set_interval(1 / self.drain_hz, self._drain, name="drain")
        self.set_interval(1 / self.redraw_hz, self.redraw, name="redraw")
        self.call_after_refresh(self.redraw)

    def exit(self, *args: Any, **kwargs: Any) -> None:
        self.closing = True
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self.closing = True
        self._close_source()

    def _close_source(self) -> None:
        if self.job is not None:
            self.job.close()  # a stop: the engine checkpoints before the child exits
        if self.source is not None:
            self.source.close()
        self._stop_sweep()

    async def action_quit(self) -> None:
        if self.job is not None and self.job.alive():
            self.notify("stopping training and writing a checkpoint…")
        self.exit()

    # -- events in

    def _drain(self) -> None:
        if self.sweep is not None and self.sweep.drain():
            self.compare = self.sweep.entries()
        source = self.source
        if source is None or self.closing:
            return
        events = source.drain()
        if events:
            self.post_message(EventsArrived(events))
            return  # check for a dead producer only once its queue is empty
        failure = source.failure()
        if failure:
            self.source = None
            self.post_message(SourceFailed(failure))

    @on(EventsArrived)
    def _apply(self, message: EventsArrived) -> None:
        # A batch drained just before quitting can be handled after the screens are gone; a dialog or toast
        # then raised ScreenStackError (seen once in benchmarks/bench_tui_latency.py).
        if self.closing:
            return
        self.view.apply(message.events)
        self.mutate_reactive(SnnLabApp.view)
        for event in message.events:
            if isinstance(event, RunFailed):
                self.show_error("Training failed", event.error)
            elif isinstance(event, RunFinished):
                self.notify(f"{self.view.name}: {event.status} after {event.epochs_done} epochs", markup=False)
        if self.job is not None and self.job.ended:
            self._job_done()

    @on(SourceFailed)
    def _source_failed(self, message: SourceFailed) -> None:
        if self.closing:
            return
        self.view.status, self.view.error = "failed", message.error
        self.mutate_reactive(SnnLabApp.view)
        self.show_error("Training process died", message.error)
        self._job_done()

    def _job_done(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            self.run_worker(job.close, thread=True, name="reap", group="reap", exit_on_error=False)
        if self.source is job:
            self.source = None
        if self.compare_queue and self.view.status != "stopped":
            self._start_next_compare()
        else:
            self.compare_queue.clear()
        self.refresh_bindings()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.show_error(f"{event.worker.name} failed", str(event.worker.error))

    def show_error(self, title: str, message: str) -> None:
        """An error dialog; the app keeps working underneath."""
        if self.closing or not self.screen_stack:
            return
        if not isinstance(self.screen, ErrorDialog):
            self.push_screen(ErrorDialog(title, message))

    # -- drawing

    def watch_view(self, view: RunMetrics) -> None:
        self._stale.update(("training", "inside", "status"))
        if any(entry.metrics is view for entry in self.compare):  # a comparison run under way
            self._stale.add("surrogates")

    def watch_compare(self) -> None:
        self._stale.update(("surrogates", "status"))

    def watch_overlays(self) -> None:
        self._stale.add("training")

    def redraw(self) -> None:
        """Push buffered data into the panes whose data changed since the last redraw."""
        if not self._stale:
            return
        stale, self._stale = self._stale, set()
        main, view = self.main, self.view
        try:
            with self.batch_update():
                if "training" in stale:
                    main.query_one(TrainingPane).draw(view, self.overlays)
                if "inside" in stale:
                    main.query_one(HealthPanel).show(view.health)
                shown = self._probes_shown
                if "inside" in stale and (shown is None or shown[0] is not view or shown[1] != len(view.probes)):
                    main.query_one(InsidePane).set_probes(view.probes, view.run_path)
                    self._probes_shown = (view, len(view.probes))  # a new run, or a new probe of this one
                if "surrogates" in stale:
                    main.query_one(SurrogateLab).draw_compare(self.compare)
                waiting = f"{len(self.compare_queue)} more queued" if self.compare_queue else ""
                main.query_one(StatusBar).update_from(view, waiting)
        except NoMatches:  # not composed yet (start-up on a loaded machine) or removed (shutdown)
            self._stale |= stale  # draw it all on the next tick instead of losing it

    # -- training

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.alive() or self.job is not None and not self.job.ended

    def _launch(self, data: dict[str, Any], metrics: RunMetrics | None = None) -> bool:
        """Create the run directory and start the engine on ``data``; False (with a dialog) on failure."""
        try:
            run_dir = RunDir(data["run"]["runs_dir"], data["run"]["name"], data)
        except RunDirError as exc:
            self.show_error("Cannot create the run directory", str(exc))
            return False
        return self._start_job(TrainingJob(data, run_dir.path, mode=self.mode), metrics)

    def _start_job(self, job: TrainingJob, metrics: RunMetrics | None = None) -> bool:
        if isinstance(self.source, FollowSource):
            self.source.close()
        self.job = self.source = job
        metrics = metrics or RunMetrics()
        metrics.status, metrics.name, metrics.run_path = "starting", Path(job.run_path).name, job.run_path
        self.view = metrics
        job.start()
        self.refresh_bindings()
        return True

    def action_start(self) -> None:
        if self.busy:
            self.notify("a run is in progress: p pauses it, x stops it", severity="warning")
            return
        if self.config is None:
            self.main.show_pane("network")
            self.show_error("The config is not valid", self.main.query_one(ConfigForm).error or "")
            return
        if self._launch(self.config.to_dict()):
            self.main.show_pane("training", focus=False)

    def action_resume(self) -> None:
        self.action_pause()

    def action_pause(self) -> None:
        if self.job is None or self.job.stopping:
            return
        if self.job.paused:
            self.job.resume()
            self.view.status = "running"
        else:
            self.job.pause()
            self.view.status = "paused"
        self.mutate_reactive(SnnLabApp.view)
        self.refresh_bindings()

    def action_stop(self) -> None:
        if self.job is None or self.job.stopping:
            return
        self.compare_queue.clear()
        self.job.stop()
        self.view.status = "stopping"
        self.mutate_reactive(SnnLabApp.view)
        self.notify("stopping at the next batch; the run is checkpointed to checkpoints/last.pt")

    def action_compare(self) -> None:
        self.main.show_pane("surrogates", focus=False)
        try:
            lab = self.main.query_one(SurrogateLab)
        except NoMatches:  # pressed before the pane mounted, just after the first frame
            self.notify("the Surrogates pane is still loading: press c again", severity="warning")
            return
        lab.request_compare()

    @on(CompareRequested)
    def _compare(self, message: CompareRequested) -> None:
        if self.busy:
            self.notify("a run is in progress; stop it (x) before comparing", severity="warning")
            return
        if self.config is None or not message.choices:
            self.show_error("Nothing to compare", "choose at least one surrogate, with a valid config")
            return
        try:
            self.compare_queue = compare_runs(self.config, message.choices)
        except ConfigError as exc:
            self.show_error("Cannot compare", str(exc))
            return
        self._stop_sweep()
        self.compare = [entry for entry, _ in self.compare_queue]
        self._start_next_compare()

    def _start_next_compare(self) -> None:
        entry, data = self.compare_queue.pop(0)
        if not self._launch(data, entry.metrics):
            self.compare_queue.clear()

    # -- run directories

    def _follow(self, path: Path) -> None:
        source = FollowSource(path)
        self.source = source
        self.view = RunMetrics(status="watching", run_path=str(path), name=path.name)
        self.run_worker(source.follow, thread=True, name="follow events", group="follow", exclusive=True,
                        exit_on_error=False)  # fmt: skip

    def open_run(self, path: Path) -> None:
        if self.busy:
            self.notify("stop the current run (x) before opening another", severity="warning")
            return
        if self.source is not None:
            self.source.close()
        self._follow(path)
        try:
            data = read_config(path)
        except RunDirError as exc:  # its curves can still be shown; the form keeps what it had
            data = {}
            self.notify(str(exc), severity="warning")
        if data:  # the form shows the run's config; s trains a fresh run from it
            self.main.query_one(ConfigForm).load(data)
        self.main.show_pane("training", focus=False)

    @work(thread=True, group="overlay", exit_on_error=False)
    def load_overlay(self, path: Path) -> None:
        metrics = RunMetrics.of_run(path)
        self.post_message(OverlayLoaded(path.name, metrics))

    @on(OverlayLoaded)
    def _overlay(self, message: OverlayLoaded) -> None:
        self.overlays = [o for o in self.overlays if o[0] != message.name] + [(message.name, message.metrics)]
        self.notify(f"overlaid {message.name} on the Training plots", markup=False)

    @work(thread=True, group="sweep", exclusive=True, exit_on_error=False)
    def open_sweep(self, path: Path) -> None:
        """Read a sweep folder's runs and show them in the Surrogates pane, then follow it (new runs, new
        events) until another sweep or a comparison replaces it."""
        try:
            follower = SweepFollower(path, poll=1 / self.drain_hz)
        except ConfigError as exc:
            self.call_from_thread(self.show_error, "Cannot open the sweep", str(exc))
            return
        follower.scan()  # the runs there now, before the pane shows the sweep
        worker = get_current_worker()
        while not self.main.is_mounted and not worker.is_cancelled:
            time.sleep(0.02)  # an empty sweep reads at once: its pane must exist before it is shown
        self.post_message(SweepLoaded(path.name, follower))
        follower.follow(lambda: worker.is_cancelled)

    @on(SweepLoaded)
    def _sweep(self, message: SweepLoaded) -> None:
        if self.compare_queue:
            message.follower.close()
            self.notify("a comparison is running; stop it (x) before opening a sweep", severity="warning")
            return
        self._stop_sweep()
        self.sweep = message.follower
        self.sweep.drain()
        self.compare = self.sweep.entries()
        self.main.show_pane("surrogates", focus=False)
        self.notify(f"{message.name}: {len(self.compare)} runs (new ones appear as the sweep starts them)",
                    markup=False)  # fmt: skip

    def _stop_sweep(self) -> None:
        if self.sweep is not None:
            self.sweep.close()
            self.sweep = None

    def action_runs(self) -> None:
        def chosen(result: tuple[str, Path] | None) -> None:
            if result is None:
                return
            what, path = result
            if what == "sweep":
                self.open_sweep(path)
            elif what in ("resume", "rerun"):
                self.resume_run(path) if what == "resume" else self.rerun(path)
            else:
                self.open_run(path) if what == "open" else self.load_overlay(path)

        self.push_screen(RunsScreen(self.runs_dir, sweep=self.sweep.path if self.sweep else None), chosen)

    def rerun(self, path: Path) -> None:
        """Train the config of the run ``path`` as a new run (shown in the form too)."""
        if self.busy:
            self.notify("a run is in progress: stop it (x) before starting another", severity="warning")
            return
        try:
            data = config_from_dict(read_config(path), source=str(path / "config.yaml")).to_dict()
        except (ConfigError, RunDirError) as exc:
            self.show_error("Cannot re-run", str(exc))
            return
        runs_dir = Path(data["run"]["runs_dir"])
        if is_sweep_dir(runs_dir):  # not into the sweep's folder: it would count as one more seed of the sweep
            data["run"]["runs_dir"] = str(runs_dir.parent)
        self.main.query_one(ConfigForm).load(data)
        if self._launch(data):
            self.main.show_pane("training", focus=False)

    @work(thread=True, group="resume", exclusive=True, exit_on_error=False)
    def resume_run(self, path: Path) -> None:
        """Continue the run ``path`` from its checkpoint in the training worker, as ``snnlab run --resume``:
        its curves so far are read first (here, away from the UI thread); the worker checks the checkpoint."""
        if why := resume_refusal(path):
            self.call_from_thread(self.notify, why, title="Cannot continue", severity="warning", markup=False)
            return
        try:
            metrics = RunMetrics.of_run(path)
        except RunDirError as exc:
            self.call_from_thread(self.notify, str(exc), title="Cannot continue", severity="warning", markup=False)
            return
        self.call_from_thread(self._start_resume, path, metrics)

    def _start_resume(self, path: Path, metrics: RunMetrics) -> None:
        if self.busy:
            self.notify("a run is in progress: stop it (x) before continuing another", severity="warning")
            return
        if self._start_job(TrainingJob({}, path, mode=self.mode, resume=True), metrics):
            self.main.show_pane("training", focus=False)

    # -- config

    @on(ConfigForm.Changed)
    def _config_changed(self, message: ConfigForm.Changed) -> None:
        self.config = message.config
        self.refresh_bindings()

    @on(RasterView.TraceRequested)
    def _trace(self, message: RasterView.TraceRequested) -> None:
        """Add a neuron to ``run.probes.trace`` of the form's config: recorded from the next run on."""
        form = self.main.query_one(ConfigForm)
        probes = form.data.setdefault("run", {}).setdefault("probes", {})
        traced = probes.setdefault("trace", {}).setdefault(message.layer_name, [])
        if message.neuron in traced:
            self.notify(
                f"{message.layer_name} neuron {message.neuron} is traced already (run.probes.trace)", markup=False
            )
            return
        traced.append(message.neuron)
        traced.sort()
        form.load(form.data, preset=form.preset)
        self.notify(f"{message.layer_name} neuron {message.neuron} will be traced from the next run (run.probes.trace)",
                    markup=False)  # fmt: skip

    @on(PresetChosen)
    def _preset(self, message: PresetChosen) -> None:
        try:
            config = load_config(find_preset(message.name))
        except ConfigError as exc:
            self.show_error("Cannot load the preset", str(exc))
            return
        self.main.query_one(ConfigForm).load(config.to_dict(), preset=message.name)

    def action_load_yaml(self) -> None:
        self.main.query_one(ConfigForm).load_yaml()

    def action_save_yaml(self) -> None:
        self.main.query_one(ConfigForm).save_yaml()

    # -- views

    def action_pane(self, key: str) -> None:
        self.main.show_pane(key)

    def action_next_pane(self, step: int) -> None:
        keys = list(PANES)
        self.main.show_pane(keys[(keys.index(self.main.active) + step) % len(keys)])

    def action_maximize_pane(self) -> None:
        self.main.toggle_maximize()

    def action_toggle_layout(self) -> None:
        self.notify(f"layout: {self.main.toggle_layout()}")

    def action_split(self, d_col: int, d_row: int) -> None:
        self.main.resize_split(d_col, d_row)

    def action_export(self) -> None:
        """Save an SVG of the current view and the metrics as CSV (into the run directory if there is one)."""
        if not self.view.csv_rows():  # a CSV of a header alone helps no one
            start, runs = key_names_of(self, "lab.start"), key_names_of(self, "lab.runs")
            self.notify(f"nothing to export yet: train a run ({start}) or open one ({runs}) first", severity="warning")
            return
        folder = Path(self.view.run_path) if self.view.run_path else Path("exports")
        try:
            svg, csv_path = export_view(self, self.view, folder, f"lab-{self.main.active}")
        except OSError as exc:
            self.show_error("Cannot export", str(exc))
            return
        self.notify(f"saved {svg} and {csv_path}", markup=False)

    def action_help(self) -> None:
        self.push_screen(HelpScreen.for_app(self, main_screen_bindings()))

    def get_key_display(self, binding: Binding) -> str:
        # Function keys as printed on the keyboard (F5, not f5), in the footer, help and palette alike.
        shown = super().get_key_display(binding)
        return shown.upper() if len(shown) <= 3 and shown[:1] == "f" and shown[1:].isdigit() else shown

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out what cannot be done now (None) and hide what does not apply (False), so the footer tells
        the state: Pause while a run trains, Resume in its place while it is paused. On a narrow terminal what
        cannot be done now hides too, so that a pane's own keys keep their place in the footer."""
        allowed = self._allowed(action)
        if allowed is None and self.size.width < NARROW:
            return False
        return allowed

    def _allowed(self, action: str) -> bool | None:
        job = self.job
        running = job is not None and not job.stopping
        paused = running and job is not None and job.paused
        if action == "pause":
            return False if paused else True if running else None
        if action == "resume":
            return True if paused else False
        if action == "stop":
            return True if running else None
        if action == "start":  # with an invalid config it says why (a dialog), which a greyed key would not
            return None if self.busy else True
        return True

    def refresh_bindings(self) -> None:
        # The form and the training job post messages that refresh the footer; one handled while the app
        # shuts down (typing, then quitting at once) finds its screens already gone, and Textual raises.
        if self.screen_stack:
            super().refresh_bindings()

    def clear_overlays(self) -> None:
        self.overlays = []


def binding_groups() -> dict[str, list[Binding]]:
    """The lab's bindings by where they are active together (a keymap may not give one key to two of them):
    the app's, the main screen's and its containers' in one group, each dialog's in its own, and each leaf
    widget's (one with no children: a plot, the raster, a slider) with the main group's. Two leaves never
    hold focus together, so they may share a key (the arrows of a plot and of a slider)."""
    main, leaves, dialogs = _bindings_by_place()
    return {"main": main, **dialogs, **{name: [*main, *found] for name, found in leaves.items()}}


def main_screen_bindings() -> list[Binding]:
    """Every binding of the main screen: the app's, the screen's, its panes' and their widgets'."""
    main, leaves, _ = _bindings_by_place()
    return [*main, *(binding for found in leaves.values() for binding in found)]


def _bindings_by_place() -> tuple[list[Binding], dict[str, list[Binding]], dict[str, list[Binding]]]:
    """The main group's bindings, and each leaf widget's and each dialog's by class name."""
    import importlib
    import inspect
    import pkgutil

    import snnlab.tui

    own = [*SnnLabApp.BINDINGS, *MainScreen.BINDINGS]
    main = [b for b in own if isinstance(b, Binding)]
    leaves: dict[str, list[Binding]] = {}
    dialogs: dict[str, list[Binding]] = {}
    for info in pkgutil.walk_packages(snnlab.tui.__path__, "snnlab.tui."):
        for cls in vars(importlib.import_module(info.name)).values():
            if not inspect.isclass(cls) or cls.__module__ != info.name or cls in (SnnLabApp, MainScreen):
                continue
            found = [b for b in vars(cls).get("BINDINGS", []) if isinstance(b, Binding)]
            if not found:
                continue
            if issubclass(cls, ModalScreen):
                dialogs[cls.__name__] = found
            elif issubclass(cls, Widget) and cls.compose is Widget.compose:
                leaves[cls.__name__] = found
            else:
                main.extend(found)
    return main, leaves, dialogs


def make_app(
    preset: str | None = None,
    *,
    config: Config | dict[str, Any] | None = None,
    watch: str | Path | None = None,
    sweep: str | Path | None = None,
    source: EventSource | None = None,
    runs_dir: str | Path | None = None,
    mode: str = "process",
    keymap: str | Path | dict[str, str] | None = None,
    **options: Any,
) -> SnnLabApp:
    """The lab, as ``snnlab`` / ``snnlab lab PRESET`` / ``snnlab watch RUN_DIR`` and the tests build it.

    Args:
        preset: a preset name or YAML file to start from (default: quickstart).
        config: a config to start from instead (a :class:`Config` or plain data).
        watch: a run directory to follow (Training and Inside panes).
        sweep: a sweep folder (``snnlab sweep``) to show in the Surrogates pane.
        source: a ready event source (tests feed a :class:`~snnlab.tui.worker.ReplaySource`).
        mode: where training runs: ``process`` (default) or ``thread``.
        keymap: binding ids mapped to keys, or a keymap file to read them from (:mod:`snnlab.tui.keymap`);
            the CLI passes the user's file. None: the default keys.

    Raises:
        ConfigError: the preset or config is not valid (the CLI prints it and exits 2).
        RunDirError: ``watch`` is not a run directory.
        ConfigError: ``sweep`` is not a sweep folder.
        KeymapError: the keymap file is not valid.
    """
    if keymap is not None and not isinstance(keymap, dict):
        keymap = read_keymap(keymap, binding_groups())
    elif keymap:
        keymap = check_keymap(keymap, binding_groups(), "keymap")
    if config is not None:
        data = config.to_dict() if isinstance(config, Config) else config_from_dict(config).to_dict()
    elif watch is not None:
        if not Path(watch).is_dir() or not (Path(watch) / "events.jsonl").is_file():
            raise RunDirError(f"{watch} is not a run directory (no events.jsonl)")
        data = read_config(watch) or Config().to_dict()
    elif sweep is not None:
        _, found = read_sweep(sweep)  # the form starts from the sweep's first run
        data = (found[0].config if found else {}) or Config().to_dict()
        data.setdefault("run", {})["runs_dir"] = str(Path(sweep).parent)  # new runs go beside the sweep
    else:
        preset = preset or ("quickstart" if any(n == "quickstart" for n, _ in list_presets()) else None)
        data = load_config(find_preset(preset)).to_dict() if preset else Config().to_dict()
    folder = runs_dir or data.get("run", {}).get("runs_dir", "runs")
    return SnnLabApp(data, preset, watch=watch, sweep=sweep, source=source, runs_dir=folder, mode=mode,
                     keymap=keymap, **options)  # fmt: skip
