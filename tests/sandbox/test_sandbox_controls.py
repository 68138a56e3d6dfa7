"""Test controls: counters, connections, forced responses (in-process and over /_sandbox/)."""

from __future__ import annotations

import threading
import tracemalloc

import pytest
import requests
from fixtures_sandbox import Tenant

from qlikm2m.sandbox import RemoteSandbox, Sandbox


def test_counters_use_route_templates_and_literal_me_routes(tenant: Tenant) -> None:
    token = tenant.token()
    tenant.get("/api/v1/users/me", token)  # 301, then GET /api/v1/users/{userId}
    tenant.get("/api/v1/tenants/me", token, allow_redirects=False)

    assert tenant.sandbox.counters() == {
        "POST /oauth/token": 1,
        "GET /api/v1/users/me": 1,
        "GET /api/v1/users/{userId}": 1,
        "GET /api/v1/tenants/me": 1,
    }
    assert tenant.sandbox.count("GET /api/v1/items") == 0
    tenant.sandbox.reset_counters()
    assert tenant.sandbox.counters() == {}
    assert tenant.sandbox.connections == 0


def test_keep_alive_reuses_one_connection_and_new_sessions_open_new_ones(
    sandbox: Sandbox,
) -> None:
    first, second = Tenant(sandbox), Tenant(sandbox)
    token = first.token()
    for _ in range(5):
        first.get("/api/v1/users/me", token)
    assert sandbox.connections == 1

    second.get("/api/v1/users/me", token)

    assert sandbox.connections == 2


def test_a_forced_response_answers_the_next_matching_request_only(tenant: Tenant) -> None:
    token = tenant.token()
    tenant.sandbox.force(
        status=503,
        headers={"retry-after": "1"},
        body={"errors": [{"code": "HTTP-503", "title": "Service Unavailable"}]},
        match="GET /api/v1/users",
    )

    other = tenant.get("/api/v1/items", token)
    forced = tenant.get("/api/v1/users/me", token, allow_redirects=False)
    after = tenant.get("/api/v1/users/me", token, allow_redirects=False)

    assert other.status_code == 200
    assert forced.status_code == 503
    assert forced.headers["retry-after"] == "1"
    assert forced.json()["errors"][0]["code"] == "HTTP-503"
    assert after.status_code == 301
    assert tenant.sandbox.count("GET /api/v1/users/me") == 2  # forced answers count too


def test_forced_responses_match_by_method_and_repeat_times(tenant: Tenant) -> None:
    token = tenant.token()
    tenant.sandbox.force(status=502, body="<html>Bad gateway</html>", content_type="text/html",
                         match="POST /oauth/token", times=2)  # fmt: skip

    assert tenant.get("/api/v1/users", token).status_code == 200
    statuses = [tenant.post_token(json=tenant.credentials()).status_code for _ in range(3)]

    assert statuses == [502, 502, 200]


def test_a_forced_response_without_match_hits_any_api_request(tenant: Tenant) -> None:
    tenant.sandbox.force(status=429, headers={"retry-after": "7"}, times=None)

    assert tenant.get("/api/v1/users").status_code == 429
    assert tenant.post_token(json=tenant.credentials()).status_code == 429
    tenant.sandbox.clear_forced()
    assert tenant.post_token(json=tenant.credentials()).status_code == 200


def test_wrong_content_type_and_truncated_json(tenant: Tenant) -> None:
    tenant.sandbox.force(body="<html>login</html>", content_type="text/html", match="/api/")
    tenant.sandbox.force(body='{"data": [{"id": ', content_type="application/json", match="/api/")

    html = tenant.get("/api/v1/items", tenant.token())
    truncated = tenant.get("/api/v1/items", tenant.token())

    assert html.headers["Content-Type"] == "text/html"
    assert html.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        truncated.json()


def test_a_delay_makes_a_short_client_timeout_fire(tenant: Tenant) -> None:
    tenant.sandbox.force(delay=5, match="GET /api/v1/users")

    with pytest.raises(requests.ReadTimeout):
        tenant.session.get(f"{tenant.url}/api/v1/users", timeout=(5, 0.3))


def test_a_dropped_connection_gets_no_answer(tenant: Tenant) -> None:
    tenant.sandbox.force(drop=True, match="GET /api/v1/users")

    with pytest.raises(requests.ConnectionError):
        tenant.get("/api/v1/users")


def test_a_stall_mid_body_sends_part_then_hangs(tenant: Tenant) -> None:
    tenant.sandbox.force(stream_bytes=1_000_000, stall_after=5000, match="GET /api/v1/items")
    response = tenant.session.get(f"{tenant.url}/api/v1/items", timeout=(5, 0.5), stream=True)
    assert response.headers["Content-Length"] == "1000000"
    received: list[bytes] = []

    def read_all() -> None:
        # 1000 divides 5000: no partial chunk is held back when the read times out.
        received.extend(response.iter_content(1000))

    with pytest.raises(requests.ConnectionError, match="timed out"):
        read_all()

    assert sum(map(len, received)) == 5000


def test_a_stall_with_a_duration_ends_in_a_short_body(tenant: Tenant) -> None:
    tenant.sandbox.force(body=b'{"data": []}', stall_after=4, stall=0, match="/api/v1/items")

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        tenant.get("/api/v1/items")


