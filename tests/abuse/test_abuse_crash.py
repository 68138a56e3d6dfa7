"""Crash safety: writers killed with SIGKILL at random points never leave an unreadable contexts
file or token cache, and the state before the interrupted write survives.

A zygote process imports qlikm2m once, then forks a writer per round (a fresh interpreter per
kill would cost ~0.3 s each on a busy 2-core machine). Each writer loops over writes through the
project's own functions and appends an acknowledgement after every completed one; the test kills
it after a random delay, waits until it is gone, and checks the files: each must parse and hold
the last acknowledged state or the one that was being written, nothing else.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.contexts import contexts_path, load_contexts
from qlikm2m.sandbox import Sandbox
from qlikm2m.settings import explicit_settings
from qlikm2m.tokens import TokenManager, token_dir

ZYGOTE = """
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed writers are reaped at once
namespace = {}
exec(sys.argv[1], namespace)
namespace["prepare"]()
sys.stdout.write("ready\\n")
sys.stdout.flush()
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            # One write(2) per acknowledgement: O_APPEND keeps each line whole.
            namespace["work"](lambda text: os.write(fd, (text + "\\n").encode()))
        except BaseException:
            import traceback
            traceback.print_exc()  # a writer that fails on its own is a broken test: say why
            os._exit(1)
        os._exit(0)
    sys.stdout.write(f"{pid}\\n")
    sys.stdout.flush()
"""


class Zygote:
    """Forks writers on demand; its process group holds every writer, for the cleanup."""

    def __init__(self, code: str, env: dict[str, str], acks: Path) -> None:
        self.acks = acks
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, code, str(acks)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def spawn(self) -> int:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def acknowledged(self) -> list[str]:
        if not self.acks.exists():
            return []
        return [line for line in self.acks.read_text().splitlines() if line]

    def close(self) -> None:
        # The zygote and any writer still running: the group this test started, by its id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def kill_and_wait(pid: int) -> None:
    """SIGKILL, then wait until the process is gone: no write of it can still land after."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.001)
    raise AssertionError(f"writer {pid} survived SIGKILL")


def _settled_count(sandbox: Sandbox, operation: str) -> int:
    """The sandbox's count of ``operation`` once no new one has arrived for 0.3 s (bounded)."""
    count = sandbox.count(operation)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        again = sandbox.count(operation)
        if again == count:
            return count
        count = again
    return count


def kill_at_a_random_point(zygote: Zygote, rng: random.Random, window: float) -> None:
    """Start a writer and SIGKILL it at a random point.

    Half the rounds count from the start (the kill may land in the first write, or before it),
    half from the first completed write, so that many kills hit the steady write loop.
    """
    done = len(zygote.acknowledged())
    pid = zygote.spawn()
    if rng.random() < 0.5:
        deadline = time.monotonic() + 20
        while len(zygote.acknowledged()) == done and time.monotonic() < deadline:
            time.sleep(0.002)
    time.sleep(rng.uniform(0, window))
    kill_and_wait(pid)


@pytest.fixture
def zygotes() -> Iterator[list[Zygote]]:
    started: list[Zygote] = []
    yield started
    for zygote in started:
        zygote.close()


# --- the contexts file ----------------------------------------------------------------------

CONTEXTS = 12
CONTEXT_WRITER = f"""
import os
from qlikm2m.contexts import Context, ContextsFile, load_contexts, update_contexts

env = dict(os.environ)
N = {CONTEXTS}

def generation(contexts_file):
    return int(contexts_file.contexts["c00"].client_id.split("-")[1]) if contexts_file.contexts else 0

def prepare():
    load_contexts(env)
    import filelock, tomli_w  # noqa: F401 - loaded before the fork, as a long-lived process would

def work(ack):
    while True:
        def change(current):
            gen = generation(current) + 1
            # Every context changes in every write: a torn write could not go unnoticed.
            contexts = {{
                f"c{{i:02d}}": Context(
                    name=f"c{{i:02d}}", server=f"https://t{{i}}.example.com", auth_type="oauth",
                    client_id=f"id-{{gen}}", comment=f"generation {{gen}} " + "x" * 300,
                )
                for i in range(N)
            }}
            return ContextsFile(path=current.path, current=f"c{{gen % N:02d}}", contexts=contexts)
        written = update_contexts(env, change)
        ack(str(int(written.contexts["c00"].client_id.split("-")[1])))
"""


def _generation_on_disk(env: dict[str, str]) -> int:
    """The generation in the contexts file; it must parse and be one consistent state."""
    loaded = load_contexts(env)
    if not loaded.contexts:
        return 0
    generations = {int(c.client_id.split("-")[1]) for c in loaded.contexts.values() if c.client_id}
    assert len(generations) == 1, generations
    (generation,) = generations
    assert len(loaded.contexts) == CONTEXTS
    assert loaded.current == f"c{generation % CONTEXTS:02d}"
    for context in loaded.contexts.values():
        assert context.comment == f"generation {generation} " + "x" * 300
    return generation


