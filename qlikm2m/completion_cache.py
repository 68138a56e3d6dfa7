"""The app ids shell completion offers: those the last ``apps ls`` printed, for a few minutes.

Completion runs ``qlikm2m`` once per <TAB>; a request to the tenant there would make every <TAB>
wait on the network and mint tokens. Instead ``apps ls`` leaves the ids (and names) it printed in
``<cache dir>/completion-apps.json`` (0600, written atomically), and completion reads that file
while it is younger than ``APP_IDS_TTL`` seconds. App ids are not secrets, but names can be
confidential: the file is private like the token cache.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from qlikm2m import paths

APP_IDS_FILE = "completion-apps.json"
APP_IDS_TTL = 300.0  # seconds: long enough for the next command, short enough to not mislead
MAX_APP_IDS = 2000  # completion lists are for people; a tenant-wide dump is not needed


def app_ids_path(env: Mapping[str, str]) -> Path:
    return paths.cache_dir(env) / APP_IDS_FILE


def remember_apps(env: Mapping[str, str], records: Iterable[Mapping[str, Any]]) -> Iterator[Any]:
    """Pass ``records`` (items API app records) through, and once they are all read, store their
    ``resourceId`` and ``name`` for completion. A failure to write is ignored: completion is a
    convenience and must never fail the listing."""
    seen: list[list[str]] = []
    try:
        for record in records:
            yield record
            # Counted once printed: the record --limit reads past the cut is not offered.
            app_id = record.get("resourceId")
            if isinstance(app_id, str) and len(seen) < MAX_APP_IDS:
                seen.append([app_id, str(record.get("name") or "")])
    finally:
        if seen:
            _write(env, seen)


def _write(env: Mapping[str, str], seen: list[list[str]]) -> None:
    from qlikm2m import fileio

    document = {"written": time.time(), "apps": seen}
    with contextlib.suppress(OSError):
        fileio.atomic_write(app_ids_path(env), json.dumps(document).encode())


def recent_app_ids(env: Mapping[str, str], now: float | None = None) -> list[tuple[str, str]]:
    """``(app id, name)`` pairs from the last ``apps ls``, or [] when none is younger than
    ``APP_IDS_TTL``, or the file is missing or unreadable."""
    try:
        document = json.loads(app_ids_path(env).read_text(encoding="utf-8"))
        written = float(document["written"])
        apps = document["apps"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    age = (time.time() if now is None else now) - written
    if not 0 <= age <= APP_IDS_TTL or not isinstance(apps, list):
        return []
    return [
        (str(entry[0]), str(entry[1]))
        for entry in apps
        if isinstance(entry, list) and len(entry) == 2
    ]
