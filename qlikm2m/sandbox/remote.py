"""The control API of a sandbox running in another process, over its /_sandbox/ endpoints."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from typing import Any


class RemoteSandbox:
    """Same control methods as `Sandbox`, for one started with `qlikm2m sandbox serve`."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.client_id = client_id
        self.client_secret = client_secret
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        credentials = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        self._context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
        # Loopback only: never send the control credentials through a proxy.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self._context)
        )

    def _call(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            f"{self.url}/_sandbox/{action}",
            data=data,
            method=method,
            headers={"Authorization": self._authorization, "Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=self.timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def counters(self) -> dict[str, int]:
        return dict(self._call("GET", "counters")["requests"])

    def count(self, key: str) -> int:
        return self.counters().get(key, 0)

    @property
    def connections(self) -> int:
        return int(self._call("GET", "counters")["connections"])

    def live_tokens(self) -> int:
        return int(self._call("GET", "counters")["liveTokens"])

    def reset_counters(self) -> None:
        self._call("POST", "reset-counters", {})

    def revoke_all(self) -> int:
        return int(self._call("POST", "revoke-all", {})["revoked"])

    def expire_all(self) -> int:
        return int(self._call("POST", "expire-all", {})["expired"])

    def advance_clock(self, seconds: float) -> str:
        return str(self._call("POST", "clock", {"advance": seconds})["now"])

    def app_ids(self) -> list[str]:
        return list(self._call("GET", "apps")["appIds"])

    def force(self, **spec: Any) -> None:
        """Arguments as `Sandbox.force`; bytes bodies travel base64-encoded."""
        body = spec.get("body")
        if isinstance(body, bytes):
            spec["body_base64"] = base64.b64encode(spec.pop("body")).decode()
        self._call("POST", "force", spec)

    def clear_forced(self) -> None:
        self._call("DELETE", "force")
