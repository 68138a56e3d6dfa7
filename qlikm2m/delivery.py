"""App delivery, the job CI pipelines automate most: export, import, publish or republish, deploy,
remove; data files; spaces and assignments with an "ensure" mode.

Knows nothing of Typer. Every function takes a ``QlikClient`` and returns JSON-ready records with
camelCase keys; failures are the project's errors (errors.py). Qlik behaviour is cited by spec
file and operation (../shared/qlik-specs).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from qlikm2m.errors import ApiError, QlikM2MError, UsageError
from qlikm2m.names import AppRef, find_apps, resolve_space
from qlikm2m.transfer import (
    DEFAULT_CHUNK_SIZE,
    MAX_STALL_WAIT,
    Progress,
    TusUpload,
    download,
    file_digest,
)

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.reloads import Reporter, WaitOptions

PUBLISH_DATA = ("source", "target")
SPACE_TYPES = ("shared", "managed", "data")
ASSIGNEE_TYPES = ("user", "group")


def _app_path(app_id: str, *rest: str) -> str:
    return "/".join([f"/api/v1/apps/{quote(app_id, safe='')}", *rest])


def _attributes(nx_app: Any, what: str) -> Mapping[str, Any]:
    """The ``attributes`` of an NxApp answer (apps.json NxApp)."""
    attributes = nx_app.get("attributes") if isinstance(nx_app, dict) else None
    if not isinstance(attributes, dict) or not attributes.get("id"):
        raise ApiError(f"{what} did not answer with an app (no attributes.id).")
    return attributes


def _app_record(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "appId": attributes.get("id"),
        "name": attributes.get("name"),
        "spaceId": attributes.get("spaceId"),
        "originAppId": attributes.get("originAppId") or None,
        "publishTime": attributes.get("publishTime") or None,
    }


# == export and import ============================================================================


def export_app(
    client: QlikClient, app_id: str, target: Path, *, no_data: bool = False, overwrite: bool = False
) -> dict[str, Any]:
    """Export an app to a .qvf file (apps.json POST /apps/{appId}/export, then GET the Location).

    Returns ``{appId, file, bytes, sha256, noData}``. Raises UsageError for an existing target
    without ``overwrite``; ApiError (404: no such app) and network errors otherwise.
    """
    if target.exists() and not overwrite:
        raise UsageError(f"{target} exists.", hint="Pass --overwrite to replace it.")
    params = {"NoData": "true"} if no_data else None
    response = client.request("POST", _app_path(app_id, "export"), params=params)
    location = response.headers.get("location")
    response.read_prefix()
    if not location:
        raise ApiError(f"POST /api/v1/apps/{app_id}/export answered without a Location.")
    digest = download(client, location, target, overwrite=overwrite)
    return {
        "appId": app_id,
        "file": str(digest.path),
        "bytes": digest.bytes,
        "sha256": digest.sha256,
        "noData": no_data,
    }


@dataclass(frozen=True)
class Uploaded:
    """A file uploaded to temporary contents (its id), with its size and sha256."""

    file_id: str
    file: Path
    bytes: int
    sha256: str
    resumes: int  # times the upload went on from the tenant's offset
    bytes_sent: int  # body bytes put on the wire, re-sent ones included


def upload_file(
    client: QlikClient,
    path: Path,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> Uploaded:
    """Upload a file over tus (temp-contents.json postTus/patchTus); see transfer.TusUpload."""
    # The pause between failed chunks honours the retry budget (QLIKM2M_MAX_RETRY_WAIT).
    stall_wait = min(MAX_STALL_WAIT, client.settings.seconds("max_retry_wait"))
    result = TusUpload(
        client, chunk_size=chunk_size, stall_wait=stall_wait, progress=progress
    ).upload(path)
    return Uploaded(
        result.file_id,
        path,
        result.digest.bytes,
        result.digest.sha256,
        result.resumes,
        result.bytes_sent,
    )


def import_uploaded(
    client: QlikClient, uploaded: Uploaded, *, space_id: str | None, name: str | None
) -> dict[str, Any]:
    """Create an app from an uploaded file (apps.json POST /apps/import with fileId)."""
    params = {"fileId": uploaded.file_id}
    if space_id:
        params["spaceId"] = space_id
    if name:
        params["name"] = name
    answer = client.request("POST", "/api/v1/apps/import", params=params).json()
    attributes = _attributes(answer, "POST /api/v1/apps/import")
    return {
        **_app_record(attributes),
        "file": str(uploaded.file),
        "bytes": uploaded.bytes,
        "sha256": uploaded.sha256,
        "fileId": uploaded.file_id,
        "resumes": uploaded.resumes,
        "bytesSent": uploaded.bytes_sent,
    }


def import_app(
    client: QlikClient,
    path: Path,
    *,
    space_id: str | None = None,
    name: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Upload ``path`` and import it into a space (personal when None) as ``name``.

    Returns ``{appId, name, spaceId, originAppId, publishTime, file, bytes, sha256, fileId,
    resumes, bytesSent}``.
    """
    uploaded = upload_file(client, path, chunk_size=chunk_size, progress=progress)
    return import_uploaded(client, uploaded, space_id=space_id, name=name or _stem(path))


