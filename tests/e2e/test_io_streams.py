"""Standard streams that are closed, full or in a legacy code page: a sentence and an exit code.

Subprocess tests: what they prove is the process boundary (descriptors closed before Python
starts, /dev/full, PYTHONIOENCODING), which an in-process run cannot show.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.errors import ExitCode

_ITEMS = {
    "data": [
        {"id": "1", "name": "日本", "resourceType": "app"},
        {"id": "2", "name": "café → 😀", "resourceType": "app"},
    ],
    "links": {},
}


def _run_in_shell(
    redirect: str, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run qlikm2m with a shell redirection applied to it, capturing what remains open."""
    script = f'"$0" -m qlikm2m "$@" {redirect}'
    return subprocess.run(
        ["sh", "-c", script, sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"], ids=["closed", "full"])
@pytest.mark.parametrize("output", ["json", "yaml", "table"])
def test_stdout_that_cannot_be_written_is_a_sentence_and_exit_10(
    cli_env: dict[str, str], redirect: str, output: str
) -> None:
    if redirect == ">/dev/full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    done = _run_in_shell(redirect, "-o", output, "tenant", "me", env=cli_env)
    assert done.returncode == ExitCode.OUTPUT, done.stderr
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert "please report" not in done.stderr
    reason = "it is closed" if redirect == ">&-" else "the disk is full"
    # -o json makes the error JSON too; either way it is the same sentence.
    assert f"Could not write the output to stdout: {reason}." in done.stderr


def test_version_to_a_closed_stdout(cli_env: dict[str, str]) -> None:
    done = _run_in_shell(">&-", "--version", env=cli_env)
    assert done.returncode == ExitCode.OUTPUT
    assert "Traceback" not in done.stderr


def test_closed_stderr_keeps_the_exit_code(cli_env: dict[str, str]) -> None:
    # http:// to a host that is not loopback is refused by settings, before any network use.
    env = {**cli_env, "QLIK_SERVER": "http://tenant.example.invalid"}
    closed = _run_in_shell("2>&-", "tenant", "me", env=env)
    assert closed.returncode == ExitCode.CONFIG
    full = _run_in_shell("2>/dev/full", "tenant", "me", env=env)
    assert full.returncode == ExitCode.CONFIG


def test_closed_stderr_does_not_hide_a_success(cli_env: dict[str, str]) -> None:
    done = _run_in_shell("2>&-", "tenant", "me", env=cli_env)
    assert done.returncode == 0
    assert json.loads(done.stdout)["id"]


def _cp1252(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "PYTHONIOENCODING": "cp1252"}


def _run_bytes(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "qlikm2m", *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def _force_items(sandbox: Any, times: int = 1) -> None:
    sandbox.force(
        status=200,
        body=json.dumps(_ITEMS),
        content_type="application/json",
        match="GET /api/v1/items",
        times=times,
    )


def test_json_in_a_legacy_code_page_is_complete_and_lossless(
    sandbox: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _force_items(sandbox)
    target = tmp_path / "items.json"
    with target.open("wb") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "qlikm2m", "items", "ls"],
            env=_cp1252(cli_env),
            stdout=handle,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    raw = target.read_bytes()
    # What cp1252 can carry is written as itself, the rest as JSON escapes: one valid document.
    assert "café".encode("cp1252") in raw
    assert b"\\u65e5\\u672c" in raw
    parsed = json.loads(raw.decode("cp1252"))
    assert [item["name"] for item in parsed] == ["日本", "café → 😀"]


def test_yaml_and_ndjson_in_a_legacy_code_page(sandbox: Any, cli_env: dict[str, str]) -> None:
    from qlikm2m import yaml_codec

    _force_items(sandbox)
    yaml_run = _run_bytes("-o", "yaml", "items", "ls", env=_cp1252(cli_env))
    assert yaml_run.returncode == 0, yaml_run.stderr
    names = [item["name"] for item in yaml_codec.load(yaml_run.stdout.decode("cp1252"))]
    assert names == ["日本", "café → 😀"]


@pytest.mark.parametrize("mode", ["--ndjson", "--paginate"])
def test_streamed_json_in_a_legacy_code_page(
    sandbox: Any, cli_env: dict[str, str], mode: str
) -> None:
    _force_items(sandbox)
    done = _run_bytes("api", "v1/items", mode, env=_cp1252(cli_env))
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("cp1252")
    if mode == "--ndjson":
        names = [json.loads(line)["name"] for line in text.splitlines()]
    else:
        names = [item["name"] for item in json.loads(text)]
    assert names == ["日本", "café → 😀"]


def test_table_and_doctor_fall_back_to_plain_characters(
    sandbox: Any, cli_env: dict[str, str]
) -> None:
    _force_items(sandbox)
    table = _run_bytes("-o", "table", "items", "ls", env=_cp1252(cli_env))
    assert table.returncode == 0, table.stderr
    text = table.stdout.decode("cp1252")
    assert "café -> ?" in text
    doctor = _run_bytes("doctor", env=_cp1252(cli_env))
    assert doctor.returncode == 0, doctor.stderr
    assert b"127.0.0.1 -> 127.0.0.1" in doctor.stdout
    assert b"Traceback" not in doctor.stderr


def test_error_messages_in_a_legacy_code_page(sandbox: Any, cli_env: dict[str, str]) -> None:
    # The error sentence quotes what the tenant said, in whatever script it said it.
    sandbox.force(
        status=404,
        body=json.dumps({"errors": [{"code": "X-1", "title": "Élément → 日本 introuvable"}]}),
        content_type="application/json",
        match="GET /api/v1/items/nope",
    )
    done = _run_bytes("api", "v1/items/nope", env=_cp1252(cli_env))
    assert done.returncode == ExitCode.API, done.stderr
    err = done.stderr.decode("cp1252")
    assert "Élément -> \\u65e5\\u672c introuvable (X-1)" in err
    assert "Traceback" not in err


def _force_download(sandbox: Any, size: int) -> list[str]:
    sandbox.force(
        status=200,
        stream_bytes=size,
        content_type="application/octet-stream",
        match="GET /api/v1/apps/",
    )
    return ["api", f"v1/apps/{sandbox.app_ids()[0]}/export", "--output-file"]


def test_output_file_on_a_full_device_is_exit_10_and_the_device_stays(
    sandbox: Any, run_qlikm2m: Any, tmp_path: Path
) -> None:
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no /dev/full device on this system")
    # Through a symlink: were the device renamed over, only the link would be lost.
    link = tmp_path / "full-disk"
    link.symlink_to("/dev/full")
    done = run_qlikm2m(*_force_download(sandbox, 100_000), str(link))
    assert done.returncode == ExitCode.OUTPUT, done.stderr
    assert f"Could not write --output-file {link}: the disk is full." in done.stderr
    assert link.is_symlink()
    assert stat.S_ISCHR(os.stat(link).st_mode)


def test_output_file_into_a_fifo_writes_through_it(
    sandbox: Any, run_qlikm2m: Any, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[int] = []

    def read() -> None:
        with fifo.open("rb") as reader:
            received.append(len(reader.read()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done = run_qlikm2m(*_force_download(sandbox, 300_000), str(fifo))
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert received == [300_000]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_output_file_that_is_a_folder_is_a_usage_error(
    sandbox: Any, run_qlikm2m: Any, tmp_path: Path
) -> None:
    done = run_qlikm2m(*_force_download(sandbox, 10), str(tmp_path))
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "is a folder" in done.stderr
