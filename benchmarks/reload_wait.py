"""Target 3 of issue 14: `reload --wait` of 20 apps whose reloads take 6 s, all in parallel.

Simulated time (qlikm2m.reloads.run_reloads is driven by an injectable clock and sleep): what
is measured is the scheduler's choice of when to poll, not the machine. A simulated tenant runs
each reload for ``--seconds`` and counts every request. Three tenants: one whose credentials may
list every reload (a TenantAdmin: GET /api/v1/reloads without appId); one refused that list, as a
normal M2M bot is, but that may read the apps' items (GET /api/v1/items?resourceIds=..., whose
``resourceReloadEndTime`` says when an app's last reload ended); and one refused both.

    python benchmarks/reload_wait.py [--module FILE] [--apps 20] [--seconds 6]

``--module`` loads another version of qlikm2m/reloads.py (e.g. main's, from `git show`) to
measure it the same way. Prints one JSON object per tenant kind: ``end_to_exit_seconds`` (the last
reload's end to the wait's end), ``poll_requests`` (every request but the starts),
``final_reads`` (GETs of a reload that answered its final status: one per reload at least, whatever
the scheme), ``max_requests_per_tick`` (all requests at one moment), ``max_polls_per_tick`` (the
same without the final reads: what a tick costs while nothing ends), ``ticks`` and
``requests_per_minute``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# The tenant's own clock: simulated seconds from this moment, in the RFC 3339 of its records.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
TENANTS = {
    "may list (TenantAdmin)": (True, True),
    "may not list": (False, True),
    "may not list, no items": (False, False),
}
FINAL_READ = "GET /reloads/{id} (final)"


def stamp(seconds: float) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def make_tenant(
    errors: ModuleType, clock: Clock, seconds: float, *, may_list: bool, items: bool
) -> Any:
    class Tenant:
        def __init__(self) -> None:
            self.started: dict[str, float] = {}
            self.requests: list[tuple[float, str]] = []

        def _record(self, app_id: str) -> dict[str, Any]:
            started = self.started[app_id]
            done = clock.now - started >= seconds
            status = "SUCCEEDED" if done else "RELOADING"
            record = {"id": f"r-{app_id}", "appId": app_id, "status": status}
            record["creationTime"] = stamp(started)
            if done:
                record["endTime"] = stamp(started + seconds)
            return record

        def start(self, app_id: str, *, partial: bool) -> Mapping[str, Any]:
            self.requests.append((clock.now, "POST /reloads"))
            self.started[app_id] = clock.now
            return self._record(app_id)

        def get(self, reload_id: str) -> Mapping[str, Any]:
            record = self._record(reload_id.removeprefix("r-"))
            final = record["status"] == "SUCCEEDED"
            self.requests.append((clock.now, FINAL_READ if final else "GET /reloads/{id}"))
            return record

        def app_reload_ends(self, app_ids: Sequence[str]) -> Mapping[str, str | None]:
            self.requests.append((clock.now, "GET /items"))
            if not items:
                raise errors.ApiError("Forbidden.")
            ends: dict[str, str | None] = {}
            for app_id in app_ids:
                started = self.started[app_id]
                ended = clock.now - started >= seconds
                ends[app_id] = stamp(started + seconds) if ended else None
            return ends

        def log_tail(self, app_id: str, reload_id: str, lines: int) -> Sequence[str]:
            return []

        def list_recent(self, limit: int) -> Sequence[Mapping[str, Any]]:
            self.requests.append((clock.now, "GET /reloads"))
            if not may_list:
                raise errors.ApiError("appId is required.")
            return [self._record(app) for app in list(self.started)[::-1][:limit]]

    return Tenant()


def load(module: Path | None) -> ModuleType:
    if module is None:
        import qlikm2m.reloads

        return qlikm2m.reloads
    spec = importlib.util.spec_from_file_location("reloads_under_test", module)
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up
    spec.loader.exec_module(loaded)
    return loaded


def measure(reloads: ModuleType, apps: int, seconds: float, tenant_kind: str) -> dict[str, Any]:
    import qlikm2m.errors as errors

    clock = Clock()
    may_list, items = TENANTS[tenant_kind]
    tenant = make_tenant(errors, clock, seconds, may_list=may_list, items=items)
    ids = [f"app{i:02}" for i in range(apps)]
    wait = reloads.WaitOptions(max_parallel=apps)
    report = reloads.run_reloads(tenant, ids, wait=wait, clock=clock, sleep=clock.sleep)
    assert all(r.outcome.value == "succeeded" for r in report.results), report.results
    last_end = max(tenant.started.values()) + seconds
    polls = [t for t, what in tenant.requests if what != "POST /reloads"]
    per_tick = Counter(polls)
    without_final = Counter(
        t for t, what in tenant.requests if what not in ("POST /reloads", FINAL_READ)
    )
    kinds = Counter(what for _, what in tenant.requests if what != "POST /reloads")
    return {
        "tenant": tenant_kind,
        "apps": apps,
        "reload_seconds": seconds,
        "end_to_exit_seconds": round(clock.now - last_end, 3),
        "poll_requests": len(polls),
        "final_reads": kinds[FINAL_READ],
        "max_requests_per_tick": max(per_tick.values()),
        "max_polls_per_tick": max(without_final.values(), default=0),
        "ticks": len(per_tick),
        "requests_per_minute": round(len(polls) / clock.now * 60, 1),
        "requests": dict(sorted(kinds.items())),
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", type=Path, help="another qlikm2m/reloads.py to measure")
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    reloads = load(args.module)
    for tenant_kind in TENANTS:
        print(json.dumps(measure(reloads, args.apps, args.seconds, tenant_kind)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