def _stem(path: Path) -> str:
    return path.name[: -len(".qvf")] if path.name.lower().endswith(".qvf") else path.name


# == publish ======================================================================================


def _check_data(data: str) -> None:
    if data not in PUBLISH_DATA:
        raise UsageError(f"--data {data!r}: use source or target.")


def publish_app(
    client: QlikClient,
    app_id: str,
    space_id: str,
    *,
    name: str | None = None,
    data: str = "source",
) -> dict[str, Any]:
    """Publish an app to a managed space: a new published copy (apps.json POST /publish)."""
    _check_data(data)
    body: dict[str, Any] = {"spaceId": space_id, "data": data}
    if name:
        body["attributes"] = {"name": name}
    answer = client.request("POST", _app_path(app_id, "publish"), json=body).json()
    return _app_record(_attributes(answer, f"POST /api/v1/apps/{app_id}/publish"))


def republish_app(
    client: QlikClient,
    app_id: str,
    target_id: str,
    *,
    name: str | None = None,
    data: str = "source",
    check_origin: bool = True,
) -> dict[str, Any]:
    """Republish over a published app (apps.json PUT /publish, RepublishApp).

    ``check_origin`` is the spec's ``checkOriginAppId`` (default true): the tenant refuses a
    source that is not the app first published to the target. A freshly imported copy never is.
    """
    _check_data(data)
    body: dict[str, Any] = {"targetId": target_id, "data": data, "checkOriginAppId": check_origin}
    if name:
        body["attributes"] = {"name": name}
    answer = client.request("PUT", _app_path(app_id, "publish"), json=body).json()
    return _app_record(_attributes(answer, f"PUT /api/v1/apps/{app_id}/publish"))


def remove_app(client: QlikClient, app: AppRef) -> dict[str, Any]:
    """Delete an app (apps.json DELETE /apps/{appId}); returns ``{appId, name, spaceId}``."""
    client.request("DELETE", _app_path(app.id)).read_prefix()
    return {"appId": app.id, "name": app.name, "spaceId": app.space_id}


def _published_target(client: QlikClient, managed_space_id: str, name: str) -> AppRef | None:
    found = find_apps(client, name, managed_space_id)
    exact = [app for app in found if app.name == name] or found
    if len(exact) > 1:
        listed = ", ".join(app.id for app in exact)
        raise ApiError(
            f"{len(exact)} apps named {name!r} are in the managed space: {listed}.",
            hint="Remove the extra ones (qlikm2m apps rm APP_ID) so deploy knows which to update.",
            details={"candidates": [{"id": a.id, "name": a.name} for a in exact]},
        )
    return exact[0] if exact else None


# == deploy =======================================================================================


@dataclass(frozen=True)
class DeployPlan:
    """What ``deploy`` is asked to do. Exactly one of ``file`` and ``app_id`` is set."""

    to_space: str  # managed space: name or id
    file: Path | None = None
    app_id: str | None = None
    staging_space: str | None = None  # where a file is imported first: name or id; None = personal
    name: str | None = None
    data: str = "source"
    keep_staging: bool = False
    reload: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)
    weight: int | None = None
    wait: WaitOptions | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE


