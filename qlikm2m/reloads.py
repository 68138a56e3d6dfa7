"""Start app reloads and wait for them to end: one single-threaded scheduler for any number of apps.

Reloads run concurrently on the tenant; here one thread starts at most ``max_parallel`` of them and
polls each when it is due. One thread keeps the HTTP session, the token cache and Ctrl-C simple,
and the injectable clock and sleep make every timing testable without waiting.

With two or more reloads in flight, each poll tick costs a fixed number of requests, whatever their
number, in this order of preference: one list of the tenant's reloads (when the credentials may
list them: a TenantAdmin), else one request for the apps' items (their ``resourceReloadEndTime``
says which reloads may have ended; each of those is then read once), else at most
``MAX_POLLS_PER_TICK`` single reads.
"""

from __future__ import annotations

import enum
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable
from urllib.parse import quote

from qlikm2m.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ExitCode,
    KeyringError,
    NetworkError,
    QlikM2MError,
    ReloadFailedError,
    UsageError,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient

# The reloads API's own split: these three are active, the other four are final.
ACTIVE_STATES = frozenset({"QUEUED", "RELOADING", "CANCELING"})
SUCCEEDED = "SUCCEEDED"
FAILED_STATES = frozenset({"FAILED", "CANCELED", "EXCEEDED_LIMIT"})
FINAL_STATES = FAILED_STATES | {SUCCEEDED}

DEFAULT_TIMEOUT = 30 * 60.0
DEFAULT_MAX_PARALLEL = 4
MIN_POLL_INTERVAL = 0.1
# Without --poll-interval: poll soon (most reloads are short), then back off to a gentle pace.
ADAPTIVE_FIRST_POLL = 1.0
ADAPTIVE_GROWTH = 1.5
ADAPTIVE_MAX_POLL = 10.0
# Requests per poll tick, whatever the number of reloads waited on: one list request (when the
# credentials may list every reload), else at most this many single-reload GETs - the peak of
# the old default (4 reloads in parallel, all first polled 1 s after their start).
MAX_POLLS_PER_TICK = DEFAULT_MAX_PARALLEL
# With one list request a tick, the tick stays short while reloads are young or one has just
# ended (the others of a batch tend to end close by), then backs off as single polls do.
LIST_FAST_PHASE = 30.0
# ...but only to this: a tick costs one request whatever the number of reloads, so a reload of
# minutes is seen ending within 5 s (12 requests a minute) rather than the single polls' 10 s.
LIST_MAX_TICK = 5.0
# reloads.json GET /api/v1/reloads: limit 1 to 100, newest first (sort -creationTime).
LIST_LIMIT = 100
# items.json GET /api/v1/items: at most 100 resourceIds (and items) a request.
ITEMS_PER_REQUEST = 100
# An item's resourceReloadEndTime comes from another service than the reload's creationTime: an end
# up to this much before the creation still gets its reload read (one GET at most, if it was an
# earlier reload's end), so a small clock difference between the two never hides an end.
ITEM_END_MARGIN = timedelta(seconds=1)
# A reload the items tick watches is still read on its own at least this often (or at the
# --poll-interval, if longer), one such read a tick: what an item may not show (a reload canceled
# before it ran, an item that does not update) still ends the wait.
SAFETY_POLL = ADAPTIVE_MAX_POLL
LOG_TAIL_LINES = 20

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_UNIT_ORDER = ("h", "m", "s", "ms")


def parse_duration(text: str, *, option: str = "duration") -> float:
    """Seconds in ``text``: ``90`` or ``90s``, ``30m``, ``1h30m``, ``1.5h``, ``500ms``.

    Units go from largest to smallest, each at most once; a bare number is seconds. Anything else
    is a UsageError naming ``option``.
    """
    raw = text.strip().lower().replace(" ", "")
    problem = UsageError(
        f"{option} {text!r} is not a duration.",
        hint="Write it like 90s, 30m, 1h30m or 1.5h (a bare number is seconds).",
    )
    if not raw:
        raise problem
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if seconds < 0 or seconds != seconds or seconds == float("inf"):
            raise problem
        return seconds
    position = 0
    total = 0.0
    last_unit = -1
    for match in _DURATION_PART.finditer(raw):
        unit_index = _UNIT_ORDER.index(match.group(2))
        if match.start() != position or unit_index <= last_unit:
            raise problem
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
        last_unit = unit_index
    if position != len(raw) or last_unit < 0:
        raise problem
    return total


