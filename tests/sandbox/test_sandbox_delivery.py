"""The sandbox's delivery endpoints beyond their shapes: tus resumption, locks, expiry, publishing."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from fixtures_sandbox import TIMEOUT, Tenant

from qlikm2m.sandbox import Sandbox

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


def _upload(tenant: Tenant, token: str, length: int) -> str:
    response = tenant.post("/api/v1/temp-contents/files", token,
                           headers={**TUS, "Upload-Length": str(length)})  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.headers["Location"])


def _head(tenant: Tenant, token: str, location: str) -> requests.Response:
    return tenant.session.head(location, headers={**TUS, "Authorization": f"Bearer {token}"},
                               timeout=TIMEOUT)  # fmt: skip


def _patch(tenant: Tenant, token: str, location: str, offset: int, data: bytes) -> Any:
    return tenant.session.patch(location, data=data, timeout=TIMEOUT,
                                headers={**PATCH, "Upload-Offset": str(offset),
                                         "Authorization": f"Bearer {token}"})  # fmt: skip


def test_a_reset_mid_patch_keeps_what_arrived_and_locks_the_upload(
    make_sandbox: Any,
) -> None:
    sandbox: Sandbox = make_sandbox(upload_lock_seconds=0.3)
    tenant = Tenant(sandbox)
    token = tenant.token()
    data = bytes(range(256)) * 8192  # 2 MiB
    location = _upload(tenant, token, len(data))
    sandbox.force(reset_after=700_000, match="PATCH /api/v1/temp-contents/files/")

    with pytest.raises(requests.ConnectionError):
        _patch(tenant, token, location, 0, data)
    locked = _head(tenant, token, location)
    deadline = time.monotonic() + 10
    offset = _head(tenant, token, location)
    while offset.status_code == 423 and time.monotonic() < deadline:
        time.sleep(0.05)
        offset = _head(tenant, token, location)

    assert locked.status_code == 423
    assert offset.status_code == 200
    kept = int(offset.headers["Upload-Offset"])
    assert kept == 700_000
    assert _patch(tenant, token, location, kept, data[kept:]).status_code == 204
    download = tenant.get(f"/api/v1/temp-contents/{location.rsplit('/', 1)[1]}", token)
    assert download.content == data


def test_a_failed_chunk_is_not_applied(tenant: Tenant) -> None:
    token = tenant.token()
    location = _upload(tenant, token, 6)
    tenant.sandbox.force(status=500, body={"errors": [{"code": "X", "title": "boom"}]},
                         match="PATCH /api/v1/temp-contents/files/")  # fmt: skip

    failed = _patch(tenant, token, location, 0, b"abc")
    after = _head(tenant, token, location)

    assert failed.status_code == 500
    assert after.headers["Upload-Offset"] == "0"
    assert _patch(tenant, token, location, 0, b"abcdef").status_code == 204


def test_an_upload_expires_after_its_ttl(make_sandbox: Any) -> None:
    sandbox: Sandbox = make_sandbox()
    tenant = Tenant(sandbox)
    token = tenant.token()
    response = tenant.post("/api/v1/temp-contents/files", token,
                           headers={**TUS, "Upload-Length": "3", "Upload-Metadata": "ttl NjA="})  # fmt: skip
    location = response.headers["Location"]
    sandbox.advance_clock(61)

    assert _patch(tenant, token, location, 0, b"abc").status_code == 410
    assert _head(tenant, token, location).status_code == 410


def test_import_then_publish_then_republish_keeps_one_published_app(tenant: Tenant) -> None:
    token = tenant.token()
    spaces = tenant.collect("/api/v1/spaces", token)
    shared = next(s["id"] for s in spaces if s["type"] == "shared")
    managed = next(s["id"] for s in spaces if s["type"] == "managed")

    def imported() -> str:
        location = _upload(tenant, token, 4)
        assert _patch(tenant, token, location, 0, b"QVF!").status_code == 204
        file_id = location.rsplit("/", 1)[1]
        answer = tenant.post(f"/api/v1/apps/import?fileId={file_id}&spaceId={shared}&name=Q3",
                             token)  # fmt: skip
        return str(answer.json()["attributes"]["id"])

    first = imported()
    published = tenant.post(f"/api/v1/apps/{first}/publish", token,
                            json={"spaceId": managed}).json()["attributes"]  # fmt: skip
    second = imported()
    refused = tenant.session.put(f"{tenant.url}/api/v1/apps/{second}/publish", timeout=TIMEOUT,
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"targetId": published["id"]})  # fmt: skip
    replaced = tenant.session.put(f"{tenant.url}/api/v1/apps/{second}/publish", timeout=TIMEOUT,
                                  headers={"Authorization": f"Bearer {token}"},
                                  json={"targetId": published["id"],
                                        "checkOriginAppId": False})  # fmt: skip
    in_managed = tenant.collect("/api/v1/items", token,
                                {"resourceType": "app", "spaceId": managed, "name": "Q3"})  # fmt: skip

    assert published["originAppId"] == first
    assert published["publishTime"]
    assert refused.status_code == 400
    assert replaced.status_code == 200
    assert replaced.json()["attributes"]["originAppId"] == second
    assert [item["resourceId"] for item in in_managed] == [published["id"]]


def test_a_deleted_app_leaves_the_items(tenant: Tenant) -> None:
    token = tenant.token()
    app_id = tenant.sandbox.app_ids()[0]
    deleted = tenant.session.delete(f"{tenant.url}/api/v1/apps/{app_id}", timeout=TIMEOUT,
                                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    listed = tenant.collect("/api/v1/items", token, {"resourceType": "app"}, field="resourceId")

    assert deleted.status_code == 200
    assert app_id not in listed
    assert app_id not in tenant.sandbox.app_ids()


def test_reload_variables_and_weight_are_echoed(tenant: Tenant) -> None:
    token = tenant.token()
    app_id = tenant.sandbox.app_ids()[0]

    started = tenant.post("/api/v1/reloads", token,
                          json={"appId": app_id, "weight": 7, "variables": {"vRegion": "EU"}})  # fmt: skip
    too_many = tenant.post("/api/v1/reloads", token,
                           json={"appId": app_id, "variables": {f"v{n}": "x" for n in range(21)}})  # fmt: skip

    assert started.status_code == 201
    assert started.json()["weight"] == 7
    assert started.json()["variables"] == {"vRegion": "EU"}
    assert too_many.status_code == 400