def deploy(
    client: QlikClient,
    plan: DeployPlan,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    reporter: Reporter | None = None,
    note: Callable[[str], None] = lambda line: None,
) -> tuple[dict[str, Any], QlikM2MError | None]:
    """Deploy an app to a managed space, idempotently; returns (record, error of the reload).

    Steps: resolve the managed (and staging) space; find the published app named ``name`` there
    (none: create; one: update; more: ApiError); from a file, upload and import it into the
    staging space; publish (POST) or republish (PUT, ``checkOriginAppId`` false when the source is
    not the target's origin, as a fresh import never is); delete the staging copy unless
    ``keep_staging``; reload with ``variables`` and wait when asked; check the published app
    answers (GET /apps/{appId}). Running it twice leaves one published app. With ``dry_run`` only
    the reads are made. The record always has the same keys: ``action`` (created/updated),
    ``dryRun``, ``name``, ``source`` {file, bytes, sha256, appId}, ``stagingSpaceId``,
    ``stagingRemoved``, ``spaceId``, ``appId``, ``originAppId``, ``reload``, ``checked``.
    """
    if (plan.file is None) == (plan.app_id is None):
        raise UsageError("Give either a .qvf file or --app, not both or neither.")
    _check_data(plan.data)
    managed = resolve_space(client, plan.to_space)
    if managed.get("type") != "managed":
        raise UsageError(
            f"Space {managed.get('name')!r} ({managed.get('id')}) is a {managed.get('type')} "
            "space: apps are published to managed spaces.",
        )
    managed_id = str(managed["id"])
    staging_id: str | None = None
    if plan.file is not None and plan.staging_space:
        staging = resolve_space(client, plan.staging_space)
        if staging.get("type") == "managed":
            raise UsageError("The staging space must be a shared (or personal) space, not managed.")
        staging_id = str(staging["id"])
    source: dict[str, Any] = {"file": None, "bytes": None, "sha256": None, "appId": None}
    if plan.file is not None:
        name = plan.name or _stem(plan.file)
        source["file"] = str(plan.file)
        if dry_run:
            source["bytes"] = file_digest(plan.file).bytes
    else:
        assert plan.app_id is not None
        source_app = client.get_json(_app_path(plan.app_id))
        attributes = _attributes(source_app, f"GET /api/v1/apps/{plan.app_id}")
        source["appId"] = plan.app_id
        name = plan.name or str(attributes.get("name") or "")
        if not name:
            raise UsageError("The source app has no name; pass --name.")
    target = _published_target(client, managed_id, name)
    record: dict[str, Any] = {
        "action": "updated" if target is not None else "created",
        "dryRun": dry_run,
        "name": name,
        "source": source,
        "stagingSpaceId": staging_id,
        "stagingRemoved": False,
        "spaceId": managed_id,
        "appId": target.id if target is not None else None,
        "originAppId": None,
        "reload": None,
        "checked": False,
    }
    if dry_run:
        return record, None
    if plan.file is not None:
        uploaded = upload_file(client, plan.file, chunk_size=plan.chunk_size, progress=progress)
        imported = import_uploaded(client, uploaded, space_id=staging_id, name=name)
        source.update(bytes=uploaded.bytes, sha256=uploaded.sha256, appId=imported["appId"])
        note(f"imported {plan.file} as app {imported['appId']}")
    source_id = str(source["appId"])
    if target is None:
        published = publish_app(client, source_id, managed_id, name=name, data=plan.data)
    else:
        origin = target.item.get("resourceAttributes", {}).get("originAppId")
        published = republish_app(
            client,
            source_id,
            target.id,
            name=name,
            data=plan.data,
            check_origin=origin == source_id,
        )
    record["appId"] = published["appId"]
    record["originAppId"] = published["originAppId"]
    note(f"{record['action']} published app {record['appId']}")
    if plan.file is not None and not plan.keep_staging:
        remove_app(client, AppRef(source_id, name, staging_id, {}))
        record["stagingRemoved"] = True
    error: QlikM2MError | None = None
    if plan.reload:
        record["reload"], error = _reload(client, str(record["appId"]), plan, reporter)
    client.get_json(_app_path(str(record["appId"])))  # the published app answers
    record["checked"] = True
    return record, error


def _reload(
    client: QlikClient, app_id: str, plan: DeployPlan, reporter: Reporter | None
) -> tuple[dict[str, Any] | None, QlikM2MError | None]:
    from qlikm2m.reloads import ClientReloadApi, run_reloads

    api = ClientReloadApi(client, variables=dict(plan.variables), weight=plan.weight)
    report = run_reloads(api, [app_id], wait=plan.wait, reporter=reporter)
    if report.interrupted:
        raise KeyboardInterrupt
    result = report.results[0]
    return (dict(result.record) if result.record is not None else None), report.error()


# == data files ===================================================================================


def _multipart(meta: Mapping[str, Any]) -> tuple[bytes, str]:
    """A multipart/form-data body with only the ``Json`` part (data-files.json POST/PUT)."""
    boundary = f"qlikm2m-{secrets.token_hex(12)}"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="Json"\r\n'
        "Content-Type: application/json\r\n\r\n"
        f"{json.dumps(meta)}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _data_file_record(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict) or not answer.get("id"):
        raise ApiError(f"{what} did not answer with a data file.")
    return answer


def find_data_file(client: QlikClient, name: str) -> dict[str, Any] | None:
    """The data file named exactly ``name`` (data-files.json GET /data-files?name=)."""
    for record in client.paginate("/api/v1/data-files", {"name": name}):
        if isinstance(record, dict) and record.get("name") == name:
            return record
    return None