def format_duration(seconds: float) -> str:
    """A short human form: ``0.4s``, ``45s``, ``2m05s``, ``1h02m``."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def is_final(status: str | None) -> bool:
    # An unknown status is taken as still running: a new state must not end a wait as a success.
    return status in FINAL_STATES


class ReloadApi(Protocol):
    """What the scheduler needs from the tenant; ``reload_api.ClientReloadApi`` is the real one."""

    def start(self, app_id: str, *, partial: bool) -> Mapping[str, Any]: ...

    def get(self, reload_id: str) -> Mapping[str, Any]: ...

    def log_tail(self, app_id: str, reload_id: str, lines: int) -> Sequence[str]: ...


@runtime_checkable
class ReloadLister(Protocol):
    """A ReloadApi that can also list the tenant's latest reloads in one request."""

    def list_recent(self, limit: int) -> Sequence[Mapping[str, Any]]:
        """The ``limit`` most recently created reloads of the tenant (any app), newest first.

        Raises QlikM2MError when the credentials may not list them (not a TenantAdmin).
        """
        ...


@runtime_checkable
class ReloadEndWatcher(Protocol):
    """A ReloadApi that can also read when the apps' last reloads ended, for many apps at once."""

    def app_reload_ends(self, app_ids: Sequence[str]) -> Mapping[str, str | None]:
        """App id -> its item's ``resourceReloadEndTime`` (RFC 3339; None when it has none), for
        each of ``app_ids`` (at most ITEMS_PER_REQUEST) whose item the credentials can see; an app
        missing from the answer is absent from the mapping.

        Raises QlikM2MError when the request is refused or fails.
        """
        ...


class Outcome(enum.Enum):
    STARTED = "started"  # no --wait: the reload was queued
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # FAILED, CANCELED or EXCEEDED_LIMIT
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"  # Ctrl-C while it was running or being started
    NOT_STARTED = "not started"  # Ctrl-C before its turn came
    ERROR = "error"  # the API refused to start it or to report on it


@dataclass(frozen=True)
class ReloadResult:
    """What became of one app's reload, with the last record the tenant returned."""

    app_id: str
    outcome: Outcome
    record: Mapping[str, Any] | None = None
    elapsed: float = 0.0
    error: QlikM2MError | None = None
    log_tail: tuple[str, ...] = ()

    @property
    def reload_id(self) -> str | None:
        value = (self.record or {}).get("id")
        return str(value) if value else None

    @property
    def status(self) -> str | None:
        value = (self.record or {}).get("status")
        return str(value) if value else None

    @property
    def exit_code(self) -> ExitCode:
        if self.outcome in (Outcome.STARTED, Outcome.SUCCEEDED):
            return ExitCode.OK
        if self.outcome is Outcome.FAILED:
            return ExitCode.RELOAD_FAILED
        if self.outcome is Outcome.TIMED_OUT:
            return ExitCode.WAIT_TIMEOUT
        if self.outcome is Outcome.ERROR and self.error is not None:
            return self.error.exit_code
        return ExitCode.INTERRUPTED

    def failure_excerpt(self) -> list[str]:
        """The lines that explain a failed reload: the log's tail, else the record's own log."""
        record = self.record or {}
        lines = list(self.log_tail)
        if not lines:
            lines = [line for line in str(record.get("log") or "").splitlines() if line.strip()]
            lines = lines[-LOG_TAIL_LINES:]
        message = record.get("errorMessage")
        if message and not any(str(message) in line for line in lines):
            lines.append(f"errorMessage: {message}")
        return lines


@dataclass(frozen=True)
class WaitOptions:
    timeout: float | None = DEFAULT_TIMEOUT  # None or 0: no limit
    poll_interval: float | None = None  # None: adaptive
    max_parallel: int = DEFAULT_MAX_PARALLEL

    def __post_init__(self) -> None:
        if self.max_parallel < 1:
            raise UsageError("--max-parallel must be at least 1.")
        if self.poll_interval is not None and self.poll_interval < MIN_POLL_INTERVAL:
            raise UsageError(f"--poll-interval must be at least {MIN_POLL_INTERVAL}s.")
        if self.timeout is not None and self.timeout < 0:
            raise UsageError("--timeout must not be negative.")

    @property
    def deadline_after(self) -> float | None:
        return self.timeout or None

    def first_interval(self) -> float:
        return self.poll_interval if self.poll_interval is not None else ADAPTIVE_FIRST_POLL

    def next_interval(self, current: float) -> float:
        if self.poll_interval is not None:
            return self.poll_interval
        return min(current * ADAPTIVE_GROWTH, ADAPTIVE_MAX_POLL)

    def list_interval(self, current: float, quiet_for: float) -> float:
        """The next list or items tick (seconds): every ADAPTIVE_FIRST_POLL while anything changed
        within LIST_FAST_PHASE, then backing off to LIST_MAX_TICK; ``--poll-interval`` wins."""
        if self.poll_interval is not None:
            return self.poll_interval
        if quiet_for < LIST_FAST_PHASE:
            return ADAPTIVE_FIRST_POLL
        return min(self.next_interval(current), LIST_MAX_TICK)


