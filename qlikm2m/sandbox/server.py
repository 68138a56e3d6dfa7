"""The sandbox's HTTP(S) server and its Python control API (also served under /_sandbox/)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import socket
import socketserver
import ssl
import struct
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from qlikm2m.sandbox import delivery as _delivery  # noqa: F401 - registers its routes
from qlikm2m.sandbox import oauth_clients as _oauth_clients  # noqa: F401 - registers its routes
from qlikm2m.sandbox import transfers as _transfers  # noqa: F401 - registers its routes
from qlikm2m.sandbox.api import (
    Api,
    BodyStream,
    Request,
    Route,
    method_not_allowed,
    unknown_route,
)
from qlikm2m.sandbox.config import SandboxConfig
from qlikm2m.sandbox.forcing import ForcedQueue, ForcedResponse, forced_from_json, forced_response
from qlikm2m.sandbox.state import TenantState
from qlikm2m.sandbox.wire import Response, error_body, iso, json_response

CONTROL_PREFIX = "/_sandbox/"
_REASONS = {s.value: s.phrase for s in __import__("http").HTTPStatus}


class Sandbox:
    """A local Qlik Cloud tenant. Start it, point a client at `url`, and steer it from tests.

    Use as a context manager, or call start()/stop(). Every control method here has an HTTP twin
    under /_sandbox/ (see docs/sandbox.md) for a sandbox running in another process.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        ca_bundle: str | None = None,
        access_log: bool = False,
        **overrides: Any,
    ) -> None:
        base = config or SandboxConfig()
        self.config = replace(base, **overrides) if overrides else base
        self.ssl_context = ssl_context
        self.ca_bundle = ca_bundle
        self.access_log = access_log
        self.state = TenantState(self.config)
        self.api = Api(self.state)
        self.forced = ForcedQueue()
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # also the latency of stop()
            name=f"qlik-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        self.state.close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            # Wakes handler threads blocked on idle keep-alive or stalled connections.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - a wildcard bind is reached on loopback
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    @property
    def api_key(self) -> str | None:
        return self.config.api_key

    # -- controls ---------------------------------------------------------------------------------
    def count(self, key: str) -> int:
        """Requests seen for one endpoint, e.g. "POST /oauth/token" or "GET /api/v1/users/{userId}"."""
        return self.state.counters().get(key, 0)

    def counters(self) -> dict[str, int]:
        return self.state.counters()

    @property
    def connections(self) -> int:
        """New TCP connections accepted (keep-alive reuse does not count)."""
        with self.state.lock:
            return self.state.stats.connections

    def reset_counters(self) -> None:
        self.state.reset_counters()

    def revoke_all(self) -> int:
        return self.state.revoke_all()

    def expire_all(self) -> int:
        return self.state.expire_all()

    def live_tokens(self, client_id: str | None = None) -> int:
        return self.state.live_tokens(client_id)

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's clock forward: tokens expire and reloads progress without sleeping."""
        return self.state.advance_clock(seconds)

    def add_public_key(self, jwk: dict[str, Any], client_id: str | None = None) -> None:
        """Register a public JWK on a client (the main one by default), as PATCH /publicKeys add."""
        self.state.credentials.patch_public_keys(client_id or self.client_id, "add", jwk)

    def client_secret_hints(self, client_id: str | None = None) -> list[str]:
        return [s.hint for s in self.state.credentials.secrets_of(client_id or self.client_id)]

    def app_ids(self) -> list[str]:
        return self.state.app_ids()

    def force(self, **spec: Any) -> ForcedResponse:
        """Queue a forced response; arguments as in `forcing.forced_response` and ForcedResponse."""
        entry = spec.pop("response", None) or forced_response(**spec)
        self.forced.add(entry)
        return entry

    def clear_forced(self) -> None:
        self.forced.clear()

    # -- connection bookkeeping (called by the server) ----------------------------------------------
    def _track(self, connection: socket.socket, opened: bool) -> None:
        with self._connections_lock:
            if opened:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # -- HTTP controls --------------------------------------------------------------------------
    def _control(self, request: Request) -> Response:
        if not self.config.control_api:
            return unknown_route(request.path)
        if not self._control_authorized(request.headers.get("Authorization", "")):
            body = error_body(
                "other", 401, "HTTP-401", "Unauthorized", "Use a client's Basic auth."
            )
            return json_response(401, body, [("WWW-Authenticate", 'Basic realm="sandbox"')])
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        method = request.method
        if (method, action) == ("GET", "counters"):
            return json_response(
                200,
                {
                    "requests": self.counters(),
                    "connections": self.connections,
                    "liveTokens": self.live_tokens(),
                },
            )
        if (method, action) == ("GET", "apps"):
            return json_response(200, {"appIds": self.app_ids()})
        if method == "POST" and action == "reset-counters":
            self.reset_counters()
            return Response(204)
        if method == "POST" and action == "revoke-all":
            return json_response(200, {"revoked": self.revoke_all()})
        if method == "POST" and action == "expire-all":
            return json_response(200, {"expired": self.expire_all()})
        if method == "POST" and action == "clock":
            spec = _json_object(request.body)
            seconds = spec.get("advance", 0) if spec is not None else None
            if not isinstance(seconds, (int, float)):
                return _control_error('expected {"advance": seconds}')
            return json_response(200, {"now": iso(self.advance_clock(float(seconds)))})
        if method == "POST" and action == "force":
            spec = _json_object(request.body)
            try:
                if spec is None:
                    raise ValueError("expected a JSON object")
                self.force(response=forced_from_json(spec))
            except (ValueError, TypeError, binascii.Error) as error:
                return _control_error(str(error))
            return json_response(201, {"queued": len(self.forced)})
        if method == "DELETE" and action == "force":
            self.clear_forced()
            return Response(204)
        return unknown_route(request.path)

    def _control_authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, _, secret = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        client = self.state.clients.get(client_id)
        return client is not None and hmac.compare_digest(
            secret.encode(), client.client_secret.encode()
        )


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _control_error(message: str) -> Response:
    return json_response(400, error_body("other", 400, "HTTP-400", "Bad Request", message))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        host = sandbox.config.host.strip("[]")
        if host == "localhost":
            host = "127.0.0.1"
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, sandbox.config.port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        self.sandbox.state.count_connection()
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up, fail the TLS handshake or time out are part of the tests.
        error = sys.exc_info()[1]
        if isinstance(error, (OSError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "QlikCloudSandbox/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after five minutes
    server: _Server

    def setup(self) -> None:
        # Without it, Nagle's algorithm holds the tail of each TLS record for the client's delayed
        # ACK: 40 ms per large response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = self.server.sandbox.ssl_context
        if context is not None:
            self.request.settimeout(self.timeout)
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()
        self.server.sandbox._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sandbox._track(self.connection, False)
            if self.server.sandbox.ssl_context is not None:
                self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.sandbox.access_log:
            sys.stderr.write(f"sandbox: {self.address_string()} {format % args}\n")

    def _request(
        self, path: str, raw_query: str, body: bytes, stream: BodyStream | None = None
    ) -> Request:
        host = self.headers.get("Host") or f"{self.server.server_name}:{self.server.server_port}"
        return Request(
            method=self.command,
            path=path,
            query_pairs=tuple(parse_qsl(raw_query, keep_blank_values=True)),
            raw_query=raw_query,
            headers=self.headers,  # type: ignore[arg-type]
            body=body,
            base_url=f"{self.server.sandbox.scheme}://{host}",
            stream=stream,
        )

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        path, _, raw_query = self.path.partition("?")
        if not path.startswith(CONTROL_PREFIX):
            matched, params, _ = sandbox.api.match(self.command, path)
            if matched is not None and matched.streams_body:
                self._dispatch_streaming(matched, params, path, raw_query)
                return
        body = self._read_body()
        if body is None:
            return
        request = self._request(path, raw_query, body)
        if path.startswith(CONTROL_PREFIX):
            self._send(sandbox._control(request))
            return
        matched, params, path_known = sandbox.api.match(self.command, path)
        sandbox.state.count_request(matched.key if matched else f"{self.command} {path}")
        forced = sandbox.forced.take(self.command, path)
        if forced is not None:
            self._send_forced(forced)
            return
        if matched is None:
            self._send(method_not_allowed(path) if path_known else unknown_route(path))
            return
        self._send(sandbox.api.respond(matched, params, request))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def _dispatch_streaming(
        self, matched: Route, params: dict[str, str], path: str, raw_query: str
    ) -> None:
        """An upload: the handler reads the body as it arrives; a forced reset cuts it short."""
        sandbox = self.server.sandbox
        sandbox.state.count_request(matched.key)
        forced = sandbox.forced.take(self.command, path)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            body = error_body("other", 411, "HTTP-411", "Length Required", "Send Content-Length.")
            self._send(json_response(411, body))
            return
        try:
            length = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            length = 0
        cut = forced.reset_after if forced is not None else None
        stream = BodyStream(self.rfile, length, cut)
        if forced is not None and cut is None:
            stream.drain()
            self._send_forced(forced)
            return
        response = sandbox.api.respond(matched, params, self._request(path, raw_query, b"", stream))
        stream.drain()
        if stream.dropped:
            self._reset()
            return
        self._send(response)

    def _reset(self) -> None:
        # SO_LINGER 0: close with a TCP RST, as a load balancer dropping the connection does.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()

    def _read_body(self) -> bytes | None:
        limit = self.server.sandbox.config.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > limit:
                    break
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if 0 <= length <= limit:
                return self.rfile.read(length) if length else b""
            # Read what was sent before refusing, or the client sees a reset instead of the 413.
            remaining = min(length, 64 * limit)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        self.close_connection = True
        self._send(json_response(413, error_body("other", 413, "HTTP-413", "Payload Too Large")))
        return None

    def _head(
        self,
        status: int,
        content_type: str | None,
        headers: list[tuple[str, str]],
        length: int | None,
    ) -> bytes:
        # Headers given by a forced response replace the defaults (a proxy's Date, a lying
        # Content-Length...).
        given = {name.lower() for name, _ in headers}
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        if "date" not in given:
            lines.append(f"Date: {self.date_time_string()}")
        if "server" not in given:
            lines.append(f"Server: {self.server_version}")
        if content_type and "content-type" not in given:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{name}: {value}" for name, value in headers]
        framed_by_caller = "content-length" in given or "transfer-encoding" in given
        if length is None and not framed_by_caller:
            lines.append("Transfer-Encoding: chunked")
        elif not framed_by_caller and status not in (204, 304):  # RFC 9110: none on these
            lines.append(f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        self.log_request(status, length if length is not None else "-")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, response: Response) -> None:
        if response.stream is not None:
            self.wfile.write(
                self._head(
                    response.status,
                    response.content_type,
                    response.headers,
                    response.stream_length,
                )
            )
            if self.command != "HEAD":
                for chunk in response.stream:
                    self.wfile.write(chunk)
            return
        head = self._head(
            response.status, response.content_type, response.headers, len(response.body)
        )
        self.wfile.write(head if self.command == "HEAD" else head + response.body)

    def _send_forced(self, forced: ForcedResponse) -> None:
        stopping = self.server.sandbox.stopping
        if forced.delay and stopping.wait(forced.delay):
            self.close_connection = True
            return
        if forced.drop or forced.reset_after is not None:
            self.close_connection = True
            return
        if forced.stall_after is not None:
            self.close_connection = True
        headers = list(forced.headers)
        length = None if forced.chunked else forced.length
        self.wfile.write(self._head(forced.status, forced.content_type, headers, length))
        sent = 0
        for chunk in forced.chunks():
            if forced.stall_after is not None and sent + len(chunk) >= forced.stall_after:
                chunk = chunk[: forced.stall_after - sent]
                self._write_body(chunk, forced.chunked)
                stopping.wait(forced.stall)
                return
            self._write_body(chunk, forced.chunked)
            sent += len(chunk)
        if forced.stall_after is not None:
            stopping.wait(forced.stall)
            return
        if forced.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write_body(self, chunk: bytes, chunked: bool) -> None:
        if not chunk:
            return
        if chunked:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        else:
            self.wfile.write(chunk)
