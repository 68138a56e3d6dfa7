"""Reloads move QUEUED -> RELOADING -> SUCCEEDED/FAILED/EXCEEDED_LIMIT on the sandbox's (injectable) clock."""

from __future__ import annotations

import pytest
from fixtures_sandbox import Tenant
from harness import FakeClock

from qlikm2m.sandbox import Sandbox


@pytest.fixture
def timed(make_sandbox: object, clock: FakeClock) -> Tenant:
    sandbox: Sandbox = make_sandbox(  # type: ignore[operator]
        items=12,
        clock=clock,
        reload_queue_time=2,
        reload_duration=10,
        fail_apps=("broken-app",),
        exceed_limit_apps=("huge-app",),
    )
    return Tenant(sandbox)


def _start(tenant: Tenant, token: str, app_id: str, **extra: object) -> dict[str, object]:
    response = tenant.post("/api/v1/reloads", token, json={"appId": app_id, **extra})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/api/v1/reloads/{body['id']}"
    assert isinstance(body, dict)
    return body


def _status(tenant: Tenant, token: str, reload_id: object) -> dict[str, object]:
    response = tenant.get(f"/api/v1/reloads/{reload_id}", token)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_a_reload_runs_through_its_states(timed: Tenant, clock: FakeClock) -> None:
    token = timed.token()
    app_id = timed.sandbox.app_ids()[0]
    created = _start(timed, token, app_id)
    assert created["status"] == "QUEUED"
    assert created["appId"] == app_id
    assert created["partial"] is False
    assert "startTime" not in created

    clock.advance(3)
    running = _status(timed, token, created["id"])
    clock.advance(10)
    done = _status(timed, token, created["id"])

    assert running["status"] == "RELOADING"
    assert "startTime" in running
    assert "endTime" not in running
    assert done["status"] == "SUCCEEDED"
    assert str(done["endTime"]) > str(done["startTime"]) > str(done["creationTime"])
    assert "Finished successfully" in str(done["log"])


def test_a_reload_of_a_failing_app_fails_with_a_log(timed: Tenant, clock: FakeClock) -> None:
    token = timed.token()
    created = _start(timed, token, "broken-app", partial=True)

    clock.advance(12)
    failed = _status(timed, token, created["id"])

    assert failed["status"] == "FAILED"
    assert failed["partial"] is True
    assert failed["errorCode"]
    assert "Execution failed" in str(failed["log"])


def test_a_reload_of_an_app_over_its_limit_ends_exceeded_limit(
    timed: Tenant, clock: FakeClock
) -> None:
    token = timed.token()
    created = _start(timed, token, "huge-app")
    clock.advance(3)
    assert _status(timed, token, created["id"])["status"] == "RELOADING"
    clock.advance(10)
    over = _status(timed, token, created["id"])

    assert over["status"] == "EXCEEDED_LIMIT"
    assert over["errorCode"]
    assert "limit" in str(over["log"])
    assert "endTime" in over
    app = timed.get("/api/v1/apps/huge-app", token)
    assert app.status_code == 200
    assert app.json()["attributes"]["name"].startswith("Over-limit app")
    assert (
        timed.get("/api/v1/apps/broken-app", token)
        .json()["attributes"]["name"]
        .startswith("Failing app")
    )


def test_an_app_cannot_both_fail_and_exceed_its_limit(make_sandbox: object) -> None:
    from qlikm2m.sandbox.config import SandboxConfigError

    with pytest.raises(SandboxConfigError, match="both fail and exceed"):
        make_sandbox(fail_apps=("x",), exceed_limit_apps=("x",))  # type: ignore[operator]


def test_the_app_and_its_item_show_the_last_reload(timed: Tenant, clock: FakeClock) -> None:
    token = timed.token()
    app_id = timed.sandbox.app_ids()[0]
    _start(timed, token, app_id)
    clock.advance(12)

    app = timed.get(f"/api/v1/apps/{app_id}", token).json()
    item = timed.get(
        "/api/v1/items", token, params={"resourceType": "app", "resourceId": app_id}
    ).json()["data"][0]

    assert app["attributes"]["lastReloadTime"] == item["resourceReloadEndTime"]
    assert item["resourceReloadStatus"] == "ok"


