"""Target 3 of issue 14: `reload --wait` of 20 apps whose reloads take 6 s, all in parallel.

Simulated time (qlikm2m.reloads.run_reloads is driven by an injectable clock and sleep): what
is measured is the scheduler's choice of when to poll, not the machine. A simulated tenant runs
each reload for ``--seconds`` and counts every request. Two tenants: one whose credentials may list
every reload (a TenantAdmin: GET /api/v1/reloads without appId) and one refused that list.

    python benchmarks/reload_wait.py [--module FILE] [--apps 20] [--seconds 6]

``--module`` loads another version of qlikm2m/reloads.py (e.g. main's, from `git show`) to
measure it the same way. Prints one JSON object per tenant kind.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
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


class Refused(Exception):
    pass


def make_tenant(errors: ModuleType, clock: Clock, seconds: float, *, may_list: bool) -> Any:
    class Tenant:
        def __init__(self) -> None:
            self.started: dict[str, float] = {}
            self.requests: list[tuple[float, str]] = []

        def _record(self, app_id: str) -> dict[str, Any]:
            done = clock.now - self.started[app_id] >= seconds
            status = "SUCCEEDED" if done else "RELOADING"
            return {"id": f"r-{app_id}", "appId": app_id, "status": status}

        def start(self, app_id: str, *, partial: bool) -> Mapping[str, Any]:
            self.requests.append((clock.now, "POST /reloads"))
            self.started[app_id] = clock.now
            return self._record(app_id)

        def get(self, reload_id: str) -> Mapping[str, Any]:
            self.requests.append((clock.now, "GET /reloads/{id}"))
            return self._record(reload_id.removeprefix("r-"))

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


def measure(reloads: ModuleType, apps: int, seconds: float, *, may_list: bool) -> dict[str, Any]:
    import qlikm2m.errors as errors

    clock = Clock()
    tenant = make_tenant(errors, clock, seconds, may_list=may_list)
    ids = [f"app{i:02}" for i in range(apps)]
    wait = reloads.WaitOptions(max_parallel=apps)
    report = reloads.run_reloads(tenant, ids, wait=wait, clock=clock, sleep=clock.sleep)
    assert all(r.outcome.value == "succeeded" for r in report.results), report.results
    last_end = max(tenant.started.values()) + seconds
    polls = [t for t, what in tenant.requests if what != "POST /reloads"]
    per_tick = Counter(polls)
    return {
        "tenant": "may list (TenantAdmin)" if may_list else "may not list",
        "apps": apps,
        "reload_seconds": seconds,
        "end_to_exit_seconds": round(clock.now - last_end, 3),
        "poll_requests": len(polls),
        "max_requests_per_tick": max(per_tick.values()),
        "ticks": len(per_tick),
        "requests_per_minute": round(len(polls) / clock.now * 60, 1),
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", type=Path, help="another qlikm2m/reloads.py to measure")
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    reloads = load(args.module)
    for may_list in (True, False):
        print(json.dumps(measure(reloads, args.apps, args.seconds, may_list=may_list)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