class Reporter(Protocol):
    """Where progress goes: plain lines for logs, a spinner for a person (terminal.py)."""

    def started(self, app_id: str, record: Mapping[str, Any]) -> None: ...

    def polled(self, app_id: str, record: Mapping[str, Any], elapsed: float) -> None: ...

    def finished(self, result: ReloadResult) -> None: ...

    def close(self) -> None: ...


class SilentReporter:
    def started(self, app_id: str, record: Mapping[str, Any]) -> None:
        pass

    def polled(self, app_id: str, record: Mapping[str, Any], elapsed: float) -> None:
        pass

    def finished(self, result: ReloadResult) -> None:
        pass

    def close(self) -> None:
        pass


class PlainReporter:
    """One line per state change, plus a heartbeat so a CI log shows a long reload is alive."""

    HEARTBEAT = 60.0

    def __init__(self, stream: TextIO, *, heartbeat: float = HEARTBEAT) -> None:
        self._stream = stream
        self._heartbeat = heartbeat
        self._last: dict[str, tuple[str | None, float]] = {}

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def started(self, app_id: str, record: Mapping[str, Any]) -> None:
        status = record.get("status")
        self._last[app_id] = (str(status) if status else None, 0.0)
        self._line(f"app {app_id}: reload {record.get('id')} started ({status})")

    def polled(self, app_id: str, record: Mapping[str, Any], elapsed: float) -> None:
        status = str(record.get("status")) if record.get("status") else None
        if is_final(status):
            return  # finished() says how it ended
        last_status, last_said = self._last.get(app_id, (None, 0.0))
        if status != last_status or elapsed - last_said >= self._heartbeat:
            self._last[app_id] = (status, elapsed)
            self._line(f"app {app_id}: {status} after {format_duration(elapsed)}")

    def finished(self, result: ReloadResult) -> None:
        if result.outcome in (Outcome.STARTED, Outcome.NOT_STARTED, Outcome.INTERRUPTED):
            return
        self._line(describe(result))

    def close(self) -> None:
        self._stream.flush()


def describe(result: ReloadResult) -> str:
    """One sentence on how a reload ended, for progress lines and the summary."""
    rid = result.reload_id or "-"
    took = format_duration(result.elapsed)
    if result.outcome is Outcome.SUCCEEDED:
        return f"app {result.app_id}: reload {rid} SUCCEEDED in {took}"
    if result.outcome is Outcome.FAILED:
        return f"app {result.app_id}: reload {rid} ended {result.status} after {took}"
    if result.outcome is Outcome.TIMED_OUT:
        return (
            f"app {result.app_id}: reload {rid} still {result.status} after {took}: "
            "stopped waiting, it goes on server-side"
        )
    if result.outcome is Outcome.STARTED:
        return f"app {result.app_id}: reload {rid} {result.status or 'started'}"
    if result.outcome is Outcome.INTERRUPTED:
        if result.reload_id:
            return (
                f"app {result.app_id}: stopped waiting; reload {rid} goes on server-side "
                f"(last seen {result.status})"
            )
        return f"app {result.app_id}: interrupted while starting; a reload may have been queued"
    if result.outcome is Outcome.NOT_STARTED:
        return f"app {result.app_id}: not started"
    message = result.error.message if result.error else "unknown error"
    return f"app {result.app_id}: {message}"


@dataclass
class _Running:
    app_id: str
    record: Mapping[str, Any]
    started_at: float
    next_poll_at: float
    interval: float
    polled_at: float = 0.0  # when ``record`` was read
    # Watched by the items tick: its own reads are only the safety net, at most one a tick.
    watched: bool = False
    seen_end: str | None = None  # the item's end time that last had this reload read

    @property
    def reload_id(self) -> str:
        return str(self.record.get("id"))


@dataclass(frozen=True)
class RunReport:
    """Every app's result in the order given, and whether Ctrl-C cut the run short."""

    results: tuple[ReloadResult, ...]
    interrupted: bool = False

    @property
    def exit_code(self) -> ExitCode:
        return worst_exit_code(r.exit_code for r in self.results) if self.results else ExitCode.OK

    def error(self) -> QlikM2MError | None:
        """The error the whole command ends with, or None when every reload went well."""
        failing = [r for r in self.results if r.exit_code is not ExitCode.OK]
        if not failing:
            return None
        worst = max(failing, key=lambda r: _SEVERITY.index(_ranked(r.exit_code)))
        if len(self.results) == 1:
            return _error_for(worst)
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
        summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
        error_class = _ERROR_CLASSES.get(_ranked(worst.exit_code), QlikM2MError)
        return error_class(f"{len(self.results)} reloads: {summary}.")