def test_listing_reloads_of_an_app_newest_first_across_pages(
    timed: Tenant, clock: FakeClock
) -> None:
    token = timed.token()
    app_id, other = timed.sandbox.app_ids()[:2]
    started = []
    for _ in range(5):
        started.append(_start(timed, token, app_id)["id"])
        clock.advance(1)
    _start(timed, token, other)

    listed = timed.collect("/api/v1/reloads", token, {"appId": app_id, "limit": "2"})

    assert [r["id"] for r in listed] == list(reversed(started))
    assert "log" not in listed[0]
    with_log = timed.get("/api/v1/reloads", token, params={"appId": app_id, "log": "true"})
    assert "log" in with_log.json()["data"][0]


def test_reload_requests_are_checked(timed: Tenant) -> None:
    token = timed.token()

    assert timed.post("/api/v1/reloads", token, json={}).status_code == 400
    assert (
        timed.post("/api/v1/reloads", token, json={"appId": "x", "partial": "yes"}).status_code
        == 400
    )
    assert timed.post("/api/v1/reloads", token, json={"appId": "no-such-app"}).status_code == 403
    assert timed.get("/api/v1/reloads", token).status_code == 400
    assert timed.post("/api/v1/reloads", json={"appId": "broken-app"}).status_code == 401


def test_cancel_a_running_reload(timed: Tenant, clock: FakeClock) -> None:
    token = timed.token()
    created = _start(timed, token, "broken-app")
    clock.advance(3)

    cancel = timed.post(f"/api/v1/reloads/{created['id']}/actions/cancel", token)
    clock.advance(20)
    again = timed.post(f"/api/v1/reloads/{created['id']}/actions/cancel", token)

    assert cancel.status_code == 204
    assert _status(timed, token, created["id"])["status"] == "CANCELED"
    assert again.status_code == 409


def test_reloads_run_on_real_time_too(make_sandbox: object) -> None:
    sandbox: Sandbox = make_sandbox(reload_queue_time=0, reload_duration=0)  # type: ignore[operator]
    tenant = Tenant(sandbox)
    token = tenant.token()

    created = _start(tenant, token, sandbox.app_ids()[0])

    assert _status(tenant, token, created["id"])["status"] == "SUCCEEDED"


def test_advance_clock_moves_reloads_along(timed: Tenant) -> None:
    token = timed.token()
    created = _start(timed, token, timed.sandbox.app_ids()[0])

    timed.sandbox.advance_clock(60)

    assert _status(timed, token, created["id"])["status"] == "SUCCEEDED"


def test_the_apps_service_serves_the_whole_reload_log(timed: Tenant, clock: FakeClock) -> None:
    token = timed.token()
    created = _start(timed, token, "broken-app")
    clock.advance(20)
    response = timed.get(f"/api/v1/apps/broken-app/reloads/logs/{created['id']}", token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert "Error: Field 'Amount' not found" in response.text
    other_app = timed.sandbox.app_ids()[0]
    wrong = timed.get(f"/api/v1/apps/{other_app}/reloads/logs/{created['id']}", token)
    assert wrong.status_code == 404


def test_items_by_resource_ids_show_when_each_apps_last_reload_ended(
    timed: Tenant, clock: FakeClock
) -> None:
    token = timed.token()
    done, stopped, idle = timed.sandbox.app_ids()[:3]
    finished = _start(timed, token, done)
    failing = _start(timed, token, "broken-app")
    canceled = _start(timed, token, stopped)
    clock.advance(3)
    assert timed.post(f"/api/v1/reloads/{canceled['id']}/actions/cancel", token).ok
    ids = [done, stopped, idle, "broken-app"]
    params = {"resourceType": "app", "resourceIds": ",".join(ids), "limit": "100"}

    def items() -> dict[str, dict[str, object]]:
        data = timed.get("/api/v1/items", token, params=params).json()["data"]
        return {item["resourceId"]: item for item in data}

    running = items()
    clock.advance(12)
    ended = items()

    assert set(running) == set(ended) == set(ids)
    assert all("resourceReloadEndTime" not in item for item in running.values())
    # The item follows the reload's end as soon as it happens, with the reload's own end time.
    assert ended[done]["resourceReloadStatus"] == "ok"
    assert ended[done]["resourceReloadEndTime"] == _status(timed, token, finished["id"])["endTime"]
    assert ended["broken-app"]["resourceReloadStatus"] == "failed"
    assert (
        ended["broken-app"]["resourceReloadEndTime"]
        == _status(timed, token, failing["id"])["endTime"]
    )
    # A canceled reload leaves the item as it was (*sandbox choice*), as does no reload at all.
    assert "resourceReloadEndTime" not in ended[stopped]
    assert "resourceReloadEndTime" not in ended[idle]
