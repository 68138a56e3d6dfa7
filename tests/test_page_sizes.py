"""The page-size table of `api --paginate` matches Qlik's specs and never overrides a user's limit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.page_sizes import _MAXIMA, largest_page, with_largest_page

SPECS = Path(__file__).resolve().parents[2] / "shared" / "qlik-specs"
if not SPECS.is_dir():
    SPECS = Path("/work/shared/qlik-specs")


def _spec_maxima() -> dict[str, int]:
    found: dict[str, int] = {}
    for spec_file in sorted(SPECS.glob("*.json")):
        spec: dict[str, Any] = json.loads(spec_file.read_text())
        components = spec.get("components", {}).get("parameters", {})
        for path, operations in spec.get("paths", {}).items():
            get = operations.get("get") if isinstance(operations, dict) else None
            for parameter in (get or {}).get("parameters", []):
                if "$ref" in parameter:
                    parameter = components.get(parameter["$ref"].rsplit("/", 1)[-1], {})
                maximum = parameter.get("schema", {}).get("maximum")
                if parameter.get("name") == "limit" and maximum is not None:
                    found[re.sub(r"\{[^}]+\}", "{}", path)] = int(maximum)
    return found


def test_the_table_is_every_maximum_the_specs_state() -> None:
    spec = _spec_maxima()
    assert spec, SPECS
    assert dict(_MAXIMA) == spec


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://t.example/api/v1/items", 100),
        ("https://t.example/api/v1/items/", 100),
        ("https://t.example/api/v1/items?resourceType=app", 100),
        ("https://t.example/api/v1/items/abc/collections", 100),
        ("https://t.example/api/v1/data-files", 1000),
        ("https://t.example/api/v1/users", 100),
        ("https://t.example/api/v1/users/me", None),
        ("https://t.example/api/v1/spaces", None),
        ("https://t.example/api/v1/items/abc", None),
    ],
)
def test_largest_page_by_endpoint(url: str, expected: int | None) -> None:
    assert largest_page(url) == expected


def test_a_limit_the_user_gave_is_kept() -> None:
    items = "https://t.example/api/v1/items"
    assert with_largest_page(items, [("limit", "7")]) == [("limit", "7")]
    assert with_largest_page(items + "?limit=7", []) == []
    assert with_largest_page(items, [("resourceType", "app")]) == [
        ("resourceType", "app"),
        ("limit", "100"),
    ]
    assert with_largest_page("https://t.example/api/v1/spaces", []) == []