# Which exit code wins when several reloads end differently: a reload that did not start or could
# not be followed (an API, auth or network error) outranks a failed reload, which outranks one
# still running at the timeout.
_SEVERITY = (
    ExitCode.OK,
    ExitCode.WAIT_TIMEOUT,
    ExitCode.RELOAD_FAILED,
    ExitCode.API,
    ExitCode.NETWORK,
    ExitCode.AUTH,
    ExitCode.KEYRING,
    ExitCode.CONFIG,
    ExitCode.USAGE,
    ExitCode.UNEXPECTED,
    ExitCode.INTERRUPTED,
)


_ERROR_CLASSES: dict[ExitCode, type[QlikM2MError]] = {
    ExitCode.WAIT_TIMEOUT: WaitTimeoutError,
    ExitCode.RELOAD_FAILED: ReloadFailedError,
    ExitCode.API: ApiError,
    ExitCode.NETWORK: NetworkError,
    ExitCode.AUTH: AuthError,
    ExitCode.KEYRING: KeyringError,
    ExitCode.CONFIG: ConfigError,
    ExitCode.USAGE: UsageError,
}


# Failures of the set-up rather than of one app: when the very first request meets one, it is the
# whole command's error, not one row of a summary.
_SETUP_ERRORS = (AuthError, ConfigError, KeyringError, UsageError)


def _ranked(code: ExitCode) -> ExitCode:
    return code if code in _SEVERITY else ExitCode.UNEXPECTED


def worst_exit_code(codes: Iterable[ExitCode]) -> ExitCode:
    return max((_ranked(c) for c in codes), key=_SEVERITY.index, default=ExitCode.OK)


def _error_for(result: ReloadResult) -> QlikM2MError:
    rid = result.reload_id
    if result.outcome is Outcome.ERROR and result.error is not None:
        return result.error
    if result.outcome is Outcome.FAILED:
        reason = (result.record or {}).get("errorMessage") or (result.record or {}).get("errorCode")
        return ReloadFailedError(
            f"reload {rid} of app {result.app_id} ended {result.status}"
            + (f": {reason}" if reason else "."),
            hint=f"The whole log: qlikm2m api v1/apps/{result.app_id}/reloads/logs/{rid}",
            details={"appId": result.app_id, "reloadId": rid, "status": result.status},
        )
    if result.outcome is Outcome.TIMED_OUT:
        return WaitTimeoutError(
            f"reload {rid} of app {result.app_id} was still {result.status} after "
            f"{format_duration(result.elapsed)}; it goes on server-side.",
            hint=f"Raise --timeout, or check on it later: qlikm2m api v1/reloads/{rid}",
            details={"appId": result.app_id, "reloadId": rid, "status": result.status},
        )
    return QlikM2MError(describe(result))


def _monotonic() -> float:
    # The module's `time` is looked up at each call, so a test can run a whole command on a
    # simulated clock shared with the sandbox tenant.
    return time.monotonic()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def run_reloads(
    api: ReloadApi,
    app_ids: Sequence[str],
    *,
    partial: bool = False,
    wait: WaitOptions | None = None,
    reporter: Reporter | None = None,
    clock: Callable[[], float] = _monotonic,
    sleep: Callable[[float], None] = _sleep,
) -> RunReport:
    """Start a reload of every app; with ``wait``, follow each to a final state or its deadline.

    Without ``wait`` every app is started at once, one after the other. With it, at most
    ``wait.max_parallel`` reloads are in flight; the next app starts when one ends. The timeout runs
    per reload from its start. Ctrl-C ends the run at once with an ``interrupted`` report: reloads
    already started go on server-side, and their last records say which.
    """
    run = _Run(api, partial, wait, reporter or SilentReporter(), clock, sleep, app_ids)
    try:
        run.drive()
    except KeyboardInterrupt:
        return run.report(interrupted=True)
    return run.report(interrupted=False)