@pytest.mark.slow
def test_killed_context_writers_never_leave_a_broken_file(
    zygotes: list[Zygote], tmp_path: Path, run_qlikm2m: Any, record_property: Any
) -> None:
    env = dict(os.environ)
    zygote = Zygote(CONTEXT_WRITER, env, tmp_path / "context-acks")
    zygotes.append(zygote)
    rng = random.Random(5)  # reproducible kill points
    on_disk = 0
    acked = 0
    idle_rounds = 0
    for _ in range(100):
        kill_at_a_random_point(zygote, rng, 0.03)
        acks = zygote.acknowledged()
        new = [int(ack) for ack in acks[acked:]]
        acked = len(acks)
        # This writer continued from what was on disk, one generation per completed write.
        assert new == list(range(on_disk + 1, on_disk + 1 + len(new)))
        found = _generation_on_disk(env)
        # The last completed state, or the write in flight that landed just before the kill.
        assert found in (on_disk + len(new), on_disk + len(new) + 1), (found, on_disk, new)
        idle_rounds += found == on_disk
        on_disk = found
    record_property("generations_written", on_disk)
    record_property("rounds_without_a_completed_write", idle_rounds)
    assert on_disk >= 20  # the writers did write: the kills hit a busy writer, not an idle one
    # The file is still usable by the real command, and the lock was not left held.
    path = contexts_path(env)
    before = path.read_bytes()
    other = f"c{(on_disk + 1) % CONTEXTS:02d}"
    assert run_qlikm2m("context", "use", other, env=env).returncode == 0
    assert load_contexts(env).current == other
    assert path.read_bytes() != before
    # Killed writers may leave their temporary files behind; never a second contexts file.
    visible = {p.name for p in path.parent.iterdir() if not p.name.startswith(".")}
    assert visible == {"contexts.toml", "contexts.toml.lock"}


# --- the token cache --------------------------------------------------------------------------

TOKEN_WRITER = """
import os, time
from qlikm2m.http import HttpOptions, Transport
from qlikm2m.settings import explicit_settings
from qlikm2m.tokens import TokenManager

env = dict(os.environ)
settings = explicit_settings(
    server=env["QLIK_SERVER"], auth_type="oauth", client_id=env["QLIK_CLIENT_ID"],
    secret=env["QLIK_CLIENT_SECRET"], ca_bundle=env["QLIK_CA_BUNDLE"],
)
transport = Transport(HttpOptions(ca_bundle=env["QLIK_CA_BUNDLE"]))

def prepare():
    # The TLS context (the system trust store: ~0.25 s) is built once, before the fork; no
    # connection is open yet, so no socket is shared between writers.
    transport.session
    import filelock  # noqa: F401

def work(ack):
    offset = [0.0]
    # A clock that jumps a day per round, from past the expiry of whatever is cached: every
    # cached token is stale, so each round mints (an HTTPS request) and rewrites the cache file.
    manager = TokenManager(settings, env, transport, clock=lambda: time.time() + offset[0])
    cached = manager.cached()
    if cached is not None and cached.expires_at is not None:
        offset[0] = cached.expires_at - time.time()
    while True:
        offset[0] += 86400.0
        token = manager.token()
        assert token.origin == "minted"
        ack(token.value)
"""


@pytest.mark.slow
def test_killed_token_minting_never_leaves_a_broken_cache(
    zygotes: list[Zygote],
    sandbox: Sandbox,
    cli_env: dict[str, str],
    tmp_path: Path,
    run_qlikm2m: Any,
    record_property: Any,
) -> None:
    zygote = Zygote(TOKEN_WRITER, cli_env, tmp_path / "token-acks")
    zygotes.append(zygote)
    reader = TokenManager(
        explicit_settings(
            server=sandbox.url,
            auth_type="oauth",
            client_id=sandbox.client_id,
            secret=sandbox.client_secret,
            ca_bundle=sandbox.ca_bundle,
        ),
        cli_env,
        transport=None,  # type: ignore[arg-type] - reading the cache needs no network
    )
    rng = random.Random(7)
    previous_index = -1
    for _ in range(60):
        kill_at_a_random_point(zygote, rng, 0.06)
        with sandbox.state.lock:
            issued = list(sandbox.state.tokens)  # in the order the sandbox minted them
        acks = zygote.acknowledged()
        cached = reader.cached()  # must never raise, whatever the kill left
        if not acks:
            # Nothing was ever written completely: no entry, or a miss.
            continue
        assert cached is not None, "a completed write was lost"
        index = issued.index(cached.value)
        # The last acknowledged token, or one minted after it whose write completed.
        assert index >= issued.index(acks[-1])
        assert index >= previous_index
        previous_index = index
    record_property("tokens_minted", len(sandbox.state.tokens))
    assert len(zygote.acknowledged()) >= 10
    for path in token_dir(cli_env).iterdir():
        assert path.stat().st_mode & 0o077 == 0, path  # leftovers too are private
    # The next real command works with whatever is there, and serves the cached token. A writer
    # killed just after sending its token request leaves that request in flight: the sandbox
    # may still count it after the kill, so the count is read once it has settled.
    before = _settled_count(sandbox, "POST /oauth/token")
    token = run_qlikm2m("auth", "token")
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip() in sandbox.state.tokens
    assert run_qlikm2m("tenant", "me").returncode == 0
    assert sandbox.count("POST /oauth/token") == before
