"""The gate's state for one pytest process, kept in ``config.stash``.

It owns the runner (the isolated worker, or in-process checks) and caches each artifact's
results, so that the first item of an artifact runs all its selected checks in one worker request
and its other items read the cache. Without xdist, the next artifact's request is sent as soon as
this one's answer is in, so the worker checks it while pytest reports this artifact's items.
An artifact whose verdicts the verdict cache (:mod:`.verdicts`) holds is not sent at all.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_kerasmodel.gate.discover import Discovery, discover
from pytest_kerasmodel.gate.goldens import budget_sidecar, golden_paths, inputs_sidecar
from pytest_kerasmodel.gate.protocol import CHECKS, Request, select_checks, size_on_disk
from pytest_kerasmodel.options import (
    Settings,
    expected_memory_mb,
    get_settings,
    memory_cap_mb,
    memory_limit_for,
)

if TYPE_CHECKING:
    from pytest_kerasmodel.gate.verdicts import VerdictCache
    from pytest_kerasmodel.gate.workers.isolation import InProcessRunner, WorkerRunner
    from pytest_kerasmodel.gate.workers.pool import WorkerPool


class CheckItem(Protocol):
    """What the session reads of a gate item (:class:`~.collect.CheckItem`, which calls it)."""

    artifact: Path
    model_dir: Path
    check: str
    backend: str | None
    session: pytest.Session


# user_properties key of the per-item record that the summary and report are built from
REPORT_PROPERTY = "kerasmodel_gate"
#: the checks run again under each backend of --keras-backends (items ``load[jax]``, ...)
BACKEND_CHECKS = ("load", "predictions")


def gate_checks(settings: Settings) -> list[str]:
    """The checks collected for each artifact: ``--keras-checks`` (every check but ``compile``
    by default), with ``compile`` under ``--keras-load-compile``; an unknown name is a usage
    error."""
    try:
        return select_checks(
            settings.checks, with_optional=settings.load_compile, also=provenance_checks(settings)
        )
    except ValueError as exc:
        raise pytest.UsageError(f"keras_checks: {exc}") from None


def provenance_checks(settings: Settings) -> list[str]:
    """The optional provenance checks configured: ``signature`` when a way to verify or a
    requirement is set, ``lock`` with --keras-lock."""
    return [
        name
        for name, wanted in (
            ("signature", settings.signature_configured),
            ("lock", settings.lock is not None),
        )
        if wanted
    ]


def backend_checks(settings: Settings) -> list[str]:
    """The checks run under each backend of --keras-backends: those of :data:`BACKEND_CHECKS`
    and ``compile`` that are collected at all."""
    chosen = gate_checks(settings)
    return [c for c in (*BACKEND_CHECKS, "compile") if c in chosen]


@dataclass
class GateState:
    settings: Settings
    runner: InProcessRunner | WorkerPool | None = None
    results: dict[Path, dict[str, Any]] = field(default_factory=dict)
    # --keras-backends: one isolated worker per backend (KERAS_BACKEND set), and its results
    backend_runners: dict[str, WorkerRunner] = field(default_factory=dict)
    backend_results: dict[tuple[Path, str], dict[str, Any]] = field(default_factory=dict)
    # the lock's lines for the summary (updated, or entries gone): gate.provenance.finish_lock
    lock_lines: list[str] = field(default_factory=list)
    # backend -> its artifacts (and model folders), in the order their items run
    backend_order: dict[str, list[tuple[Path, Path]]] = field(default_factory=dict)
    # (artifact, backend) -> the request sent ahead to that backend's worker and its verdict key
    backend_sent: dict[tuple[Path, str], tuple[dict[str, Any], str | None]] = field(
        default_factory=dict
    )
    # artifact -> (its model folder, its selected checks), in the order the items run
    selected: dict[Path, tuple[Path, list[str]]] | None = None
    order: list[Path] = field(default_factory=list)  # the artifacts, in the order items run
    cursor: int = 0  # order[cursor:] holds every artifact not sent ahead nor answered yet
    # the requests and verdict keys of the artifacts the cache was asked about ahead, sent to a
    # worker or waiting for one (their files hashed once)
    sent_keys: dict[Path, tuple[dict[str, Any], str | None]] = field(default_factory=dict)
    # artifacts collected whose requests wait for a worker while pytest collects the others
    # (see collected()), in collection order
    collected_ahead: list[Path] = field(default_factory=list)
    # on the controller: artifact id -> {"info": ..., "checks": {check: (status, message)}}
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what the model folders hold besides artifacts (see discovery()), computed once
    _discovery: Discovery | None = None
    # the verdict cache (None: off, or not opened yet while _verdicts_opened is False)
    verdicts: VerdictCache | None = None
    _verdicts_opened: bool = False
    # the rootdir (verdict keys hold paths relative to it); whether this process is an xdist
    # worker (it runs the items it is sent: nothing is sent ahead, one checking worker)
    root: Path | None = None
    xdist_worker: bool = False
    # pytest's config when a pytest session runs the gate (the verdict cache is pytest's cache)
    config: pytest.Config | None = None
    # the team's code: the sys.path the workers import it on and its source digest (user_code())
    _user_code: tuple[list[str], str] | None = None

    def user_code(self) -> tuple[list[str], str]:
        """This process's ``sys.path`` (the workers import ``--keras-import`` modules on it) and
        the digest of those modules' source files, computed once; nothing is imported."""
        if self._user_code is None:
            s = self.settings
            if not (s.imports or s.custom_objects):
                self._user_code = ([], "")
            else:
                from pytest_kerasmodel.gate.usercode import source_digest

                path = [os.getcwd(), *(p for p in sys.path if p)]
                path = list(dict.fromkeys(path))
                self._user_code = (path, source_digest([*s.imports, *s.custom_objects], path))
        return self._user_code

    def discovery(self, config: pytest.Config) -> Discovery:
        """The artifacts and the files no artifact holds under the model folders, found the
        way the collectors find them (on the xdist controller too, which collects nothing)."""
        if self._discovery is None:
            patterns = [*config.getini("python_files"), "conftest.py"]
            self._discovery = discover(self.settings.model_dirs, patterns)
        return self._discovery

    def get_runner(self) -> InProcessRunner | WorkerPool:
        """The checks' runner: a pool of isolated workers (``keras_workers`` of them; one on an
        xdist worker, where xdist spreads the artifacts), or the pytest process itself."""
        if self.runner is None:
            from pytest_kerasmodel.gate.workers.isolation import InProcessRunner
            from pytest_kerasmodel.gate.workers.pool import WorkerPool, default_size

            if self.settings.isolate:
                # default: one worker in a process of xdist's (xdist shares out the cores,
                # also to a gate run nested in its worker, as pytester's), else one a core
                # (one fewer for file-only checks: see default_size)
                nested = self.xdist_worker or bool(os.environ.get("PYTEST_XDIST_WORKER"))
                checks = gate_checks(self.settings)
                default = 1 if nested else default_size(checks, reporting=self.config is not None)
                size = self.settings.workers or default
                if self.xdist_worker:
                    size = 1  # nothing is sent ahead there: a second worker would idle
                if self.selected is not None:  # at most one worker per artifact
                    size = max(1, min(size, len(self.selected)))
                self.runner = WorkerPool(
                    size,
                    self.settings.timeout,
                    self._hard_limit_mb(),
                    memory_cap_mb(),
                    fork=self.settings.fork_workers,
                    # None while collecting: the first request's checks decide (after -k)
                    checks=None
                    if self.selected is None
                    else {c for _, cs in self.selected.values() for c in cs},
                )
            else:
                self.runner = InProcessRunner()
        return self.runner

    def _hard_limit_mb(self) -> int:
        """A worker's hard data-memory limit (0: none): per-artifact limits stay below it."""
        explicit = self.settings.memory_limit_mb
        return (explicit if explicit is not None else memory_cap_mb()) or 0

    def start_worker(self) -> None:
        """Start one checking worker now (the pool's others start when they get work).

        Not when the verdict cache holds verdicts: an unchanged folder needs no worker at all,
        and one starts with the first artifact that must be checked."""
        from pytest_kerasmodel.gate.workers.pool import WorkerPool

        verdicts = self.verdict_cache()
        if verdicts is not None and not verdicts.empty():
            return
        runner = self.get_runner()
        if isinstance(runner, WorkerPool):
            runner.runners[0].start()

    def collected(self, artifact: Path, model_dir: Path, checks: list[str]) -> None:
        """An artifact's items are collected (``checks``): while pytest collects the rest, an
        idle worker checks it.

        Only the file-only checks, which cost milliseconds: a run whose items are deselected
        later (not foreseen by the options that select: ``-k``, ``-m``, ``--deselect``, ``--lf``,
        ``--sw``) checks at most what the workers could check while pytest collected. Not when
        nothing is sent ahead (xdist, recording goldens), nor when no worker was started for
        collection (``--collect-only``, the xdist controller, a verdict cache holding
        verdicts). The answers wait in the pool; the items read them as usual."""
        from pytest_kerasmodel.gate.workers.pool import WorkerPool, needs_keras

        pool = self.runner
        if not (
            self.selected is None
            and isinstance(pool, WorkerPool)
            and self.config is not None
            and not self.settings.update_golden
            and not self.xdist_worker
            and not needs_keras(checks)
            and not _selects(self.config)
        ):
            return
        if self._keyed(artifact, model_dir, checks) is None:
            return  # the cache holds its verdicts
        self.collected_ahead.append(artifact)
        pool.drain()  # answers finished since the last artifact: their workers take more
        while self.collected_ahead and pool.prefetch(self.sent_keys[self.collected_ahead[0]][0]):
            self.collected_ahead.pop(0)

    def request_for(self, artifact: Path, model_dir: Path, checks: list[str]) -> Request:
        s = self.settings
        structure, predictions = golden_paths(artifact, model_dir, s.golden_dir)
        try:
            size = size_on_disk(artifact)
        except OSError:  # gone or unreadable: the integrity check says so
            size = 0
        return Request(
            path=str(artifact),
            checks=canonical(checks),
            rtol=s.rtol,
            atol=s.atol,
            allowed_modules=list(s.allowed_modules),
            allowed_classes=list(s.allowed_classes),
            max_file_size=s.max_file_size,
            max_params=s.max_params,
            allowed_versions=list(s.allowed_versions),
            golden_structure=str(structure),
            golden_predictions=str(predictions),
            inputs_file=str(inputs_sidecar(artifact)),
            budget_file=str(budget_sidecar(artifact)),
            update_golden=s.update_golden,
            strict=s.strict,
            memory_limit_mb=memory_limit_for(size, s.memory_limit_mb),
            **self._provenance_fields(artifact, model_dir),
            imports=list(s.imports),
            custom_objects=list(s.custom_objects),
            import_path=list(self.user_code()[0]),
            user_code_digest=self.user_code()[1],
        )

    def _provenance_fields(self, artifact: Path, model_dir: Path) -> dict[str, Any]:
        """The request's provenance fields: where the signature is, who is trusted, whether
        one is required for this artifact (a pattern of keras_require_signature matches its
        path relative to the rootdir or to its model folder), the lock."""
        from pytest_kerasmodel.provenance.signature import signature_path_for

        s = self.settings
        root = self.config.rootpath if self.config is not None else (self.root or Path.cwd())
        names = [Path(os.path.relpath(artifact, base)).as_posix() for base in (root, model_dir)]
        required = any(fnmatch.fnmatch(n, p) for p in s.require_signature for n in names)
        return {
            "signature_file": str(signature_path_for(artifact, s.signature_pattern)),
            "signature_key": str(s.signature_key or ""),
            "signature_certificates": [str(c) for c in s.signature_certificates],
            "sigstore_identity": s.sigstore_identity,
            "sigstore_issuer": s.sigstore_issuer,
            "sigstore_trust_config": str(s.sigstore_trust_config or ""),
            "require_signature": required,
            "lock_file": str(s.lock or ""),
            "update_lock": s.update_lock,
        }

    def _plan(self, item: CheckItem) -> dict[Path, tuple[Path, list[str]]]:
        if self.selected is None:
            self.selected = {}
            for other in item.session.items:
                # not isinstance: a re-imported gate (in-process pytester) has another class
                if not getattr(other, "is_gate_check", False):
                    continue
                check: Any = other
                if check.backend is None:
                    entry = self.selected.setdefault(check.artifact, (check.model_dir, []))
                    entry[1].append(check.check)
                else:
                    order = self.backend_order.setdefault(check.backend, [])
                    if not order or order[-1][0] != check.artifact:
                        order.append((check.artifact, check.model_dir))
            self.order = list(self.selected)
            self.collected_ahead.clear()  # from now on sent in item order (_send_ahead)
        return self.selected

    def verdict_cache(self) -> VerdictCache | None:
        """The verdict cache, opened on first use; None when it is off: ``--keras-no-cache``,
        no pytest cache, no key, or recording goldens (which writes files the verdicts depend
        on)."""
        if not self._verdicts_opened:
            self._verdicts_opened = True
            if self.settings.cache and not (
                self.settings.update_golden or self.settings.update_lock
            ):
                from pytest_kerasmodel.gate import verdicts

                if self.config is not None:  # pytest's own cache
                    self.verdicts = verdicts.open_cache(self.config, self.config.rootpath)
                elif self.root is not None:  # kerasmodel gate: the same folder under its root
                    self.verdicts = verdicts.open_folder_cache(self.root)
        return self.verdicts

    def backend_runner(self, backend: str) -> WorkerRunner:
        """The isolated worker of ``backend`` (always isolated: Keras's backend is fixed when it
        is imported, so another backend cannot run in this process)."""
        from pytest_kerasmodel.gate.workers.isolation import WorkerRunner

        runner = self.backend_runners.get(backend)
        if runner is None:
            runner = WorkerRunner(self.settings.timeout, self._hard_limit_mb(), backend=backend)
            self.backend_runners[backend] = runner
        return runner

    def backend_result_for(self, item: CheckItem) -> dict[str, Any]:
        """The checks of ``item``'s artifact under its backend, run once for all its items.

        Goldens are compared, never written, under the other backends: recorded (with
        --keras-update-golden) by the default backend only.
        """
        assert item.backend is not None
        self._plan(item)
        key = (item.artifact, item.backend)
        cached = self.backend_results.get(key)
        if cached is None:
            request = self._backend_request(item.artifact, item.model_dir)
            sent, verdict = self.backend_sent.pop(key, (None, None))
            if sent != request:  # not sent ahead: ask the cache now
                verdict, cached = self._cached(request, backend=item.backend)
            if cached is None:
                # read from its worker (an answer sent ahead for another artifact, when items
                # run out of order, is kept there until that artifact's item asks)
                cached = self.backend_runner(item.backend).run(request)
                if (
                    self.verdicts is not None
                    and verdict is not None
                    and self.verdicts.put({**request, "backend": item.backend}, verdict, cached)
                ):
                    cached["stored"] = True  # listed among the writes in the summary
            self.backend_results[key] = cached
        if self._sends_ahead():
            self._backend_send_ahead(item.backend)  # its worker takes its next artifact
        return cached

    def _backend_request(self, artifact: Path, model_dir: Path) -> dict[str, Any]:
        request = as_dict(self.request_for(artifact, model_dir, backend_checks(self.settings)))
        request["update_golden"] = False  # goldens are recorded by the default backend only
        return request

    def _backend_send_ahead(self, backend: str) -> None:
        """Send the next artifact of ``backend``'s items to its worker when it is idle, so that
        each backend's worker checks while pytest reports (and the pool checks) other items;
        not while what is in flight would leave too little memory for it."""
        runner = self.backend_runner(backend)
        if runner.queued:
            return
        for artifact, model_dir in self.backend_order.get(backend, []):
            key = (artifact, backend)
            if key in self.backend_results or key in self.backend_sent:
                continue
            request = self._backend_request(artifact, model_dir)
            verdict, cached = self._cached(request, backend=backend)
            if cached is not None:
                self.backend_results[key] = cached  # nothing for its worker to do
                continue
            budget = memory_cap_mb()
            expected = expected_memory_mb(_size(artifact))
            if budget and self._in_flight_mb() + expected > budget:
                return  # it runs when its item does
            if runner.prefetch(request):
                self.backend_sent[key] = (request, verdict)
            return

    def _in_flight_mb(self) -> int:
        """The memory the requests sent ahead are expected to need (MB), every worker's."""
        from pytest_kerasmodel.gate.workers.pool import WorkerPool

        held = self.runner.in_flight_mb() if isinstance(self.runner, WorkerPool) else 0
        return held + sum(
            expected_memory_mb(_size(Path(request["path"])))
            for request, _ in self.backend_sent.values()
        )

    def result_for(self, item: CheckItem) -> dict[str, Any]:
        """The artifact's response holding the item's check (all its selected checks run in one
        worker request when its first item runs; the other items read it)."""
        if item.backend is not None:
            return self.backend_result_for(item)
        selected = self._plan(item)
        cached = self.results.get(item.artifact)
        if cached is None or item.check not in cached["checks"]:
            checks = selected.setdefault(item.artifact, (item.model_dir, []))[1]
            if item.check not in checks:
                checks.append(item.check)
            self.results.pop(item.artifact, None)  # asked again, with the check added
            cached = self.response(item.artifact)
        return cached

    def response(self, artifact: Path) -> dict[str, Any]:
        """The answer for one artifact of the plan (``selected``): from the verdict cache, from
        the worker it was sent ahead to, or checked now; the idle workers then take the next."""
        assert self.selected is not None
        cached = self.results.get(artifact)
        if cached is None:
            model_dir, checks = self.selected[artifact]
            keyed = self._keyed(artifact, model_dir, checks)
            if keyed is None:
                cached = self.results[artifact]
            else:
                request, key = keyed
                del self.sent_keys[artifact]
                runner = self.get_runner()
                if self._sends_ahead():
                    runner.prefetch(request)  # type: ignore[union-attr]
                    self._send_ahead()  # the idle workers take the next artifacts
                cached = runner.run(request)
                if (
                    self.verdicts is not None
                    and key is not None
                    and self.verdicts.put(request, key, cached)
                ):
                    cached["stored"] = True  # listed among the writes in the summary
                self.results[artifact] = cached
        if self._sends_ahead():
            self._send_ahead()  # the worker that answered takes the next one
            for backend in self.backend_order:  # and each backend's worker, its next one
                self._backend_send_ahead(backend)
        return cached

    def _keyed(
        self, artifact: Path, model_dir: Path, checks: list[str]
    ) -> tuple[dict[str, Any], str | None] | None:
        """The artifact's request and verdict key, kept in ``sent_keys`` so that the cache is
        asked (and its files hashed) once per artifact, again only for other checks (items
        deselected after it was collected); None when the cache holds its verdicts (then kept
        in ``results``). The rest of a request is the settings', the same every time."""
        keyed = self.sent_keys.get(artifact)
        if keyed is not None and keyed[0]["checks"] == canonical(checks):
            return keyed
        request = as_dict(self.request_for(artifact, model_dir, checks))
        key, cached = self._cached(request)
        if cached is not None:
            self.results[artifact] = cached
            return None
        keyed = self.sent_keys[artifact] = (request, key)
        return keyed

    def _cached(
        self, request: dict[str, Any], backend: str | None = None
    ) -> tuple[str | None, dict[str, Any] | None]:
        """The request's verdict key (None: the cache is off, or a file the verdict depends on
        cannot be read) and the cache's response for it (None: not cached). ``backend``: the
        request runs under that backend of --keras-backends, not this process's."""
        verdicts = self.verdict_cache()
        if verdicts is None:
            return None, None
        from pytest_kerasmodel.gate.verdicts import environment, verdict_key

        env = None
        if backend is not None:
            request = {**request, "backend": backend}
            env = {**environment(), "backend": backend}
        key = verdict_key(request, verdicts.root, env)
        return key, verdicts.get(request, key) if key is not None else None

    def _sends_ahead(self) -> bool:
        """Whether artifacts are sent to workers before their items run.

        Not under xdist (a worker runs the items it is sent, not the next ones in its list) and
        not when recording goldens (nothing is written for an artifact before its items run).
        """
        from pytest_kerasmodel.gate.workers.pool import WorkerPool

        return (
            self.selected is not None
            and isinstance(self.runner, WorkerPool)
            and not self.settings.update_golden
            and not self.xdist_worker
        )

    def _send_ahead(self) -> None:
        """Send the next artifacts, in plan order, to the idle workers; artifacts whose verdicts
        the cache holds are answered here and never sent."""
        from pytest_kerasmodel.gate.workers.pool import WorkerPool

        pool = self.runner
        assert self.selected is not None and isinstance(pool, WorkerPool)
        while self.cursor < len(self.order):
            artifact = self.order[self.cursor]
            if artifact not in self.results and not pool.holds_path(str(artifact)):
                model_dir, checks = self.selected[artifact]
                keyed = self._keyed(artifact, model_dir, checks)
                if keyed is None:  # the cache holds its verdicts: nothing for a worker to do
                    self.cursor += 1
                    continue
                if not pool.prefetch(keyed[0]):
                    return  # every worker is busy (or memory says wait): later
            self.cursor += 1

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        for runner in self.backend_runners.values():
            runner.close()
        self.backend_runners.clear()