@dataclass
class _Run:
    api: ReloadApi
    partial: bool
    wait: WaitOptions | None
    reporter: Reporter
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    app_ids: Sequence[str]
    pending: deque[str] = field(init=False)
    running: dict[str, _Running] = field(default_factory=dict)
    results: dict[str, ReloadResult] = field(default_factory=dict)
    starting: str | None = None
    # None: not tried yet; False: refused (not a TenantAdmin), the items tick or single GETs.
    listing: bool | None = None
    # None: not tried yet; False: refused or failed, single GETs from then on.
    watching: bool | None = None
    tick_at: float | None = None  # the next list or items tick
    tick_interval: float = ADAPTIVE_FIRST_POLL
    changed_at: float = 0.0  # the last start or end, for the tick
    # When the per-tick budget left reloads due: not before this time.
    throttled_until: float = 0.0

    def __post_init__(self) -> None:
        self.pending = deque(self.app_ids)

    def drive(self) -> None:
        limit = self.wait.max_parallel if self.wait else len(self.app_ids) or 1
        while self.pending or self.running:
            while self.pending and len(self.running) < limit:
                self._start(self.pending.popleft())
            if self.running:
                self._poll_due()

    def _finish(self, result: ReloadResult) -> None:
        self.results[result.app_id] = result
        self.running.pop(result.app_id, None)
        self.changed_at = self.clock()
        self.reporter.finished(result)

    def _start(self, app_id: str) -> None:
        self.starting = app_id
        try:
            record = self.api.start(app_id, partial=self.partial)
        except QlikM2MError as error:
            self.starting = None
            if isinstance(error, _SETUP_ERRORS) and not self.results and not self.running:
                # Credentials or settings that fail the first request fail every app alike.
                raise
            self._finish(ReloadResult(app_id, Outcome.ERROR, error=error))
            return
        now = self.clock()
        interval = self.wait.first_interval() if self.wait else 0.0
        # Tracked before anything else can be interrupted, so Ctrl-C still reports its id.
        running = _Running(app_id, record, now, now + interval, interval, polled_at=now)
        self.running[app_id] = running
        self.changed_at = now
        if self.tick_at is None:
            self.tick_at = now + interval
        self.starting = None
        self.reporter.started(app_id, record)
        if self.wait is None:
            self._finish(ReloadResult(app_id, Outcome.STARTED, record))
        elif is_final(str(record.get("status"))):
            self._conclude(running, now)

    def _deadline(self, running: _Running) -> float | None:
        after = self.wait.deadline_after if self.wait else None
        return None if after is None else running.started_at + after

    def _due_at(self, running: _Running) -> float:
        deadline = self._deadline(running)
        # The last poll happens at the deadline itself, so a reload ending just in time counts.
        return running.next_poll_at if deadline is None else min(running.next_poll_at, deadline)

    def _tick_kind(self) -> str | None:
        """What a tick asks while it serves two or more reloads ("list" or "items"); None when
        each reload is read on its own."""
        if len(self.running) < 2:
            return None
        if self.listing is not False and isinstance(self.api, ReloadLister):
            return "list"
        if self.watching is not False and isinstance(self.api, ReloadEndWatcher):
            return "items"
        return None

    def _poll_due(self) -> None:
        """Wait for the next tick, then poll: one list request, one items request (per 100
        reloads) and a read of each reload it shows may have ended, or a bounded number of GETs."""
        kind = self._tick_kind()
        if kind != "items":
            for running in self.running.values():
                self._unwatch(running)
        if kind is not None:
            assert self.tick_at is not None
            # Deadlines still wake the run on time: each reload's last poll is at its deadline.
            deadlines = [d for d in map(self._deadline, self.running.values()) if d is not None]
            wake = min([self.tick_at, *deadlines])
        else:
            wake = max(min(self._due_at(r) for r in self.running.values()), self.throttled_until)
        now = self.clock()
        if wake > now:
            self.sleep(wake - now)
        used = 0
        ticks = kind is not None and self.tick_at is not None and self.tick_at <= self.clock()
        if ticks and kind == "list":
            used += 1
            self._list_tick()
        # A list refused just now leaves this tick to the items.
        if ticks and self._tick_kind() == "items":
            used += self._items_tick()
        # The tick's own requests count against its budget.
        self._poll_each_due(budget=max(1, MAX_POLLS_PER_TICK - used))

    def _list_tick(self) -> None:
        assert self.wait is not None
        lister = self.api
        assert isinstance(lister, ReloadLister)
        try:
            records = lister.list_recent(LIST_LIMIT)
        except QlikM2MError:
            # Not a TenantAdmin (GET /api/v1/reloads needs appId otherwise), or the list failed:
            # the items tick, else single GETs, for the rest of the run.
            self.listing = False
            return
        self.listing = True
        now = self.clock()
        by_id = {str(record.get("id")): record for record in records}
        for running in list(self.running.values()):
            record = by_id.get(running.reload_id)
            if record is None:
                continue  # older than the list's page: polled on its own below
            running.record = record
            self.reporter.polled(running.app_id, record, now - running.started_at)
            # Seen by this tick: its own schedule moves on, so no single GET is due for it
            # while the list keeps it in sight.
            self._conclude(running, now)
        self._next_tick(now)

    def _items_tick(self) -> int:
        """Ask for the items of the apps reloading (items.json GET /api/v1/items, resourceIds);
        read each reload whose app's last reload ended since it was created. Returns the number
        of items requests made."""
        watcher = self.api
        assert isinstance(watcher, ReloadEndWatcher)
        waited_on = list(self.running.values())
        ends: dict[str, str | None] = {}
        requests = 0
        for first in range(0, len(waited_on), ITEMS_PER_REQUEST):
            chunk = waited_on[first : first + ITEMS_PER_REQUEST]
            requests += 1
            try:
                ends.update(watcher.app_reload_ends([r.app_id for r in chunk]))
            except QlikM2MError:
                # Refused (403/404, or 400 where resourceIds is not known) or failed: single
                # GETs for the rest of the run, each on its own schedule.
                self.watching = False
                for running in waited_on:
                    self._unwatch(running)
                return requests
        self.watching = True
        now = self.clock()
        ended: list[_Running] = []
        for running in waited_on:
            # The reload's own creation time, from the tenant: the local clock never enters it.
            created = _instant(running.record.get("creationTime"))
            if running.app_id not in ends or created is None:
                # An item the bot cannot see, or nothing to compare with: polled on its own.
                self._unwatch(running)
                continue
            if not running.watched:
                running.watched = True
                self._reschedule(running)
            end = ends[running.app_id]
            end_at = _instant(end)
            if end_at is None or end == running.seen_end or end_at < created - ITEM_END_MARGIN:
                self.reporter.polled(running.app_id, running.record, now - running.started_at)
                continue
            # Its app's last reload ended since this one was created: the reload record says how
            # (and whether it was this reload at all); the item alone concludes nothing.
            running.seen_end = end
            ended.append(running)
        for running in ended:
            self._read(running)
        self._next_tick(self.clock())
        return requests

    def _next_tick(self, now: float) -> None:
        assert self.wait is not None
        quiet_for = now - self.changed_at
        self.tick_interval = self.wait.list_interval(self.tick_interval, quiet_for)
        self.tick_at = now + self.tick_interval

    def _safety_interval(self) -> float:
        assert self.wait is not None
        return max(SAFETY_POLL, self.wait.poll_interval or 0.0)

    def _reschedule(self, running: _Running) -> None:
        after = running.interval
        if running.watched:
            after = max(after, self._safety_interval())
        running.next_poll_at = running.polled_at + after

    def _unwatch(self, running: _Running) -> None:
        # Back to its own schedule, which may well be due at once.
        if running.watched:
            running.watched = False
            self._reschedule(running)

    def _poll_each_due(self, budget: int = MAX_POLLS_PER_TICK) -> None:
        polled = 0
        safety_read = False  # of the reloads the items tick watches, one is read a tick
        due = sorted(self.running.values(), key=self._due_at)
        for running in due:
            now = self.clock()
            if self._due_at(running) > now:
                continue
            # Others at their deadline are read at once all the same: the deadline wakes the run.
            if running.watched and safety_read:
                continue
            if polled >= budget:
                # The rest wait for the next tick: requests per tick stay bounded.
                assert self.wait is not None
                self.throttled_until = now + self.wait.first_interval()
                return
            polled += 1
            safety_read = safety_read or running.watched
            self._read(running)

    def _read(self, running: _Running) -> None:
        """GET the reload's record and act on it; an error ends that reload's wait only."""
        try:
            record = self.api.get(running.reload_id)
        except QlikM2MError as error:
            elapsed = self.clock() - running.started_at
            self._finish(
                ReloadResult(running.app_id, Outcome.ERROR, running.record, elapsed, error)
            )
            return
        now = self.clock()
        running.record = record
        self.reporter.polled(running.app_id, record, now - running.started_at)
        self._conclude(running, now)

    def _conclude(self, running: _Running, now: float) -> None:
        assert self.wait is not None
        status = str(running.record.get("status"))
        elapsed = now - running.started_at
        if status == SUCCEEDED:
            self._finish(ReloadResult(running.app_id, Outcome.SUCCEEDED, running.record, elapsed))
            return
        if status in FAILED_STATES:
            tail = self._log_tail(running)
            self._finish(
                ReloadResult(running.app_id, Outcome.FAILED, running.record, elapsed, log_tail=tail)
            )
            return
        deadline = self._deadline(running)
        if deadline is not None and now >= deadline:
            self._finish(ReloadResult(running.app_id, Outcome.TIMED_OUT, running.record, elapsed))
            return
        running.interval = self.wait.next_interval(running.interval)
        running.polled_at = now
        self._reschedule(running)
        self.running[running.app_id] = running

    def _log_tail(self, running: _Running) -> tuple[str, ...]:
        # The log only explains a failure; not getting it must not hide the failure itself.
        try:
            lines = self.api.log_tail(running.app_id, running.reload_id, LOG_TAIL_LINES)
        except QlikM2MError:
            return ()
        return tuple(lines)

    def report(self, *, interrupted: bool) -> RunReport:
        now = self.clock()
        results: list[ReloadResult] = []
        for app_id in self.app_ids:
            if app_id in self.results:
                results.append(self.results[app_id])
            elif app_id in self.running:
                running = self.running[app_id]
                results.append(
                    ReloadResult(
                        app_id, Outcome.INTERRUPTED, running.record, now - running.started_at
                    )
                )
            elif app_id == self.starting:
                results.append(ReloadResult(app_id, Outcome.INTERRUPTED))
            else:
                results.append(ReloadResult(app_id, Outcome.NOT_STARTED))
        return RunReport(tuple(results), interrupted=interrupted)


