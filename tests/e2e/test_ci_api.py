"""`qlikm2m api` end to end: pagination, streamed NDJSON in constant memory, bodies and files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import sandbox_env

from qlikm2m.sandbox import Sandbox


def test_paginate_emits_every_item_exactly_once(make_sandbox: Any, run_qlikm2m: Any) -> None:
    sandbox = make_sandbox(items=2345)
    env = _env_for(sandbox)
    result = run_qlikm2m("api", "v1/items", "--paginate", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    ids = Counter(item["id"] for item in items)
    assert len(ids) == 2345
    assert set(ids.values()) == {1}
    # No limit given: the items API's maximum page (100, items.json) rather than its default
    # (10), and every page was followed.
    assert sandbox.count("GET /api/v1/items") == 24
    assert sandbox.connections == 1  # one session, one kept-alive connection


def test_paginate_keeps_a_limit_given_in_the_path(make_sandbox: Any, run_qlikm2m: Any) -> None:
    sandbox = make_sandbox(items=45)
    result = run_qlikm2m("api", "v1/items?limit=10", "--ndjson", env=_env_for(sandbox))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 45
    assert sandbox.count("GET /api/v1/items") == 5


def test_paginate_leaves_a_list_without_a_known_maximum_at_its_default(
    make_sandbox: Any, run_qlikm2m: Any
) -> None:
    # spaces.json gives the spaces list a default page size (10) but no maximum.
    sandbox = make_sandbox()
    result = run_qlikm2m("api", "v1/spaces", "--ndjson", env=_env_for(sandbox))
    assert result.returncode == 0, result.stderr
    spaces = len(result.stdout.splitlines())
    assert sandbox.count("GET /api/v1/spaces") == max(1, -(-spaces // 10))


def test_paginate_with_query_and_params(make_sandbox: Any, run_qlikm2m: Any) -> None:
    sandbox = make_sandbox(items=230)
    env = _env_for(sandbox)
    result = run_qlikm2m(
        "api", "/api/v1/items", "-q", "limit=100", "--paginate", "--query", "length(@)", env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "230"
    assert sandbox.count("GET /api/v1/items") == 3


def test_ndjson_streams_one_item_per_line(make_sandbox: Any, run_qlikm2m: Any) -> None:
    sandbox = make_sandbox(items=120)
    result = run_qlikm2m(
        "api", "v1/items", "-q", "limit=50", "--ndjson", "--query", "id", env=_env_for(sandbox)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(set(lines)) == 120
    assert all(re.fullmatch(r'"[0-9a-f]{24}"', line) for line in lines)


def _env_for(sandbox: Sandbox) -> dict[str, str]:
    return sandbox_env(sandbox)


_PEAK_WRAPPER = (
    "import sys\n"
    "from qlikm2m.launcher import main\n"
    "sys.argv = ['qlikm2m', *sys.argv[1:]]\n"
    "rc = main()\n"
    "sys.stdout.flush()\n"
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's over exec.
    "peak = next(int(line.split()[1]) for line in open('/proc/self/status')"
    " if line.startswith('VmHWM:'))\n"
    "sys.stderr.write(f'PEAK_KB {peak}\\n')\n"
    "sys.exit(rc)\n"
)


def _ndjson_peak_kb(make_sandbox: Any, items: int, out: Path) -> int:
    """Peak RSS of one fresh process streaming ``items`` items to a file (its own maxrss)."""
    sandbox = make_sandbox(items=items)
    with out.open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-c", _PEAK_WRAPPER, "api", "v1/items", "-q", "limit=100", "--ndjson"],
            env=_env_for(sandbox),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    count = 0
    seen: set[str] = set()
    with out.open() as lines:
        for line in lines:
            seen.add(json.loads(line)["id"])
            count += 1
    assert count == len(seen) == items
    match = re.search(r"PEAK_KB (\d+)", result.stderr)
    assert match is not None
    return int(match.group(1))


@pytest.mark.slow
def test_ndjson_memory_does_not_grow_with_the_item_count(make_sandbox: Any, tmp_path: Path) -> None:
    small = _ndjson_peak_kb(make_sandbox, 2_000, tmp_path / "small.ndjson")
    large = _ndjson_peak_kb(make_sandbox, 50_000, tmp_path / "large.ndjson")
    # Holding 48,000 more items costs about 200 MB here (measured with --paginate --query);
    # streaming keeps the peak within allocator noise (a few MB) of the small run.
    assert large - small < 16 * 1024, (small, large)


def test_post_with_json_body_and_header(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    app_id = sandbox.app_ids()[0]
    result = run_qlikm2m(
        "api", "-X", "post", "v1/reloads", "-d", json.dumps({"appId": app_id}), "-H", "X-Test: 1"
    )
    assert result.returncode == 0, result.stderr
    reload = json.loads(result.stdout)
    assert reload["appId"] == app_id
    assert sandbox.count("POST /api/v1/reloads") == 1


def test_body_file_from_stdin_defaults_to_post(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    app_id = sandbox.app_ids()[0]
    result = run_qlikm2m(
        "api", "v1/reloads", "--body-file", "-", input=json.dumps({"appId": app_id})
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["appId"] == app_id


def test_include_prints_status_and_headers_on_stderr(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    result = run_qlikm2m("api", "v1/tenants/me", "--include")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("HTTP/1.1 200 OK")
    assert "content-type: application/json" in result.stderr.lower()
    assert json.loads(result.stdout)["name"] == "sandbox"


def test_output_file_streams_a_binary_body(
    sandbox: Sandbox, run_qlikm2m: Any, tmp_path: Path
) -> None:
    size = 3 * 1024 * 1024 + 7
    sandbox.force(
        status=200,
        stream_bytes=size,
        content_type="application/octet-stream",
        match="GET /api/v1/apps/",
    )
    target = tmp_path / "export.qvf"
    result = run_qlikm2m(
        "api", f"v1/apps/{sandbox.app_ids()[0]}/export", "--output-file", str(target)
    )
    assert result.returncode == 0, result.stderr
    assert target.stat().st_size == size
    assert f"wrote {size} bytes" in result.stderr
    assert result.stdout == ""


def test_bad_arguments_are_usage_errors(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    for args in (
        ("api", "v1/items", "-q", "novalue"),
        ("api", "v1/items", "-d", "{not json"),
        ("api", "v1/items", "-H", "Authorization: Bearer x"),
        # Once exit 1 "unexpected UnicodeEncodeError" from inside the HTTP library:
        ("api", "v1/items", "-H", "X-€: 1"),
        ("api", "v1/items", "-H", "X-Currency: €"),
        ("api", "v1/items", "-q", "name=\udcff"),  # the byte 0xff on argv: not UTF-8
        ("api", "-X", "POST", "v1/items", "--paginate"),
        ("api", "https://elsewhere.example.com/api/v1/items"),
    ):
        result = run_qlikm2m(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "unexpected" not in result.stderr
    assert sandbox.counters().get("GET /api/v1/items", 0) == 0


def test_next_page_on_another_host_is_refused(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    page = {
        "data": [{"id": "a"}],
        "links": {"next": {"href": "https://elsewhere.example.com/api/v1/items?next=x"}},
    }
    sandbox.force(status=200, body=page, match="GET /api/v1/items")
    result = run_qlikm2m("api", "v1/items", "--paginate")
    assert result.returncode == 5
    assert "elsewhere.example.com" in result.stderr
    assert "not sent elsewhere" in result.stderr


def test_looping_next_links_are_detected(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    page = {
        "data": [{"id": "a"}],
        "links": {"next": {"href": f"{sandbox.url}/api/v1/items?next=same"}},
    }
    sandbox.force(status=200, body=page, match="GET /api/v1/items", times=None)
    result = run_qlikm2m("api", "v1/items", "--ndjson")
    assert result.returncode == 5
    assert "points back to a page already read" in result.stderr
    assert sandbox.count("GET /api/v1/items") == 2
