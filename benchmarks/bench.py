"""The benchmark harness behind benchmarks/run.sh: qlikm2m against Qlik's own clients.

Everything runs against the built-in sandbox tenant over HTTPS on loopback. Contenders are
interleaved run by run (a fresh random order each round), so a noisy neighbour or a CPU-frequency
change hits all of them alike; each section reports medians with p10/p90. Results go to a
Markdown file (benchmarks/RESULTS.md for a full run).

Only the standard library plus trustme (from the project's test extras) is imported here.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
CLIENTS = HERE / "clients"

TOKEN_KEY = "POST /oauth/token"
TENANT_ME = "/api/v1/tenants/me"

# Modules whose import cost explains a start-up figure; importtime tables list the biggest.
IMPORTTIME_TOP = 8


# --------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class Plan:
    rounds: int  # tenant me latency: runs of each contender
    startup_rounds: int
    sequential: int  # token economy: commands run one after another
    parallel: int  # ... and all at once
    items: tuple[int, ...]  # listing at scale: sandbox sizes
    listing_runs: int
    page_rounds: int
    sections: tuple[str, ...]
    seed: int


SECTIONS = ("latency", "anatomy", "startup", "tokens", "listing", "pages", "reloads")


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.sh",
        description="Benchmark qlikm2m against qlik-sdk, @qlik/api, curl and the standard library.",
    )
    parser.add_argument("--quick", action="store_true", help="few runs of each: a smoke test")
    parser.add_argument("--rounds", type=int, help="tenant me runs per contender (full: 41)")
    parser.add_argument("--startup-rounds", type=int, help="start-up runs per contender (full: 61)")
    parser.add_argument("--sequential", type=int, help="token economy: sequential commands (100)")
    parser.add_argument("--parallel", type=int, help="token economy: parallel commands (16)")
    parser.add_argument(
        "--items", help="listing: comma-separated sandbox sizes (full: 10000,100000)"
    )
    parser.add_argument("--listing-runs", type=int, help="listing runs per size (full: 3)")
    parser.add_argument(
        "--page-rounds", type=int, help="pages: interleaved rounds of 10,000 items (full: 5)"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument("--seed", type=int, default=5, help="seed of the interleaving order")
    parser.add_argument("--output", type=Path, help="Markdown file to write")
    parser.add_argument(
        "--wait-idle",
        type=float,
        metavar="LOAD",
        help="first wait (up to 15 min) for the 1-minute load average to drop to LOAD",
    )
    parser.add_argument("--venv", type=Path, required=True, help="the project's venv")
    parser.add_argument("--sdk-python", type=Path, required=True, help="python of qlik-sdk's venv")
    parser.add_argument("--node-dir", type=Path, required=True, help="npm project with @qlik/api")
    args = parser.parse_args(argv)
    quick = args.quick

    def pick(value: int | None, full: int, fast: int) -> int:
        if value is not None:
            return value
        return fast if quick else full

    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    items_text = args.items or ("2000,10000" if quick else "10000,100000")
    plan = Plan(
        rounds=pick(args.rounds, 41, 5),
        startup_rounds=pick(args.startup_rounds, 61, 7),
        sequential=pick(args.sequential, 100, 20),
        parallel=pick(args.parallel, 16, 16),
        items=tuple(int(n) for n in items_text.split(",")),
        listing_runs=pick(args.listing_runs, 3, 1),
        page_rounds=pick(args.page_rounds, 5, 2),
        sections=sections,
        seed=args.seed,
    )
    if args.output is None:
        args.output = WORK / "RESULTS-quick.md" if quick else HERE / "RESULTS.md"
    return args, plan


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Running one command


@dataclass(frozen=True)
class Run:
    seconds: float
    returncode: int
    stdout_head: bytes  # the first 64 KiB, to check the answer
    stdout_lines: int
    stdout_bytes: int
    stderr: str
    cpu: float = 0.0  # the process's user + system CPU seconds (wait4)


def run_once(argv: Sequence[str], env: Mapping[str, str], *, keep: int = 1 << 16) -> Run:
    """Run a command with its output piped, as a script would, and time it to its exit.

    The output is read as it comes (counting lines) so a large listing never waits on a full
    pipe. (Its peak RSS is measured apart, by GNU time: see run_with_peak_rss.)
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=dict(env)
        )
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        head = bytearray()
        lines = total = 0
        while chunk := os.read(fd, 1 << 20):
            lines += chunk.count(b"\n")
            total += len(chunk)
            if len(head) < keep:
                head += chunk[: keep - len(head)]
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, proc.returncode, bytes(head), lines, total, stderr, cpu)


GNU_TIME = "/usr/bin/time"