def summary_lines(report: RunReport) -> list[str]:
    """An aligned table, one row per app: app, reload, status, time, and what went wrong."""
    rows = [("APP", "RELOAD", "STATUS", "TIME", "")]
    for result in report.results:
        status = result.status or "-"
        if result.outcome in (Outcome.TIMED_OUT, Outcome.INTERRUPTED):
            status = f"{status} ({result.outcome.value})"
        elif result.outcome in (Outcome.NOT_STARTED, Outcome.ERROR) and not result.status:
            status = result.outcome.value
        note = ""
        if result.outcome is Outcome.ERROR and result.error:
            note = result.error.message
        elif result.outcome is Outcome.FAILED:
            note = str((result.record or {}).get("errorMessage") or "")
        took = format_duration(result.elapsed) if result.record else "-"
        rows.append((result.app_id, result.reload_id or "-", status, took, note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, [*widths, 0], strict=True)).rstrip()
        for row in rows
    ]


class ClientReloadApi:
    """The reloads API of a tenant, through the one HTTP client (retries, 429s, token re-mint).

    ``variables`` and ``weight`` go with every reload started (reloads.json ReloadRequest).
    """

    def __init__(
        self,
        client: QlikClient,
        *,
        variables: Mapping[str, str] | None = None,
        weight: int | None = None,
    ) -> None:
        self._client = client
        self._variables = dict(variables or {})
        self._weight = weight

    def start(self, app_id: str, *, partial: bool) -> Mapping[str, Any]:
        body: dict[str, Any] = {"appId": app_id}
        if partial:
            body["partial"] = True
        if self._variables:
            body["variables"] = self._variables
        if self._weight is not None:
            body["weight"] = self._weight
        record = self._client.request("POST", "/api/v1/reloads", json=body).json()
        return _record(record, "POST /api/v1/reloads")

    def get(self, reload_id: str) -> Mapping[str, Any]:
        record = self._client.get_json(f"/api/v1/reloads/{quote(reload_id, safe='')}")
        return _record(record, "GET /api/v1/reloads/{id}")

    def list_recent(self, limit: int) -> Sequence[Mapping[str, Any]]:
        """GET /api/v1/reloads without appId (reloads.json: TenantAdmin only), newest first."""
        page = self._client.get_json("/api/v1/reloads", params={"limit": str(limit)})
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise ApiError("GET /api/v1/reloads did not answer with a list of reloads.")
        return [_record(item, "GET /api/v1/reloads") for item in data]

    def app_reload_ends(self, app_ids: Sequence[str]) -> Mapping[str, str | None]:
        """items.json GET /api/v1/items?resourceType=app&resourceIds=...: app id -> the item's
        ``resourceReloadEndTime`` (None when it has none), for the apps whose items the credentials
        can see. At most ITEMS_PER_REQUEST ids, so one page holds them all. Raises ApiError (and
        the client's other errors) when refused or not a list of items."""
        params = {
            "resourceType": "app",
            "resourceIds": ",".join(app_ids),
            "limit": str(max(1, min(len(app_ids), ITEMS_PER_REQUEST))),
            # The items' actions are not needed: items.json says leaving them out is faster.
            "noActions": "true",
        }
        page = self._client.get_json("/api/v1/items", params=params)
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise ApiError("GET /api/v1/items did not answer with a list of items.")
        wanted = set(app_ids)
        ends: dict[str, str | None] = {}
        for item in data:
            if not isinstance(item, dict) or item.get("resourceType") != "app":
                continue
            app_id = item.get("resourceId")
            if isinstance(app_id, str) and app_id in wanted:
                end = item.get("resourceReloadEndTime")
                ends[app_id] = end if isinstance(end, str) and end else None
        return ends

    def log_tail(self, app_id: str, reload_id: str, lines: int) -> Sequence[str]:
        # The script log can be large: keep only its tail while streaming it.
        path = f"/api/v1/apps/{quote(app_id, safe='')}/reloads/logs/{quote(reload_id, safe='')}"
        response = self._client.request("GET", path, stream=True)
        tail: deque[str] = deque(maxlen=lines)
        pending = b""
        for chunk in response.iter_bytes():
            pending += chunk
            *complete, pending = pending.split(b"\n")
            tail.extend(_decoded(line) for line in complete)
        if pending:
            tail.append(_decoded(pending))
        return [line for line in tail if line.strip()]


