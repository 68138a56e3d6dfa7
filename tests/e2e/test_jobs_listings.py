"""`spaces ls`, `items ls`, `apps ls` and `apps get` run as real processes against the sandbox."""

from __future__ import annotations

import json
import math
from typing import Any

from fixtures_sandbox import sandbox_env

from qlikm2m.sandbox import Sandbox

ITEMS_PATH = "GET /api/v1/items"


def _env_for(sandbox: Sandbox, cli_env: dict[str, str]) -> dict[str, str]:
    return sandbox_env(sandbox, cli_env)


def test_items_ls_returns_every_page_once_by_default(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    total = 2345
    big = make_sandbox(items=total)
    result = run_qlikm2m("items", "ls", env=_env_for(big, cli_env))
    assert result.returncode == 0, result.stderr
    ids = [record["id"] for record in json.loads(result.stdout)]
    assert len(ids) == total
    assert len(set(ids)) == total
    # Pages of 100, the API's maximum: 24 requests, not 235 of the default 10.
    assert big.count(ITEMS_PATH) == math.ceil(total / 100)
    assert "more exist" not in result.stderr


def test_ndjson_is_one_record_per_line(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    big = make_sandbox(items=345)
    result = run_qlikm2m("items", "ls", "--ndjson", env=_env_for(big, cli_env))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 345
    assert len({json.loads(line)["id"] for line in lines}) == 345


def test_limit_cuts_says_so_and_reads_one_page(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    result = run_qlikm2m("items", "ls", "--limit", "7")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 7
    assert "showing the first 7 items; more exist" in result.stderr
    assert sandbox.count(ITEMS_PATH) == 1


def test_limit_at_or_above_the_total_is_no_cut(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    small = make_sandbox(items=12)
    env = _env_for(small, cli_env)
    exact = run_qlikm2m("items", "ls", "--limit", "12", env=env)
    above = run_qlikm2m("items", "ls", "--limit", "500", env=env)
    for result in (exact, above):
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)) == 12
        assert "more exist" not in result.stderr


def test_limit_must_be_positive(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    result = run_qlikm2m("items", "ls", "--limit", "0")
    assert result.returncode == 2
    assert "--limit" in result.stderr
    assert sandbox.count(ITEMS_PATH) == 0


def test_items_filters_reach_the_api(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    everything = json.loads(run_qlikm2m("items", "ls").stdout)
    personal = [r for r in everything if not r.get("spaceId")]
    assert personal
    kind = personal[0]["resourceType"]
    result = run_qlikm2m("items", "ls", "--type", kind, "--space", "personal")
    assert result.returncode == 0, result.stderr
    expected = [r["id"] for r in personal if r["resourceType"] == kind]
    assert [r["id"] for r in json.loads(result.stdout)] == expected


def test_apps_ls_lists_every_app_by_its_app_id(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    as_json = run_qlikm2m("apps", "ls")
    assert as_json.returncode == 0, as_json.stderr
    records = json.loads(as_json.stdout)
    assert all(record["resourceType"] == "app" for record in records)
    assert sorted(record["resourceId"] for record in records) == sorted(sandbox.app_ids())

    table = run_qlikm2m("apps", "ls", "-o", "table")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "APP", "ID", "TYPE", "SPACE", "UPDATED"]
    assert len(lines) == len(records) + 1
    app_id_column = lines[0].index("APP ID")
    shown = {line[app_id_column:].split()[0] for line in lines[1:]}
    assert shown == set(sandbox.app_ids())


def test_spaces_ls_filters_by_type_and_name(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    everything = json.loads(run_qlikm2m("spaces", "ls").stdout)
    managed = run_qlikm2m("spaces", "ls", "--type", "managed")
    assert managed.returncode == 0, managed.stderr
    expected = [s["id"] for s in everything if s["type"] == "managed"]
    assert expected
    assert [s["id"] for s in json.loads(managed.stdout)] == expected

    one = everything[0]
    by_name = json.loads(run_qlikm2m("spaces", "ls", "--name", one["name"]).stdout)
    assert one["id"] in [s["id"] for s in by_name]

    bad = run_qlikm2m("spaces", "ls", "--type", "personal")
    assert bad.returncode == 2


def test_yaml_and_query_shape_the_whole_list(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    import yaml

    # 150 spaces: two pages of 100, so a query applied page by page would give 100 and 50.
    many = make_sandbox(spaces=150)
    env = sandbox_env(many, cli_env)
    everything = json.loads(run_qlikm2m("spaces", "ls", env=env).stdout)
    assert len(everything) == 150
    count = run_qlikm2m("spaces", "ls", "--query", "length(@)", env=env)
    assert count.returncode == 0, count.stderr
    assert json.loads(count.stdout) == 150
    names = run_qlikm2m("spaces", "ls", "--query", "[].name", env=env)
    assert json.loads(names.stdout) == [space["name"] for space in everything]
    as_yaml = run_qlikm2m("spaces", "ls", "-o", "yaml", env=env)
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout) == everything


def test_apps_get_prints_the_app(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    app_id = sandbox.app_ids()[0]
    result = run_qlikm2m("apps", "get", app_id)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["attributes"]["id"] == app_id

    missing = run_qlikm2m("apps", "get", "no-such-app")
    assert missing.returncode == 5
    assert "404" in missing.stderr
    assert "Traceback" not in missing.stderr