def run_with_peak_rss(argv: Sequence[str], env: Mapping[str, str]) -> tuple[Run, int]:
    """Run a command under GNU time and return its own peak RSS in KiB too.

    Not wait4's ru_maxrss of our child: Linux carries the RSS high-water mark of the process
    that spawned it over the exec (ours, a Python with trustme loaded, ~35 MiB), so a small
    command would report our peak. GNU time forks the command from its own small process.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        run = run_once([GNU_TIME, "--format", "%M", "--output", rss.name, *argv], env)
        text = Path(rss.name).read_text().split()
    # With a failing command GNU time writes "Command exited with non-zero status N" first.
    return run, int(text[-1]) if text and text[-1].isdigit() else -1


class BenchError(RuntimeError):
    pass


def check(run: Run, what: str, *, expect: str | None = None) -> Run:
    if run.returncode != 0:
        raise BenchError(f"{what} failed (exit {run.returncode}): {run.stderr.strip()[-2000:]}")
    if expect is not None and expect.encode() not in run.stdout_head:
        raise BenchError(f"{what}: {expect!r} not in its output: {run.stdout_head[:500]!r}")
    return run


# --------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    p10: float
    p90: float
    minimum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        ordered = sorted(values)
        return cls(
            len(ordered),
            statistics.median(ordered),
            percentile(ordered, 10),
            percentile(ordered, 90),
            ordered[0],
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * pct / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# --------------------------------------------------------------------------------------------
# TLS and the sandbox


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_tls(folder: Path) -> Tls:
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="qlikm2m benchmark CA")
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    tls = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(tls.ca))
    server.private_key_pem.write_to_path(str(tls.key))
    with tls.cert.open("wb") as out:
        for pem in server.cert_chain_pems:
            out.write(pem.bytes())
    tls.key.chmod(0o600)
    return tls


@dataclass
class Sandbox:
    proc: subprocess.Popen[bytes]
    settings: dict[str, str]
    tls: Tls
    log_path: Path
    _drain: threading.Thread | None = None
    _ssl: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self._ssl = ssl.create_default_context(cafile=str(self.tls.ca))

    @property
    def url(self) -> str:
        return self.settings["QLIK_SERVER"].rstrip("/")

    def _open(self, request: urllib.request.Request) -> bytes:
        with urllib.request.urlopen(request, context=self._ssl, timeout=30) as response:
            body: bytes = response.read()
            return body

    def counters(self) -> dict[str, int]:
        """Requests per endpoint ("POST /oauth/token": n, ...), from the control API."""
        basic = base64.b64encode(
            f"{self.settings['QLIK_CLIENT_ID']}:{self.settings['QLIK_CLIENT_SECRET']}".encode()
        ).decode()
        request = urllib.request.Request(
            self.url + CONTROL_COUNTERS, headers={"Authorization": f"Basic {basic}"}
        )
        counts = json.loads(self._open(request))["requests"]
        return {str(k): int(v) for k, v in counts.items()}

    def count(self, key: str) -> int:
        return self.counters().get(key, 0)

    def mint_token(self) -> str:
        """A token for the curl and standard-library floors, minted by hand like a script would."""
        body = json.dumps(
            {
                "client_id": self.settings["QLIK_CLIENT_ID"],
                "client_secret": self.settings["QLIK_CLIENT_SECRET"],
                "grant_type": "client_credentials",
            }
        ).encode()
        request = urllib.request.Request(
            self.url + "/oauth/token",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        token: str = json.loads(self._open(request))["access_token"]
        return token

    def get_json(self, path: str, token: str) -> object:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {token}"}
        )
        return json.loads(self._open(request))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._drain is not None:
            self._drain.join(timeout=5)


# The control API's counters endpoint (docs/sandbox.md); Basic auth with the client's credentials.
CONTROL_COUNTERS = "/_sandbox/counters"


@contextmanager
def sandbox(
    qlikm2m: Path, tls: Tls, env: Mapping[str, str], *, items: int | None = None
) -> Iterator[Sandbox]:
    argv = [
        str(qlikm2m),
        "sandbox",
        "serve",
        "--port",
        "0",
        "--tls-cert",
        str(tls.cert),
        "--tls-key",
        str(tls.key),
        "--tls-ca",
        str(tls.ca),
    ]
    if items is not None:
        argv += ["--items", str(items)]
    log_path = WORK / f"sandbox-{items if items is not None else 'default'}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file, env=dict(env)
        )
    assert proc.stdout is not None
    settings: dict[str, str] = {}
    deadline = time.monotonic() + 120
    # The sandbox prints its export-ready QLIK_* settings first, the client secret last of them.
    while "QLIK_CLIENT_SECRET" not in settings:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise BenchError(
                f"the sandbox did not start: {log_path.read_text(errors='replace')[-2000:]}"
            )
        text = line.decode(errors="replace").strip()
        if text.startswith("export "):
            text = text[len("export ") :]
        name, sep, value = text.partition("=")
        if sep and name.startswith("QLIK_"):
            settings[name] = value.strip().strip("'\"")
    box = Sandbox(proc, settings, tls, log_path)
    stdout = proc.stdout

    def drain() -> None:
        with log_path.open("ab") as out:
            for line in stdout:
                out.write(line)

    box._drain = threading.Thread(target=drain, daemon=True)
    box._drain.start()
    try:
        yield box
    finally:
        box.stop()


# --------------------------------------------------------------------------------------------
# The contenders


@dataclass(frozen=True)
class Contender:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    expect: str | None = None  # a string its output must hold
    # Called before each run, outside the timing; returns an env overlay (e.g. a fresh cache dir).
    prepare: Callable[[], Mapping[str, str]] | None = None


@dataclass
class Tools:
    venv: Path
    sdk_python: Path
    node_dir: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def qlikm2m(self) -> Path:
        return self.venv / "bin" / "qlikm2m"


def trust_ca_in_sdk_venv(sdk_python: Path, ca: Path) -> None:
    """Add the test CA to the certifi bundle of qlik-sdk's throwaway venv.

    qlik-sdk sends its requests with `Session.send`, which skips requests' environment merging:
    REQUESTS_CA_BUNDLE is never read, and only certifi's bundle is trusted. Its venv is ours and
    throwaway, so the CA goes there (the pristine bundle is kept beside it and reused each run).
    """
    where = subprocess.run(
        [str(sdk_python), "-c", "import certifi; print(certifi.where())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    bundle = Path(where)
    pristine = bundle.with_name(bundle.name + ".pristine")
    if not pristine.exists():
        shutil.copyfile(bundle, pristine)
    bundle.write_bytes(pristine.read_bytes() + b"\n" + ca.read_bytes())


def base_env(work: Path) -> dict[str, str]:
    """The caller's environment minus anything that would change what is measured."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QLIK_", "QLIKM2M_"))
        and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
        and k
        not in {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["QLIKM2M_CONFIG_DIR"] = str(work / "config")
    env["QLIKM2M_CACHE_DIR"] = str(work / "cache-unused")
    # Start-up figures include reading cached bytecode, as on any installed machine.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class FreshDirs:
    """Throwaway folders for cold runs (a new token cache each time), removed at the end."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        parent.mkdir(parents=True, exist_ok=True)

    def new(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="cache-", dir=self.parent))

    def cleanup(self) -> None:
        shutil.rmtree(self.parent, ignore_errors=True)


def tenant_me_contenders(
    tools: Tools, box: Sandbox, env: Mapping[str, str], fresh: FreshDirs
) -> tuple[list[Contender], str]:
    token = box.mint_token()
    tenant = box.get_json(TENANT_ME, token)
    tenant_id = str(tenant["id"]) if isinstance(tenant, dict) else ""
    if not tenant_id:
        raise BenchError(f"tenants/me gave no id: {tenant!r}")
    user = box.get_json(USERS_ME, token)
    user_id = str(user["id"]) if isinstance(user, dict) else ""
    creds = {k: box.settings[k] for k in ("QLIK_SERVER", "QLIK_CLIENT_ID", "QLIK_CLIENT_SECRET")}
    ca = str(box.tls.ca)
    ours = {**env, **creds, "QLIK_CA_BUNDLE": ca}
    warm_cache = fresh.new()
    warm_env = {**ours, "QLIKM2M_CACHE_DIR": str(warm_cache)}
    # Fill the warm cache once; every timed warm run then reuses that token.
    check(run_once([str(tools.qlikm2m), "tenant", "me"], warm_env), "warming qlikm2m's cache")
    curl_argv = (
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--location",
        "--cacert",
        ca,
        "--header",
        f"Authorization: Bearer {token}",
        box.url + TENANT_ME,
    )
    contenders = [
        Contender(
            "qlikm2m tenant me (warm)",
            (str(tools.qlikm2m), "tenant", "me"),
            warm_env,
            tenant_id,
        ),
        Contender(
            "qlikm2m tenant me (cold)",
            (str(tools.qlikm2m), "tenant", "me"),
            ours,
            tenant_id,
            prepare=lambda: {"QLIKM2M_CACHE_DIR": str(fresh.new())},
        ),
        Contender(
            "qlik-sdk (Python)",
            (str(tools.sdk_python), str(CLIENTS / "qlik_sdk_tenant_me.py")),
            {**env, **creds, "REQUESTS_CA_BUNDLE": ca},
            tenant_id,
        ),
        Contender(
            "@qlik/api (Node)",
            ("node", str(tools.node_dir / "qlik_api_tenant_me.mjs")),
            {**env, **creds, "NODE_EXTRA_CA_CERTS": ca},
            tenant_id,
        ),
        Contender("floor: curl", curl_argv, env, tenant_id),
        *same_trust_contenders(tools, box, warm_env, tenant_id, user_id),
        Contender(
            "floor: python3 stdlib",
            (str(tools.python), str(CLIENTS / "stdlib_tenant_me.py")),
            {
                **env,
                "QLIK_SERVER": box.url,
                "QLIK_ACCESS_TOKEN": token,
                "QLIK_CA_BUNDLE": ca,
            },
            tenant_id,
        ),
    ]
    return contenders, tenant_id


WARMUP_ROUNDS = 2
WARM = "qlikm2m tenant me (warm)"
USERS_ME = "/api/v1/users/me"
# Issue 14 target 1: each warm command against the standard library doing the same requests with
# the same trust (the OS's CA file plus the extra CA, the token read from qlikm2m's cache file).
# (label, qlikm2m arguments, the floor's path)
SAME_TRUST = (
    ("tenant me", ("tenant", "me"), TENANT_ME),
    ("user me", ("user", "me"), USERS_ME),
    ("api GET", ("api", "v1/spaces"), "/api/v1/spaces"),
)
SAME_TRUST_FLOOR = "floor: python3 stdlib, same trust ({})"
WARM_OF = "qlikm2m {} (warm)"


def same_trust_contenders(
    tools: Tools, box: Sandbox, warm_env: Mapping[str, str], tenant_id: str, user_id: str
) -> list[Contender]:
    """The other warm commands of target 1, and a same-trust floor for each of the three."""
    expects = {"tenant me": tenant_id, "user me": user_id, "api GET": '"data"'}
    out: list[Contender] = []
    for label, args, path in SAME_TRUST:
        if label != "tenant me":
            out.append(
                Contender(
                    WARM_OF.format(label), (str(tools.qlikm2m), *args), warm_env, expects[label]
                )
            )
        out.append(
            Contender(
                SAME_TRUST_FLOOR.format(label),
                (str(tools.python), str(CLIENTS / "stdlib_same_trust.py"), path),
                warm_env,
                expects[label],
            )
        )
    return out


def interleave(
    contenders: Sequence[Contender],
    rounds: int,
    rng: random.Random,
    *,
    warmup: int = WARMUP_ROUNDS,
    cpu: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Each round runs every contender once, in a fresh random order; returns wall times (and
    fills ``cpu``, when given, with each run's user + system CPU seconds)."""
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    for round_no in range(-warmup, rounds):
        order = list(contenders)
        rng.shuffle(order)
        for contender in order:
            env = dict(contender.env)
            if contender.prepare is not None:
                env.update(contender.prepare())
            run = check(run_once(contender.argv, env), contender.name, expect=contender.expect)
            if round_no >= 0:
                times[contender.name].append(run.seconds)
                if cpu is not None:
                    cpu.setdefault(contender.name, []).append(run.cpu)
        if round_no >= 0 and (round_no + 1) % 10 == 0:
            log(f"  round {round_no + 1}/{rounds}")
    return times


# --------------------------------------------------------------------------------------------
# Sections


@dataclass
class Report:
    plan: Plan
    machine: dict[str, str] = field(default_factory=dict)
    latency: dict[str, Stats] = field(default_factory=dict)
    startup: dict[str, Stats] = field(default_factory=dict)
    anatomy: dict[str, Stats] = field(default_factory=dict)
    tokens: list[dict[str, object]] = field(default_factory=list)
    listing: list[dict[str, object]] = field(default_factory=list)
    pages: dict[str, Stats] = field(default_factory=dict)
    pages_cpu: dict[str, Stats] = field(default_factory=dict)  # user + system CPU seconds
    pages_rss: dict[str, int] = field(default_factory=dict)  # KiB, one run under GNU time
    parallel_warm: dict[str, float] = field(default_factory=dict)
    reload_wait: list[dict[str, object]] = field(default_factory=list)
    importtime: dict[str, list[PackageCost]] = field(default_factory=dict)
    importtime_totals: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    loads: dict[str, tuple[float, float]] = field(default_factory=dict)  # section: 1-min load

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        start = os.getloadavg()[0]
        yield
        self.loads[name] = (start, os.getloadavg()[0])

    def load_note(self, name: str) -> list[str]:
        if name not in self.loads:
            return []
        start, end = self.loads[name]
        return [
            f"1-minute load average {start:.2f} at the start of this section, {end:.2f} at its end.",
            "",
        ]


def section_latency(
    report: Report, tools: Tools, box: Sandbox, env: Mapping[str, str], fresh: FreshDirs
) -> None:
    contenders, _ = tenant_me_contenders(tools, box, env, fresh)
    log(f"latency: {len(contenders)} contenders x {report.plan.rounds} rounds, interleaved")
    before = box.count(TOKEN_KEY)
    times = interleave(
        contenders, report.plan.rounds, random.Random(report.plan.seed), warmup=WARMUP_ROUNDS
    )
    minted = box.count(TOKEN_KEY) - before
    # Cold qlikm2m and both SDK scripts mint once a run; the warm one and the floors never.
    expected = 3 * (report.plan.rounds + WARMUP_ROUNDS)
    if minted != expected:
        raise BenchError(
            f"{minted} tokens minted during the latency runs, {expected} expected: "
            "the warm contender is not warm"
        )
    report.notes.append(
        f"Latency runs minted {minted} tokens: one per cold qlikm2m and SDK-script run, none for "
        "the warm qlikm2m runs (checked)."
    )
    report.latency = {name: Stats.of(values) for name, values in times.items()}
    # Target 4: 16 warm commands at once (a CI matrix), against what one costs in CPU.
    warm = next(c for c in contenders if c.name == WARM)
    count = report.plan.parallel
    log(f"latency: {count} parallel warm tenant me")
    start = time.perf_counter()
    runs = run_parallel(warm, warm.env, count)
    report.parallel_warm = {
        "count": count,
        "wall": time.perf_counter() - start,
        "cpu": sum(r.cpu for r in runs),
        "cpus": float(os.cpu_count() or 1),
    }


# The pieces a warm `tenant me` is made of, each alone in a fresh interpreter. Some reach into
# qlikm2m's and Typer's internals: a piece that no longer runs is left out, with a note.
ANATOMY = (
    ("interpreter: python3 -c pass", "interpreter", "pass"),
    (
        # What a warm `tenant me` imports to dispatch since issue 14: no Typer or Click.
        "CLI: the launcher's fast path (import qlikm2m.fast_path and what it runs for `tenant me`)",
        "fast-path dispatch",
        "import qlikm2m.fast_path, qlikm2m.boundary, qlikm2m.commands.tenant_run",
    ),
    (
        "CLI: import qlikm2m.cli (Typer; every command but the fast path's)",
        "Typer CLI import",
        "import qlikm2m.cli",
    ),
    (
        "CLI: import qlikm2m.cli, then build the `tenant me` command tree (typer.main.get_command; "
        "what `tenant me` paid before the fast path)",
        "Typer CLI import and command tree",
        "from qlikm2m.cli import build_app; import typer.main; "
        "typer.main.get_command(build_app(['tenant', 'me']))",
    ),
    ("HTTP stack: import requests", "import requests", "import requests"),
    (
        "TLS: a context with the OS trust store (qlikm2m.http.tls_context)",
        "TLS context with the OS trust store",
        "from qlikm2m.http import tls_context; tls_context()",
    ),
    (
        # What truststore does on Linux at the first handshake; the stdlib floor trusts only the
        # test CA and Node its built-in roots, so neither pays it.
        "TLS: parse the OS's CA file (`SSLContext.set_default_verify_paths`)",
        "parsing the OS's CA file",
        "import ssl; ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_default_verify_paths()",
    ),
)


def section_anatomy(
    report: Report, tools: Tools, box: Sandbox, env: Mapping[str, str], fresh: FreshDirs
) -> None:
    contenders, _ = tenant_me_contenders(tools, box, env, fresh)
    keep = {"qlikm2m tenant me (warm)", "floor: python3 stdlib"}
    chosen = [c for c in contenders if c.name in keep]
    for label, _short, code in ANATOMY:
        contender = Contender(label, (str(tools.python), "-c", code), env)
        trial = run_once(contender.argv, env)
        if trial.returncode != 0:
            report.notes.append(f"anatomy: `{code}` no longer runs; left out.")
            continue
        chosen.append(contender)
    rounds = max(5, report.plan.rounds // 2)
    log(f"anatomy: {len(chosen)} pieces x {rounds} rounds, interleaved")
    times = interleave(chosen, rounds, random.Random(report.plan.seed + 2))
    report.anatomy = {name: Stats.of(values) for name, values in times.items()}


def section_startup(report: Report, tools: Tools, env: Mapping[str, str]) -> None:
    python = str(tools.python)
    qlikm2m = str(tools.qlikm2m)
    contenders = [
        Contender("qlikm2m --version", (qlikm2m, "--version"), env, "qlikm2m"),
        Contender("qlikm2m --help", (qlikm2m, "--help"), env, "Usage"),
        Contender("python3 -c pass", (python, "-c", "pass"), env),
        Contender('python3 -c "import requests"', (python, "-c", "import requests"), env),
    ]
    log(f"start-up: {len(contenders)} contenders x {report.plan.startup_rounds} rounds")
    times = interleave(contenders, report.plan.startup_rounds, random.Random(report.plan.seed + 1))
    report.startup = {name: Stats.of(values) for name, values in times.items()}


def importtime_profile(python: Path, argv: Sequence[str], env: Mapping[str, str]) -> Run:
    return run_once([str(python), "-X", "importtime", *argv], env)


IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\| ( *)(\S+)")


@dataclass(frozen=True)
class PackageCost:
    package: str
    self_us: int  # own time of all its modules, whoever imported them
    via: str  # the import chain that first brought it in, e.g. "qlikm2m.http > requests"


def parse_importtime(stderr: str) -> tuple[list[PackageCost], int]:
    """Import time per top-level package (biggest first) and the total, in microseconds.

    Each module's own (self) time is charged to its top-level package, so `qlikm2m` is our code
    alone and `typer` is Typer's, whoever imported it: the figures add up to the total. `via`
    names the chain of packages that first imported the package (a module imported inside a
    function shows as a root of its own: its chain starts there).
    """
    tree: list[tuple[int, str, int]] = []
    for line in stderr.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match:
            self_us, _cumulative, indent, name = match.groups()
            tree.append((len(indent) // 2, name, int(self_us)))
    per_package: dict[str, int] = {}
    via: dict[str, str] = {}
    for index, (depth, name, self_us) in enumerate(tree):
        package = name.split(".", 1)[0]
        per_package[package] = per_package.get(package, 0) + self_us
        if package in via:
            continue
        # Children are listed before their parents: the ancestors come later, shallower.
        chain = [name]
        for parent_depth, parent, _ in tree[index + 1 :]:
            if parent_depth < depth:
                chain.append(parent)
                depth = parent_depth
        hops: list[str] = []
        for module in reversed(chain):
            top = module.split(".", 1)[0]
            if not hops or hops[-1].split(".", 1)[0] != top:
                hops.append(module)
        via[package] = " > ".join(hops)
    ranked = sorted(per_package.items(), key=lambda item: item[1], reverse=True)
    costs = [PackageCost(package, us, via[package]) for package, us in ranked]
    return costs, sum(per_package.values())


def section_importtime(
    report: Report, tools: Tools, env: Mapping[str, str], warm_env: Mapping[str, str] | None
) -> None:
    """Where start-up time goes, per `python -X importtime` (slower than a plain run)."""
    qlikm2m = str(tools.qlikm2m)
    cases: list[tuple[str, Sequence[str], Mapping[str, str]]] = [
        ("qlikm2m --version", (qlikm2m, "--version"), env),
        ("qlikm2m --help", (qlikm2m, "--help"), env),
        ('python3 -c "import requests"', ("-c", "import requests"), env),
    ]
    if warm_env is not None:
        cases.append(("qlikm2m tenant me (warm)", (qlikm2m, "tenant", "me"), warm_env))
    for name, argv, case_env in cases:
        # Best of five: importtime figures are noisy too.
        best: tuple[list[PackageCost], int] | None = None
        for _ in range(5):
            run = check(importtime_profile(tools.python, argv, case_env), f"importtime {name}")
            parsed = parse_importtime(run.stderr)
            if best is None or parsed[1] < best[1]:
                best = parsed
        assert best is not None
        report.importtime[name] = best[0][:IMPORTTIME_TOP]
        report.importtime_totals[name] = best[1]


def run_parallel(contender: Contender, env: Mapping[str, str], count: int) -> list[Run]:
    """Start `count` runs at the same moment (a barrier), as a CI matrix would; all must pass."""
    barrier = threading.Barrier(count)
    results: list[Run | BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        try:
            outcome: Run | BaseException = check(
                run_once(contender.argv, env), contender.name, expect=contender.expect
            )
        except BaseException as error:
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise BenchError(f"{contender.name}: {len(failures)} parallel runs failed: {failures[0]}")
    return [r for r in results if isinstance(r, Run)]


def section_tokens(
    report: Report, tools: Tools, box: Sandbox, env: Mapping[str, str], fresh: FreshDirs
) -> None:
    contenders, _ = tenant_me_contenders(tools, box, env, fresh)
    wanted = {"qlikm2m tenant me (cold)", "qlik-sdk (Python)", "@qlik/api (Node)"}
    chosen = [c for c in contenders if c.name in wanted]
    plan = report.plan
    for contender in chosen:
        # One fresh token cache for the whole batch: qlikm2m starts cold, then shares it.
        batch_env = dict(contender.env)
        if contender.prepare is not None:
            batch_env.update(contender.prepare())
        name = contender.name.replace("tenant me (cold)", "tenant me")
        log(f"tokens: {plan.sequential} sequential, {name}")
        before = box.count(TOKEN_KEY)
        start = time.perf_counter()
        for _ in range(plan.sequential):
            check(run_once(contender.argv, batch_env), name, expect=contender.expect)
        sequential_seconds = time.perf_counter() - start
        sequential_tokens = box.count(TOKEN_KEY) - before

        batch_env = dict(contender.env)
        if contender.prepare is not None:
            batch_env.update(contender.prepare())
        log(f"tokens: {plan.parallel} parallel, {name}")
        before = box.count(TOKEN_KEY)
        start = time.perf_counter()
        run_parallel(contender, batch_env, plan.parallel)
        parallel_seconds = time.perf_counter() - start
        parallel_tokens = box.count(TOKEN_KEY) - before
        report.tokens.append(
            {
                "name": name,
                "sequential": plan.sequential,
                "sequential_tokens": sequential_tokens,
                "sequential_seconds": sequential_seconds,
                "parallel": plan.parallel,
                "parallel_tokens": parallel_tokens,
                "parallel_seconds": parallel_seconds,
            }
        )


def section_listing(
    report: Report, tools: Tools, tls: Tls, env: Mapping[str, str], fresh: FreshDirs
) -> None:
    _, interpreter_kib = run_with_peak_rss([str(tools.python), "-c", "pass"], env)
    report.notes.append(
        f"For scale: a bare `python3 -c pass` peaks at {interpreter_kib / 1024:.1f} MiB RSS "
        "(GNU time)."
    )
    for size in report.plan.items:
        log(f"listing: starting a sandbox with {size} items")
        with sandbox(tools.qlikm2m, tls, env, items=size) as box:
            run_env = {
                **env,
                "QLIK_SERVER": box.url,
                "QLIK_CLIENT_ID": box.settings["QLIK_CLIENT_ID"],
                "QLIK_CLIENT_SECRET": box.settings["QLIK_CLIENT_SECRET"],
                "QLIK_CA_BUNDLE": str(tls.ca),
                "QLIKM2M_CACHE_DIR": str(fresh.new()),
            }
            argv = [str(tools.qlikm2m), *LISTING_ARGS]
            # Warm the token cache (and the sandbox) with one small page first.
            check(run_once([str(tools.qlikm2m), "api", "v1/items"], run_env), "warming listing")
            runs: list[Run] = []
            peaks: list[int] = []
            for attempt in range(report.plan.listing_runs):
                run, rss_kib = run_with_peak_rss(argv, run_env)
                check(run, f"listing {size} items")
                if run.stdout_lines != size:
                    raise BenchError(
                        f"listing {size} items printed {run.stdout_lines} lines: "
                        f"{run.stderr[-1000:]}"
                    )
                runs.append(run)
                peaks.append(rss_kib)
                log(f"  run {attempt + 1}: {run.seconds:.2f} s, {rss_kib / 1024:.1f} MiB")
        seconds = Stats.of([r.seconds for r in runs])
        report.listing.append(
            {
                "items": size,
                "runs": len(runs),
                "seconds": seconds,
                "items_per_s": size / seconds.median,
                "rss_mib": max(peaks) / 1024,
                "bytes": runs[0].stdout_bytes,
            }
        )


PAGE_ITEMS = 10_000


def section_pages(
    report: Report, tools: Tools, tls: Tls, env: Mapping[str, str], fresh: FreshDirs
) -> None:
    """Target 2: the same pages listed by qlikm2m and by a standard-library loop, interleaved."""
    with sandbox(tools.qlikm2m, tls, env, items=PAGE_ITEMS) as box:
        run_env = {
            **env,
            "QLIK_SERVER": box.url,
            "QLIK_CLIENT_ID": box.settings["QLIK_CLIENT_ID"],
            "QLIK_CLIENT_SECRET": box.settings["QLIK_CLIENT_SECRET"],
            "QLIK_CA_BUNDLE": str(tls.ca),
            "QLIKM2M_CACHE_DIR": str(fresh.new()),
        }
        ours = str(tools.qlikm2m)
        check(run_once([ours, "api", "v1/items"], run_env), "warming pages")
        floor = (str(tools.python), str(CLIENTS / "stdlib_same_trust.py"))
        contenders = []
        for limit in (10, 100):
            contenders += [
                Contender(
                    PAGES_OURS.format(limit),
                    (ours, "api", f"v1/items?limit={limit}", "--paginate", "--ndjson"),
                    run_env,
                    '"id"',
                ),
                Contender(
                    PAGES_FLOOR.format(limit),
                    (*floor, f"/api/v1/items?limit={limit}", "--paginate"),
                    run_env,
                    '"id"',
                ),
            ]
        contenders.append(
            Contender(
                PAGES_DEFAULT,
                (ours, "api", "v1/items", "--paginate", "--ndjson"),
                run_env,
                '"id"',
            )
        )
        rounds = report.plan.page_rounds
        log(f"pages: {len(contenders)} contenders x {rounds} rounds of {PAGE_ITEMS} items")
        cpu: dict[str, list[float]] = {}
        times = interleave(
            contenders, rounds, random.Random(report.plan.seed + 3), warmup=1, cpu=cpu
        )
        report.pages = {name: Stats.of(values) for name, values in times.items()}
        report.pages_cpu = {name: Stats.of(values) for name, values in cpu.items()}
        # Memory stays flat: the same peak for 1,000 pages of 10 as for 100 pages of 100.
        for contender in contenders:
            run, kib = run_with_peak_rss(contender.argv, contender.env)
            check(run, contender.name, expect=contender.expect)
            report.pages_rss[contender.name] = kib


# The commit before issue 14 (its "before"); the `reloads` section measures it beside this one.
RELOADS_BEFORE = "76aeaf1"


def section_reloads(report: Report, tools: Tools, env: Mapping[str, str]) -> None:
    """Target 3, in simulated time (benchmarks/reload_wait.py): this version and main's."""
    script = str(HERE / "reload_wait.py")
    versions: list[tuple[str, list[str]]] = [("this commit", [])]
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "reloads.py"
        shown = subprocess.run(
            ["git", "-C", str(HERE), "show", f"{RELOADS_BEFORE}:qlikm2m/reloads.py"],
            capture_output=True,
            check=False,
        )
        if shown.returncode == 0:
            old.write_bytes(shown.stdout)
            versions.insert(0, (RELOADS_BEFORE, ["--module", str(old)]))
        for label, extra in versions:
            run = check(
                run_once([str(tools.python), script, *extra], env), f"reload wait ({label})"
            )
            for line in run.stdout_head.decode().splitlines():
                report.reload_wait.append({"version": label, **json.loads(line)})


PAGES_OURS = "qlikm2m api --paginate --ndjson, limit={}"
PAGES_FLOOR = "floor: python3 stdlib, same trust, limit={}"
PAGES_DEFAULT = "qlikm2m api --paginate --ndjson, no limit given"

# Pages of 100, the API's maximum, so the page count is what a script would pay for.
LISTING_ARGS = ("api", "v1/items", "--paginate", "--ndjson", "--param", "limit=100")


# --------------------------------------------------------------------------------------------
# Machine and versions


def command_output(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=60, env=dict(env or os.environ)
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"
    return (done.stdout or done.stderr).strip()


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def describe_machine(tools: Tools, env: Mapping[str, str]) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = command_output(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    dirty = command_output(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"]
    )
    versions_code = (
        "import importlib.metadata as m\n"
        "for n in ('qlikm2m','typer','requests','urllib3','truststore','rich','keyring'):\n"
        "    try: print(n, m.version(n))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    project = command_output([str(tools.python), "-c", versions_code], env)
    sdk = command_output(
        [
            str(tools.sdk_python),
            "-c",
            "import importlib.metadata as m\n"
            "for n in ('qlik-sdk','requests','urllib3'):\n    print(n, m.version(n))",
        ],
        env,
    )
    api_version = "unknown"
    with suppress(OSError, ValueError, KeyError):
        api_version = json.loads(
            (tools.node_dir / "node_modules/@qlik/api/package.json").read_text()
        )["version"]
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit
        + (
            f" (work tree: {plural(len(dirty.splitlines()), 'file')} with uncommitted changes)"
            if dirty
            else ""
        ),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs "
        f"(nproc {command_output(['nproc'])}), {cpu}",
        "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": command_output([str(tools.python), "--version"]),
        "node": command_output(["node", "--version"]),
        "curl": command_output(["curl", "--version"]).splitlines()[0],
        "project packages": ", ".join(project.splitlines()),
        "qlik-sdk venv": ", ".join(sdk.splitlines()),
        "@qlik/api": api_version,
    }


# --------------------------------------------------------------------------------------------
# The report


def verdict(ours: Stats, theirs: Stats, label: str) -> str:
    diff = ours.median - theirs.median
    if diff <= 0:
        return f"**met**: {ms(ours.median)} ms vs {label} {ms(theirs.median)} ms ({ms(-diff)} ms faster, {-diff / theirs.median:.0%})"
    return f"**missed** by {ms(diff)} ms ({diff / theirs.median:.0%}): {ms(ours.median)} ms vs {label} {ms(theirs.median)} ms"


def stats_table(rows: Mapping[str, Stats], floor: str | None = None) -> list[str]:
    lines = ["| command | median ms | p10 ms | p90 ms | min ms | runs |"]
    if floor:
        lines[0] += f" median × {floor} |"
    lines.append("|" + "---|" * (lines[0].count("|") - 1))
    base = rows.get(floor) if floor else None
    for name, stats in rows.items():
        cells = [
            f"`{name}`" if name.startswith(("qlikm2m", "python3")) else name,
            ms(stats.median),
            ms(stats.p10),
            ms(stats.p90),
            ms(stats.minimum),
            str(stats.n),
        ]
        if base is not None:
            cells.append(f"{stats.median / base.median:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def importtime_lines(report: Report, name: str) -> list[str]:
    top = report.importtime.get(name)
    if not top:
        return []
    total = report.importtime_totals[name]
    lines = [f"- `{name}`: all imports {total / 1000:.1f} ms; self time by package:"]
    for cost in top:
        via = f" (via `{cost.via}`)" if " > " in cost.via else ""
        lines.append(f"  - `{cost.package}` {cost.self_us / 1000:.1f} ms{via}")
    return lines


def biggest_imports(report: Report, name: str, count: int = 4) -> str:
    costs = [c for c in report.importtime.get(name, []) if c.package != "qlikm2m"][:count]
    return ", ".join(
        f"`{c.package}` {c.self_us / 1000:.0f} ms" + (f" (via `{c.via}`)" if " > " in c.via else "")
        for c in costs
    )


def why_tenant_me(report: Report) -> list[str]:
    """Split a warm `tenant me` into start-up, request and our own overhead, from the figures."""
    lat = report.latency
    warm = lat["qlikm2m tenant me (warm)"].median
    floor = lat["floor: python3 stdlib"].median
    lines = [
        f"  - why: the same request from a bare python3 (interpreter start, `ssl`, `http.client`) "
        f"takes {ms(floor)} ms, so {ms(warm - floor)} ms of the {ms(warm)} ms is qlikm2m's own: "
        "importing its framework and HTTP stack, parsing the OS's CA file for the trust store "
        "(truststore on Linux; the floor trusts only the test CA), reading the token cache, "
        "rendering JSON."
    ]
    base = report.anatomy.get(ANATOMY[0][0])
    if base is not None and WARM in report.anatomy:
        whole = report.anatomy[WARM].median
        pieces = [
            f"{short} {report.anatomy[label].median / whole:.0%}"
            for label, short, _code in ANATOMY[1:]
            if label in report.anatomy
        ]
        lines.append(
            "  - each piece alone in a fresh interpreter, as a share of the warm run measured "
            f"alongside (anatomy table): interpreter {base.median / whole:.0%}; "
            + "; ".join(pieces)
            + "."
        )
    name = "qlikm2m tenant me (warm)"
    if name in report.importtime:
        total = report.importtime_totals[name] / 1000
        lines.append(
            f"  - its imports (under `-X importtime`): {total:.0f} ms in all; the biggest besides "
            f"qlikm2m's own code: {biggest_imports(report, name)}."
        )
    return lines


def why_startup(report: Report, name: str) -> list[str]:
    if name not in report.importtime:
        return []
    total = report.importtime_totals[name] / 1000
    return [
        f"  - why: its imports take {total:.0f} ms under `-X importtime`; the biggest besides "
        f"qlikm2m's own code: {biggest_imports(report, name)}."
    ]


def ratio_line(label: str, ours: Stats, base: Stats, base_label: str, limit: float) -> str:
    ratio = ours.median / base.median
    met = "**met**" if ratio <= limit else "**missed**"
    return (
        f"- {label} ≤ {limit}x {base_label}: {met}: {ratio:.2f}x "
        f"({ms(ours.median)} ms vs {ms(base.median)} ms)"
    )


def speed_targets(report: Report) -> list[str]:
    """Issue 14's targets, as ratios within this run."""
    out: list[str] = []
    lat = report.latency
    if lat:
        for label, _args, _path in SAME_TRUST:
            ours = lat.get(WARM_OF.format(label))
            floor = lat.get(SAME_TRUST_FLOOR.format(label))
            if ours is None or floor is None:
                continue
            out.append(
                ratio_line(
                    f"(1) warm `{label}`", ours, floor, "the stdlib floor with the same trust", 1.6
                )
            )
            out.append(
                ratio_line(f"(1) warm `{label}`", ours, lat["@qlik/api (Node)"], "@qlik/api", 0.7)
            )
    par = report.parallel_warm
    if par:
        ideal = par["cpu"] / par["cpus"]
        out.append(
            f"- (4) {par['count']:.0f} parallel warm `tenant me`: {par['wall']:.2f} s wall, "
            f"{par['cpu']:.2f} s of CPU in all ({par['cpu'] / par['count'] * 1000:.0f} ms each); "
            f"wall / (CPU / {par['cpus']:.0f} cores) = {par['wall'] / ideal:.2f} "
            "(1.0: the wall time is the CPU spread over the cores)"
        )
    pages = report.pages
    if pages:
        for limit, bound in ((10, 1.5), (100, 1.15)):
            ours = pages.get(PAGES_OURS.format(limit))
            floor = pages.get(PAGES_FLOOR.format(limit))
            if ours is None or floor is None:
                continue
            out.append(
                ratio_line(
                    f"(2) `api --paginate --ndjson`, {PAGE_ITEMS:,} items at limit={limit}",
                    ours,
                    floor,
                    "the stdlib loop over the same pages",
                    bound,
                )
            )
        default = pages.get(PAGES_DEFAULT)
        floor10 = pages.get(PAGES_FLOOR.format(10))
        if default is not None and floor10 is not None:
            out.append(
                f"- (2) with no page size given: {default.median:.2f} s, "
                f"{default.median / floor10.median:.2f}x the stdlib loop at the server's default "
                "page size (10)"
            )
    for row in report.reload_wait:
        if row["version"] != "this commit":
            continue
        took = float(str(row["end_to_exit_seconds"]))
        met = "**met**" if took <= 1.0 else "**missed**"
        # Older rows (before the items tick) have no split of the final reads.
        polls = row.get("max_polls_per_tick", row["max_requests_per_tick"])
        out.append(
            f"- (3) `reload --wait` of {row['apps']} parallel {row['reload_seconds']} s reloads, "
            f"tenant that {row['tenant']}: last end to exit ≤ 1 s: {met}: {took:.2f} s, "
            f"{polls} poll request(s) a tick at most (+ {row.get('final_reads', '?')} final "
            f"reads, one per reload), {row['requests_per_minute']} requests/min "
            "(see the reload table for the commit before issue 14)"
        )
    return out


def render(report: Report) -> str:
    plan = report.plan
    out: list[str] = ["# Benchmark results", ""]
    out += [
        "Written by `benchmarks/run.sh` (see benchmarks/README.md for what each figure means).",
        "All requests go to the built-in sandbox tenant over HTTPS on loopback; every contender",
        "runs as a separate process with its output piped, interleaved run by run in a random order",
        "each round. Times are wall-clock from spawn to exit.",
        "",
    ]
    for key, value in report.machine.items():
        out.append(f"- **{key}**: {value}")
    out.append(
        f"- **plan**: {plan.rounds} rounds of tenant me, {plan.startup_rounds} of start-up, "
        f"{plan.sequential} sequential / {plan.parallel} parallel for tokens, "
        f"{plan.listing_runs} listing run(s) per size ({', '.join(map(str, plan.items))} items)"
    )
    out.append("")

    targets: list[str] = []
    if report.latency:
        lat = report.latency
        warm = lat["qlikm2m tenant me (warm)"]
        for sdk, label in (("qlik-sdk (Python)", "qlik-sdk"), ("@qlik/api (Node)", "@qlik/api")):
            line = f"- warm `tenant me` ≤ {sdk}: " + verdict(warm, lat[sdk], label)
            targets.append(line)
            if "**missed**" in line:
                targets += why_tenant_me(report)
    if report.startup:
        st = report.startup
        requests_import = st['python3 -c "import requests"']
        for name in ("qlikm2m --version", "qlikm2m --help"):
            line = f'- `{name}` ≤ `python3 -c "import requests"`: ' + verdict(
                st[name], requests_import, "import requests"
            )
            targets.append(line)
            if "**missed**" in line:
                targets += why_startup(report, name)
    targets += speed_targets(report)
    if targets:
        out += ["## Targets", "", *targets, ""]

    if report.latency:
        out += ["## Per-command latency: `tenant me`", ""]
        out += report.load_note("latency")
        out += [
            "Warm: qlikm2m's token cache holds a valid token. Cold: a fresh, empty cache",
            "directory every run, so each run mints a token first. The SDK scripts have no",
            "token cache, so every run of theirs mints a token (their normal behaviour). The",
            "floors are given a valid token; `/api/v1/tenants/me` answers 302 and everyone",
            "follows it, so each run is two HTTPS requests (three with a mint).",
            "",
        ]
        out += stats_table(report.latency, floor="floor: curl")
        out.append("")

    if report.anatomy:
        out += ["### Anatomy of a warm `tenant me`", ""]
        out += report.load_note("anatomy")
        out += [
            "Each piece alone in a fresh interpreter (project venv), interleaved with the whole",
            "command; the last column is the piece's median minus the bare interpreter's. Pieces",
            "share some imports (`ssl`, `json`, ...), so they do not add up exactly.",
            "",
        ]
        base = report.anatomy.get(ANATOMY[0][0])
        whole = report.anatomy.get(WARM)
        out += [
            "| piece | median ms | p10 ms | p90 ms | runs | median − interpreter ms | "
            "share of the warm run |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, stats in report.anatomy.items():
            extra = ms(stats.median - base.median) if base is not None else "n/a"
            share = f"{stats.median / whole.median:.0%}" if whole is not None else "n/a"
            out.append(
                f"| {name} | {ms(stats.median)} | {ms(stats.p10)} | {ms(stats.p90)} | "
                f"{stats.n} | {extra} | {share} |"
            )
        out.append("")

    if report.startup:
        out += ["## Start-up", ""]
        out += report.load_note("startup")
        out += [
            "All with the project venv's Python; `qlikm2m` is the installed console script.",
            "",
        ]
        out += stats_table(report.startup, floor="python3 -c pass")
        out.append("")

    if report.importtime:
        out += [
            "### Where the time goes (`python -X importtime`, best of 5)",
            "",
            "Import time inflates under `-X importtime`; read these as shares, not as latencies.",
            "",
        ]
        for name in report.importtime:
            out += importtime_lines(report, name)
        out.append("")

    if report.tokens:
        out += ["## Token economy", ""]
        out += report.load_note("tokens")
        out += [
            "`POST /oauth/token` requests seen by the sandbox (its counters) while the command ran",
            "N times one after another, then N at once. qlikm2m starts each batch from an empty",
            "cache.",
            "",
            "| client | sequential runs | tokens minted | s total | parallel runs | tokens minted | s total |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in report.tokens:
            out.append(
                f"| {row['name']} | {row['sequential']} | {row['sequential_tokens']} | "
                f"{float(str(row['sequential_seconds'])):.1f} | {row['parallel']} | "
                f"{row['parallel_tokens']} | {float(str(row['parallel_seconds'])):.1f} |"
            )
        out.append("")

    if report.listing:
        out += ["## Listing at scale", ""]
        out += report.load_note("listing")
        out += [
            f"`qlikm2m {' '.join(LISTING_ARGS)}` with a warm token, output piped and counted.",
            "Peak RSS is the qlikm2m process's own (GNU time's `%M`), worst of the runs; the",
            "whole run is timed under GNU time, which adds a fork and an exec.",
            "",
            "| items | runs | median s | p10 s | p90 s | items/s | output MiB | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in report.listing:
            seconds = row["seconds"]
            assert isinstance(seconds, Stats)
            out.append(
                f"| {row['items']:,} | {row['runs']} | {seconds.median:.2f} | {seconds.p10:.2f} | "
                f"{seconds.p90:.2f} | {float(str(row['items_per_s'])):,.0f} | "
                f"{int(str(row['bytes'])) / 2**20:.1f} | {float(str(row['rss_mib'])):.1f} |"
            )
        if len(report.listing) >= 2:
            small, large = report.listing[0], report.listing[-1]
            rss_small = float(str(small["rss_mib"]))
            rss_large = float(str(large["rss_mib"]))
            growth = rss_large - rss_small
            flat = growth <= max(2.0, 0.1 * rss_small)
            out += [
                "",
                f"RSS from {small['items']:,} to {large['items']:,} items: "
                f"{growth:+.1f} MiB ({growth / rss_small:+.0%}) for "
                f"{int(str(large['items'])) / int(str(small['items'])):.0f}× the items: "
                + (
                    "**flat** (streams page by page)." if flat else "**grows** with the item count."
                ),
            ]
        out.append("")

    if report.pages:
        out += [f"## Pages: {PAGE_ITEMS:,} items, qlikm2m against a standard-library loop", ""]
        out += report.load_note("pages")
        out += [
            "Each run lists every item as NDJSON (output piped and counted), warm token, interleaved.",
            "The floor is `clients/stdlib_same_trust.py --paginate`: one connection, the OS's CA",
            "file plus the extra CA, the token read from qlikm2m's cache file.",
            "",
        ]
        out += stats_table(report.pages, floor=PAGES_FLOOR.format(10))
        out.append("")
        if report.pages_cpu:
            out += [
                "CPU of the same runs (user + system, `wait4`; start-up included), and",
                "the peak RSS of one more run of each under GNU time (`%M`):",
                "",
                "| command | median CPU ms | ms a page (CPU / pages) | × the floor's CPU | peak RSS MiB |",
                "|---|---|---|---|---|",
            ]
            for name in report.pages:
                stats = report.pages_cpu[name]
                limit = 10 if name.endswith("limit=10") else 100
                floor = report.pages_cpu.get(PAGES_FLOOR.format(limit))
                times = f"{stats.median / floor.median:.2f}" if floor else "-"
                kib = report.pages_rss.get(name, -1)
                rss = f"{kib / 1024:.1f}" if kib > 0 else "-"
                per_page = stats.median * 1000 / (PAGE_ITEMS / limit)
                out.append(
                    f"| {name} | {stats.median * 1000:.0f} | {per_page:.3f} | {times} | {rss} |"
                )
            out.append("")

    if report.reload_wait:
        out += [
            "## `reload --wait`: 20 parallel reloads of 6 s (simulated time)",
            "",
            "`benchmarks/reload_wait.py`: run_reloads driven by a simulated clock against a",
            "simulated tenant counting requests; the scheduler's choices, not the machine's speed.",
            "",
            "A final read is a GET of a reload answering its end state (one per reload, whatever",
            "the scheme); max polls per tick leaves them out: what a tick costs while nothing ends.",
            "",
            "| version | tenant | last end → exit s | poll requests | final reads | max per tick "
            "| max polls per tick | ticks | requests/min |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in report.reload_wait:
            out.append(
                f"| {row['version']} | {row['tenant']} | {row['end_to_exit_seconds']} | "
                f"{row['poll_requests']} | {row.get('final_reads', '-')} | "
                f"{row['max_requests_per_tick']} | "
                f"{row.get('max_polls_per_tick', row['max_requests_per_tick'])} | {row['ticks']} | "
                f"{row['requests_per_minute']} |"
            )
        out.append("")

    if report.notes:
        out += ["## Notes", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------


KEPT_BLOCKS = ("round2", "round1", "before", "transfers")


def kept_blocks(path: Path) -> str:
    """Blocks written by other runs (`<!-- NAME:start -->` ... `<!-- NAME:end -->`), kept as they are."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    kept = []
    for name in KEPT_BLOCKS:
        match = re.search(f"<!-- {name}:start -->.*?<!-- {name}:end -->", text, re.S)
        if match:
            kept.append("\n" + match.group(0) + "\n")
    return "".join(kept)


def wait_idle(threshold: float, *, timeout: float) -> None:
    """Other work on a 2-core machine skews every figure: start when it has calmed down."""
    deadline = time.monotonic() + timeout
    while (load := os.getloadavg()[0]) > threshold:
        if time.monotonic() > deadline:
            log(f"load still {load:.2f} after {timeout:.0f} s: starting anyway")
            return
        log(f"waiting for the load average ({load:.2f}) to drop to {threshold}")
        time.sleep(30)


def main(argv: Sequence[str]) -> int:
    args, plan = parse_args(argv)
    tools = Tools(args.venv, args.sdk_python, args.node_dir)
    WORK.mkdir(parents=True, exist_ok=True)
    env = base_env(WORK)
    fresh = FreshDirs(WORK / "caches")
    report = Report(plan)
    report.machine = describe_machine(tools, env)
    if args.wait_idle is not None:
        wait_idle(args.wait_idle, timeout=900)
    report.machine["load"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    log(f"plan: {plan}")
    try:
        tls = make_tls(WORK / "tls")
        trust_ca_in_sdk_venv(tools.sdk_python, tls.ca)
        warm_env: dict[str, str] | None = None
        if {"latency", "anatomy", "tokens", "startup"} & set(plan.sections):
            with sandbox(tools.qlikm2m, tls, env) as box:
                if "latency" in plan.sections:
                    with report.section("latency"):
                        section_latency(report, tools, box, env, fresh)
                if "anatomy" in plan.sections:
                    with report.section("anatomy"):
                        section_anatomy(report, tools, box, env, fresh)
                if "startup" in plan.sections:
                    with report.section("startup"):
                        section_startup(report, tools, env)
                    contenders, _ = tenant_me_contenders(tools, box, env, fresh)
                    warm_env = dict(contenders[0].env)
                    section_importtime(report, tools, env, warm_env)
                if "tokens" in plan.sections:
                    with report.section("tokens"):
                        section_tokens(report, tools, box, env, fresh)
        if "listing" in plan.sections:
            if not os.access(GNU_TIME, os.X_OK):
                raise BenchError(f"listing needs GNU time at {GNU_TIME} (apt-get install time)")
            with report.section("listing"):
                section_listing(report, tools, tls, env, fresh)
        if "pages" in plan.sections:
            with report.section("pages"):
                section_pages(report, tools, tls, env, fresh)
        if "reloads" in plan.sections:
            section_reloads(report, tools, env)
    finally:
        fresh.cleanup()
    report.machine["load"] += " (1/5/15-min load average at start) → " + " / ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    report.machine["benchmark time"] = f"{time.monotonic() - started:.0f} s"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(report) + "\n" + kept_blocks(args.output))
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except BenchError as error:
        log(f"error: {error}")
        raise SystemExit(1) from None
