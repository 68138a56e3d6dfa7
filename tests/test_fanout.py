"""The scheduling of `qlikm2m each` with stand-in processes: bounds, one command per tenant
server at a time, records in order, the worst exit code."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from qlikm2m.errors import UsageError
from qlikm2m.fanout import Outcome, Target, next_startable, record, run_each


class Recorder:
    """Stand-in Popen: each fake command reports itself running, then ends with the exit code the
    test planned for its context. Tracks what ran at the same time."""

    def __init__(self, codes: dict[str, int]) -> None:
        self.codes = codes
        self.lock = threading.Lock()
        self.running: list[str] = []
        self.max_running = 0
        self.overlaps: list[tuple[str, str]] = []
        self.servers: dict[str, str] = {}

    def __call__(self, argv: list[str], **_: Any) -> Any:
        context = argv[argv.index("-c") + 1]
        recorder = self

        class Process:
            returncode = 0

            def communicate(self) -> tuple[str, str]:
                with recorder.lock:
                    for other in recorder.running:
                        if recorder.servers[other] == recorder.servers[context]:
                            recorder.overlaps.append((other, context))
                    recorder.running.append(context)
                    recorder.max_running = max(recorder.max_running, len(recorder.running))
                threading.Event().wait(0.02)
                with recorder.lock:
                    recorder.running.remove(context)
                self.returncode = recorder.codes.get(context, 0)
                if self.returncode:
                    error = {"error": {"kind": "auth", "message": "no", "exitCode": 4}}
                    return "", json.dumps(error) + "\n"
                return json.dumps({"ran": context}), ""

            def poll(self) -> int | None:
                return self.returncode

        return Process()


def _targets(*pairs: tuple[str, str]) -> list[Target]:
    return [Target(name, server) for name, server in pairs]


def test_next_startable_skips_busy_servers() -> None:
    targets = _targets(("a", "s1"), ("b", "s1"), ("c", "s2"))
    assert next_startable([0, 1, 2], targets, set()) == 0
    assert next_startable([1, 2], targets, {"s1"}) == 2
    assert next_startable([1], targets, {"s1"}) is None


def test_bounded_one_per_server_records_in_order() -> None:
    targets = _targets(*[(f"ctx-{i:02d}", f"server-{i % 3}") for i in range(12)])
    recorder = Recorder({"ctx-04": 4, "ctx-07": 6})
    recorder.servers = {t.context: t.server for t in targets}
    out, err = io.StringIO(), io.StringIO()
    outcome = run_each(
        targets, ["tenant", "me"], env={}, stdout=out, stderr=err, parallel=5, spawn=recorder
    )
    assert recorder.overlaps == []
    # Three servers: never more than three at once, though five were allowed.
    assert recorder.max_running <= 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["context"] for line in lines] == [t.context for t in targets]
    assert lines[4]["error"]["exitCode"] == 4
    assert outcome.worst == 6
    assert outcome.failed == ["ctx-04", "ctx-07"]
    assert "12 contexts: 10 succeeded, 2 failed (ctx-04: exit 4, ctx-07: exit 6)" in err.getvalue()


def test_parallel_is_bounded() -> None:
    targets = _targets(*[(f"c{i}", f"s{i}") for i in range(8)])
    recorder = Recorder({})
    recorder.servers = {t.context: t.server for t in targets}
    run_each(
        targets,
        ["x"],
        env={},
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        parallel=2,
        spawn=recorder,
    )
    assert 1 <= recorder.max_running <= 2
    with pytest.raises(UsageError):
        run_each(targets, ["x"], env={}, stdout=io.StringIO(), stderr=io.StringIO(), parallel=0)


def test_records_carry_result_and_error() -> None:
    target = Target("p", "https://t")
    assert record(target, 0, '{"a": 1}\n', "") == {
        "context": "p",
        "server": "https://t",
        "exitCode": 0,
        "result": {"a": 1},
    }
    # A listing as NDJSON, and a failure with output and a non-JSON error.
    assert record(target, 0, '{"a":1}\n{"a":2}\n', "")["result"] == [{"a": 1}, {"a": 2}]
    failed = record(target, 1, "", "Traceback ...\nBoom\n")
    assert failed["error"] == {
        "kind": "unexpected",
        "message": "Traceback ...\nBoom",
        "exitCode": 1,
    }
    assert "result" not in failed
    assert Outcome({"a": 0, "b": None}).worst == 0
    assert Outcome({"a": 3, "b": 130, "c": 0}).worst == 130
