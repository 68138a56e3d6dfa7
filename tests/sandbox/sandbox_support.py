"""Helpers for the sandbox's own tests: an HTTPS client that trusts the test CA, a fake clock."""

from __future__ import annotations

from typing import Any

import requests

from qlikm2m.sandbox import Sandbox

TIMEOUT = 10


class Tenant:
    """A sandbox seen from a plain HTTP client, the way any Qlik client would talk to it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.url = sandbox.url
        self.session = requests.Session()
        self.session.verify = sandbox.ca_bundle or True
        self.session.trust_env = False

    def credentials(self, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_id": self.sandbox.client_id,
            "client_secret": self.sandbox.client_secret,
            "grant_type": "client_credentials",
        }
        body.update(extra)
        return body

    def post_token(self, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.url}/oauth/token", timeout=TIMEOUT, **kwargs)

    def token(self, **extra: Any) -> str:
        response = self.post_token(json=self.credentials(**extra))
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        target = path if path.startswith("http") else f"{self.url}{path}"
        return self.session.get(target, headers=headers, timeout=TIMEOUT, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.post(f"{self.url}{path}", headers=headers, timeout=TIMEOUT, **kwargs)

    def collect(
        self,
        path: str,
        token: str,
        params: dict[str, str] | None = None,
        *,
        field: str | None = None,
    ) -> list[Any]:
        """Every entry of a list (or only its `field`), following links.next.href as given."""
        entries: list[Any] = []
        response = self.get(path, token, params=params)
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            entries.extend(page["data"] if field is None else [e[field] for e in page["data"]])
            following = page["links"].get("next")
            if not following:
                return entries
            response = self.get(following["href"], token)


class FakeClock:
    """An injectable wall clock for sandboxes: tests move time instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