@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_streamed_body_costs_the_sandbox_no_memory(tenant: Tenant, chunked: bool) -> None:
    size = 64 * 1024 * 1024
    tenant.sandbox.force(
        stream_bytes=size, content_type="application/json", chunked=chunked, match="GET /api/"
    )
    tracemalloc.start()
    try:
        response = tenant.session.get(f"{tenant.url}/api/v1/items", timeout=10, stream=True)
        received = sum(len(chunk) for chunk in response.iter_content(256 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert received == size
    assert peak < 8 * 1024 * 1024  # both ends together, for a 64 MiB body


def test_redirects_to_another_host_and_loops(tenant: Tenant, make_sandbox: object) -> None:
    elsewhere: Sandbox = make_sandbox()  # type: ignore[operator]
    other_host = elsewhere.url.replace("127.0.0.1", "localhost")
    token = tenant.token()
    tenant.sandbox.force(location=f"{other_host}/api/v1/users/me", match="GET /api/v1/tenants/me")
    tenant.sandbox.force(status=302, location="/api/v1/loop", times=None, match="/api/v1/loop")

    moved = tenant.get("/api/v1/tenants/me", token)

    # requests drops Authorization across hosts: the other tenant sees no bearer.
    assert moved.status_code == 401
    assert elsewhere.count("GET /api/v1/users/me") == 1
    with pytest.raises(requests.TooManyRedirects):
        tenant.get("/api/v1/loop", token)


def test_forced_responses_queue_concurrently(tenant: Tenant) -> None:
    tenant.sandbox.force(status=500, times=20, match="GET /api/v1/users")
    statuses: list[int] = []

    def hit() -> None:
        client = Tenant(tenant.sandbox)
        statuses.extend(client.get("/api/v1/users").status_code for _ in range(10))

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses).count(500) == 20
    assert statuses.count(401) == 20


def test_http_controls_need_client_credentials(tenant: Tenant) -> None:
    anonymous = tenant.session.get(f"{tenant.url}/_sandbox/counters", timeout=5)
    wrong = tenant.session.get(
        f"{tenant.url}/_sandbox/counters", auth=(tenant.sandbox.client_id, "nope"), timeout=5
    )

    assert anonymous.status_code == wrong.status_code == 401


def test_http_controls_mirror_the_python_api(sandbox: Sandbox) -> None:
    tenant = Tenant(sandbox)
    remote = RemoteSandbox(
        sandbox.url, sandbox.client_id, sandbox.client_secret, ca_bundle=sandbox.ca_bundle
    )
    token = tenant.token()
    tenant.get("/api/v1/users/me", token)

    assert remote.count("POST /oauth/token") == 1
    assert remote.counters() == sandbox.counters()
    assert remote.connections == sandbox.connections
    assert remote.live_tokens() == 1
    assert remote.app_ids() == sandbox.app_ids()

    remote.force(status=418, body=b"\xff\x00", content_type="application/octet-stream",
                 match="GET /api/v1/items")  # fmt: skip
    teapot = tenant.get("/api/v1/items", token)
    assert (teapot.status_code, teapot.content) == (418, b"\xff\x00")
    remote.force(status=500, times=None)
    remote.clear_forced()
    assert tenant.get("/api/v1/items", token).status_code == 200

    assert remote.revoke_all() == 1
    assert tenant.get("/api/v1/users/me", token).status_code == 401
    token = tenant.token()
    assert remote.expire_all() == 1
    assert tenant.get("/api/v1/users/me", token).status_code == 401
    remote.reset_counters()
    assert sandbox.counters() == {}
    assert remote.advance_clock(3600).endswith("Z")


def test_http_force_rejects_unknown_fields(tenant: Tenant) -> None:
    response = tenant.session.post(
        f"{tenant.url}/_sandbox/force",
        json={"status": 500, "bogus": 1},
        auth=(tenant.sandbox.client_id, tenant.sandbox.client_secret),
        timeout=5,
    )

    assert response.status_code == 400
    assert "bogus" in response.json()["errors"][0]["detail"]


def test_control_requests_are_not_counted(tenant: Tenant) -> None:
    tenant.session.get(
        f"{tenant.url}/_sandbox/counters",
        auth=(tenant.sandbox.client_id, tenant.sandbox.client_secret),
        timeout=5,
    )

    assert tenant.sandbox.counters() == {}


def test_stop_returns_while_a_client_holds_a_stalled_connection(make_sandbox: object) -> None:
    sandbox: Sandbox = make_sandbox()  # type: ignore[operator]
    tenant = Tenant(sandbox)
    sandbox.force(stream_bytes=10_000, stall_after=10, match="/api/")
    response = tenant.session.get(f"{tenant.url}/api/v1/items", timeout=30, stream=True)
    assert response.status_code == 200

    sandbox.stop()

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        response.content  # noqa: B018 - the read must fail, not hang


def test_forced_headers_replace_the_defaults(tenant: Tenant) -> None:
    tenant.sandbox.force(
        headers={"Date": "Mon, 01 Jan 2024 00:00:00 GMT", "Content-Type": "text/csv"},
        body="a,b\n",
        content_type="application/json",
        match="GET /api/v1/items",
    )

    response = tenant.get("/api/v1/items")

    assert response.headers["Date"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert response.headers["Content-Type"] == "text/csv"
    assert response.text == "a,b\n"


def test_a_lying_content_length_is_sent_as_given(tenant: Tenant) -> None:
    tenant.sandbox.force(
        headers={"Content-Length": "100"}, body='{"id": 1}', stall_after=9, stall=0, match="/api/"
    )

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        tenant.get("/api/v1/items")