def _decoded(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


def _instant(value: object) -> datetime | None:
    """An RFC 3339 time from the tenant (``2024-07-31T13:43:51.123Z``) as an aware datetime; None
    when absent or unreadable. A time without an offset is UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _record(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict) or not value.get("id"):
        raise ApiError(f"{what} did not answer with a reload record.")
    return value


# -- reload-time variables and existing reloads ---------------------------------------------------

MAX_VARIABLES = 20  # reloads.json ReloadRequest.variables: maxProperties 20
MAX_VARIABLE_LENGTH = 256  # ... each name and value at most 256 characters


def parse_variables(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` words (``--var``, repeatable) as the reloads API's ``variables`` object.

    Raises UsageError for a word without ``=``, an empty name, a name given twice, more than 20
    variables or a name or value over 256 characters (the limits of reloads.json).
    """
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE.")
        if name in variables:
            raise UsageError(f"--var {name} is given twice.")
        if len(name) > MAX_VARIABLE_LENGTH or len(value) > MAX_VARIABLE_LENGTH:
            raise UsageError(f"--var {name}: names and values are at most 256 characters.")
        variables[name] = value
    if len(variables) > MAX_VARIABLES:
        raise UsageError(f"At most {MAX_VARIABLES} --var are allowed; got {len(variables)}.")
    return variables


def check_weight(weight: int | None) -> int | None:
    """reloads.json Weight: 1 to 10; UsageError otherwise."""
    if weight is not None and not 1 <= weight <= 10:
        raise UsageError(f"--weight {weight}: use 1 to 10 (higher runs sooner).")
    return weight


class _ExistingReloads:
    """A ReloadApi whose start() returns reloads already running: `wait` reuses run_reloads.

    Whatever else the API can do (list reloads, read the apps' items) passes through, so the
    wait ticks as run_reloads would.
    """

    def __init__(self, api: ReloadApi, records: Mapping[str, Mapping[str, Any]]) -> None:
        self._api = api
        self._records = records  # by app id

    def __getattr__(self, name: str) -> Any:
        # Only what is not defined here: list_recent and app_reload_ends, when the API has them.
        return getattr(self._api, name)

    def start(self, app_id: str, *, partial: bool) -> Mapping[str, Any]:
        return self._records[app_id]

    def get(self, reload_id: str) -> Mapping[str, Any]:
        return self._api.get(reload_id)

    def log_tail(self, app_id: str, reload_id: str, lines: int) -> Sequence[str]:
        return self._api.log_tail(app_id, reload_id, lines)


def wait_for_reloads(
    api: ReloadApi,
    reload_ids: Sequence[str],
    wait: WaitOptions,
    *,
    reporter: Reporter | None = None,
    clock: Callable[[], float] = _monotonic,
    sleep: Callable[[float], None] = _sleep,
) -> RunReport:
    """Follow existing reloads (started by another job, say) to their end or ``wait.timeout``.

    All are followed at once; the timeout counts from now. The report is the one ``run_reloads``
    gives, one result per reload id in order: exit code 0, 8 (FAILED/CANCELED/EXCEEDED_LIMIT,
    with the log tail) or 9 (timeout). Two reloads of one app are a UsageError (the tenant runs
    one reload of an app at a time, and results are keyed by app).
    """
    from dataclasses import replace

    records: dict[str, Mapping[str, Any]] = {}
    for reload_id in reload_ids:
        record = api.get(reload_id)
        app_id = str(record.get("appId") or "")
        if not app_id:
            raise ApiError(f"Reload {reload_id} names no appId.")
        if app_id in records:
            raise UsageError(
                f"Reloads {records[app_id].get('id')} and {reload_id} are both of app {app_id}.",
                hint="Wait for them one at a time.",
            )
        records[app_id] = record
    every = replace(wait, max_parallel=max(1, len(records)))
    return run_reloads(
        _ExistingReloads(api, records), list(records), wait=every, reporter=reporter,
        clock=clock, sleep=sleep,
    )  # fmt: skip


def cancel_reload(client: QlikClient, reload_id: str) -> Mapping[str, Any]:
    """Cancel a queued or running reload (reloads.json POST /reloads/{id}/actions/cancel).

    Returns the reload record after the cancel. A finished reload is a 409 from the tenant,
    raised as ApiError (exit 5) naming its final status.
    """
    path = f"/api/v1/reloads/{quote(reload_id, safe='')}"
    response = client.request("POST", f"{path}/actions/cancel", check=False)
    if response.status == 409:
        response.read_prefix()
        status = ClientReloadApi(client).get(reload_id).get("status")
        raise ApiError(
            f"Reload {reload_id} cannot be canceled: it already ended {status}.",
            details={"status": 409, "reloadStatus": status},
        )
    if response.status >= 400:
        from qlikm2m.http import error_for

        raise error_for(response)
    response.read_prefix()
    return ClientReloadApi(client).get(reload_id)


def reload_log(client: QlikClient, reload_id: str) -> Iterator[bytes]:
    """The whole script log of a reload, streamed (apps.json GET /apps/{appId}/reloads/logs/{id});
    the app id comes from the reload record."""
    record = ClientReloadApi(client).get(reload_id)
    app_id = str(record.get("appId") or "")
    path = f"/api/v1/apps/{quote(app_id, safe='')}/reloads/logs/{quote(reload_id, safe='')}"
    return client.request("GET", path).iter_bytes()