def upload_data_file(
    client: QlikClient,
    path: Path,
    *,
    name: str | None = None,
    replace: bool = False,
    connection_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Upload a data file: tus to temporary contents, then POST /data-files with its id.

    An existing name is a 409 from the tenant: with ``replace`` the file is replaced (PUT
    /data-files/{id}), else ApiError (exit 5). Returns ``{action, sha256, dataFile}`` with
    action created/replaced.
    """
    uploaded = upload_file(client, path, chunk_size=chunk_size, progress=progress)
    meta: dict[str, Any] = {"name": name or path.name, "tempContentFileId": uploaded.file_id}
    if connection_id:
        meta["connectionId"] = connection_id
    body, content_type = _multipart(meta)
    headers = {"Content-Type": content_type}
    response = client.request("POST", "/api/v1/data-files", data=body, headers=headers, check=False)
    if response.status == 409 and replace:
        response.read_prefix()
        existing = find_data_file(client, str(meta["name"]))
        if existing is None:
            raise ApiError(f"The tenant said {meta['name']!r} exists, but it is not listed.")
        body, content_type = _multipart({"tempContentFileId": uploaded.file_id})
        path_id = quote(str(existing["id"]), safe="")
        answer = client.request(
            "PUT",
            f"/api/v1/data-files/{path_id}",
            data=body,
            headers={"Content-Type": content_type},
        ).json()
        action = "replaced"
    else:
        from qlikm2m.http import error_for

        if response.status == 409:
            raise ApiError(
                error_for(response).message,
                hint="Pass --replace to replace the existing file.",
                details={"status": 409},
            )
        if response.status >= 400:
            raise error_for(response)
        answer = response.json()
        action = "created"
    record = _data_file_record(answer, "POST /api/v1/data-files")
    return {"action": action, "sha256": uploaded.sha256, "dataFile": record}


def remove_data_file(client: QlikClient, value: str) -> dict[str, Any]:
    """Delete a data file given by id or exact name; returns ``{id, name}``."""
    found = find_data_file(client, value)
    file_id = str(found["id"]) if found is not None else value
    name = found.get("name") if found is not None else None
    client.request("DELETE", f"/api/v1/data-files/{quote(file_id, safe='')}").read_prefix()
    return {"id": file_id, "name": name}


# == spaces and assignments =======================================================================


def create_space(
    client: QlikClient, name: str, space_type: str, *, description: str | None, ensure: bool
) -> dict[str, Any]:
    """Create a space (spaces.json POST /spaces); with ``ensure`` an existing one is success.

    "Exists" is the 409 status (spaces.json: "name must be unique"), never the error's text.
    Returns ``{action: created|existing, space}``. An existing space of another type is an
    ApiError: ensure does not change types.
    """
    if space_type not in SPACE_TYPES:
        raise UsageError(f"--type {space_type!r}: use one of {', '.join(SPACE_TYPES)}.")
    body: dict[str, Any] = {"name": name, "type": space_type}
    if description:
        body["description"] = description
    response = client.request("POST", "/api/v1/spaces", json=body, check=False)
    if response.status == 201 or response.status == 200:
        return {"action": "created", "space": response.json()}
    if response.status != 409 or not ensure:
        from qlikm2m.http import error_for

        error = error_for(response)
        if response.status == 409:
            error.hint = "Pass --ensure to treat an existing space as success."
        raise error
    response.read_prefix()
    existing = dict(resolve_space(client, name))
    if existing.get("type") != space_type:
        raise ApiError(
            f"Space {name!r} exists as a {existing.get('type')} space, not {space_type}.",
            details={"space": existing.get("id")},
        )
    return {"action": "existing", "space": existing}


def assign(
    client: QlikClient,
    space_id: str,
    assignee_type: str,
    assignee_id: str,
    roles: list[str],
    *,
    ensure: bool,
) -> dict[str, Any]:
    """Assign a user or group to a space with roles (spaces.json createSpaceAssignment).

    With ``ensure`` a 409 (already assigned: "assigneeId must be unique") is success and the
    existing assignment is returned. Returns ``{action: created|existing, assignment}``.
    """
    if not roles:
        raise UsageError("Give at least one --role.")
    path = f"/api/v1/spaces/{quote(space_id, safe='')}/assignments"
    body = {"type": assignee_type, "assigneeId": assignee_id, "roles": roles}
    response = client.request("POST", path, json=body, check=False)
    if response.status in (200, 201):
        return {"action": "created", "assignment": response.json()}
    if response.status != 409 or not ensure:
        from qlikm2m.http import error_for

        error = error_for(response)
        if response.status == 409:
            error.hint = "Pass --ensure to treat an existing assignment as success."
        raise error
    response.read_prefix()
    for assignment in client.paginate(path, {"assigneeId": assignee_id}):
        if isinstance(assignment, dict) and assignment.get("assigneeId") == assignee_id:
            return {"action": "existing", "assignment": assignment}
    raise ApiError(f"The tenant said {assignee_id} is assigned, but the assignment is not listed.")
