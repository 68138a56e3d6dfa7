"""A Node script using Qlik's @qlik/api runs under `qlikm2m exec` against the HTTPS sandbox.

@qlik/api is installed by scripts/node_deps.sh into ./.cache/node (CI runs it before the tests;
a test never reaches the npm registry: tests talk to 127.0.0.1 only). Without node or that folder
this test is skipped, except where QLIKM2M_REQUIRE_NODE=1 (CI) makes the absence a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qlikm2m.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(os.environ.get("QLIKM2M_NODE_DIR", ROOT / ".cache" / "node"))
SCRIPT = ROOT / "tests" / "data" / "node" / "qlik_api_exec.mjs"


def _node_project(tmp_path: Path) -> Path:
    """A folder holding the script beside a node_modules link: Node resolves packages from the
    script's own folder upwards."""
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed (apt-get install nodejs npm)"
    elif not (NODE_DIR / "node_modules" / "@qlik" / "api" / "package.json").is_file():
        missing = f"@qlik/api is not installed in {NODE_DIR} (run scripts/node_deps.sh)"
    if missing is not None:
        if os.environ.get("QLIKM2M_REQUIRE_NODE") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    project = tmp_path / "node-project"
    project.mkdir()
    (project / "node_modules").symlink_to(NODE_DIR / "node_modules", target_is_directory=True)
    shutil.copy(SCRIPT, project / SCRIPT.name)
    return project / SCRIPT.name


def test_qlik_api_uses_the_token_qlikm2m_hands_over(
    tmp_path: Path, sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    script = _node_project(tmp_path)
    assert sandbox.ca_bundle is not None
    cli_env["NODE_EXTRA_CA_CERTS"] = sandbox.ca_bundle
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "exec", "--", "node", str(script)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    # @qlik/api reached the tenant and the bot user of our OAuth client with the handed token.
    assert seen["tenantId"] == seen["expectedTenantId"]
    assert seen["clientId"] == sandbox.client_id
    assert seen["hasSecret"] is False
    # qlikm2m minted the one token; @qlik/api called the API only, never the token endpoint.
    assert sandbox.count("POST /oauth/token") == 1
    assert sandbox.count("GET /api/v1/users/me") == 1
