"""The wheel carries the user guides, and an installed copy serves them with `qlikm2m help`."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_an_installed_wheel_serves_the_guides(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q", "-w", wheels, cwd=tmp_path)
    (wheel,) = wheels.glob("qlikm2m-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    guides = sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    assert {f"qlikm2m/_docs/{name}" for name in guides} <= names
    assert not any(name.startswith("docs/") for name in names)

    # One fresh venv; its dependencies come from this test run's environment, not an index.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    fresh_site = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
    )
    (Path(fresh_site.strip()) / "deps-from-test-env.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )

    # Away from the checkout, with no PYTHONPATH: only the installed copy can answer.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run(python, "-c", "import qlikm2m; print(qlikm2m.__file__)", cwd=tmp_path, env=env)
    assert where.startswith(str(venv))
    shown = _run(venv / "bin" / "qlikm2m", "help", "environment", cwd=tmp_path, env=env)
    assert shown == (ROOT / "docs" / "environment.md").read_text()