def _size(artifact: Path) -> int:
    try:
        return size_on_disk(artifact)
    except OSError:
        return 0


def canonical(checks: list[str]) -> list[str]:
    """A request's checks in :data:`~.checks.CHECKS` order, whatever order the items came in
    (the checks run in that order anyway): requests for the same checks are equal."""
    return [c for c in CHECKS if c in checks] + [c for c in checks if c not in CHECKS]


#: the options by which pytest deselects or skips collected items
_SELECTING = ("keyword", "markexpr", "deselect", "lf", "stepwise", "stepwise_skip")


def _selects(config: pytest.Config) -> bool:
    """Whether the command line deselects some collected items (``-k``, ``-m``, ...)."""
    return any(config.getoption(name, None) for name in _SELECTING)


def as_dict(request: Request) -> dict[str, Any]:
    """A request as the plain data it travels as (its lists are its own: request_for makes
    them): a shallow copy, several times cheaper than ``dataclasses.asdict``."""
    return dict(vars(request))


state_key = pytest.StashKey[GateState]()


def gate_state(config: pytest.Config) -> GateState:
    state = config.stash.get(state_key, None)
    if state is None:
        state = GateState(
            get_settings(config),
            root=config.rootpath,
            xdist_worker=hasattr(config, "workerinput"),
            config=config,
        )
        config.stash[state_key] = state
    return state
