"""App delivery on the sandbox tenant: export, import, publish and republish, delete; data files;
creating spaces and assigning users or groups to them (apps.json, data-files.json, spaces.json).

Where a spec declares an answer without a body (the 404 of export and import), the sandbox sends
none. Published apps carry `publishTime` and `originAppId` (the app they were published from);
`PUT .../publish` checks that origin unless `checkOriginAppId` is false, as apps.json describes.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import uuid
from typing import Any

from qlikm2m.sandbox.api import (
    Api,
    BadRequest,
    Principal,
    Request,
    _limit,
    _parse_body,
    not_found,
    route,
)
from qlikm2m.sandbox.storage import (
    ASSIGNABLE_ROLES,
    Content,
    DataFile,
    DeliveredApp,
    new_app_id,
    new_space_id,
)
from qlikm2m.sandbox.transfers import DEFAULT_TTL
from qlikm2m.sandbox.wire import Response, error_response, iso, json_response

# spaces.json SpaceCreate.name: no " * ? < > / | \ :
_SPACE_NAME = re.compile(r'^[^"*?<>/|\\:]+$')
_FILE_NAME = re.compile(r'^[^<>":\x00|?*]+$')
_FOLDER_STATS = (
    "aggregateAppScopedFileSize", "aggregateFileSize", "aggregateInternalFileSize",
    "directAppScopedFileCount", "directFileCount", "directFolderCount", "directInternalFileCount",
    "totalAppScopedFileCount", "totalFileCount", "totalFolderCount", "totalInternalFileCount",
)  # fmt: skip


def _nx_app(api: Api, app_id: str) -> dict[str, Any]:
    n = api.state.app_index(app_id)
    assert n is not None
    return api.state.app(n)


def _owner(api: Api, principal: Principal | None) -> str:
    return principal.user_id if principal is not None else api.state.api_key_user_id


# == apps =========================================================================================


@route("POST", "/api/v1/apps/{appId}/export", "apps")
def export_app(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    source = api.state.app_source(params["appId"])
    if source is None:
        return Response(404)  # apps.json: the export's 404 has no body
    name, _, content = source
    if request.param("NoData") == "true" and content.path is None:
        # Without data a seeded app's file is smaller; an imported file is what it is.
        content = Content(content.size // 2)
    with api.state.lock:
        upload = api.state.stores.generated_upload(
            content, f"{name}.qvf", api.state.now(), DEFAULT_TTL
        )
    return Response(201, headers=[("Location", f"/api/v1/temp-contents/{upload.id}")])


@route("POST", "/api/v1/apps/import", "apps")
def import_app(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    file_id = request.param("fileId")
    if not file_id:
        raise BadRequest("fileId is required: upload the file to temp-contents first.", "fileId")
    space_id = request.param("spaceId") or None
    with api.state.lock:
        upload = api.state.stores.uploads.get(file_id)
        space = api.state.space_by_id.get(space_id) if space_id else None
    if upload is None or api.state.now() >= upload.expires_at:
        return Response(404)  # apps.json: the import's 404 has no body
    if space_id and space is None:
        return Response(404)
    if space is not None and space["type"] == "managed":
        raise BadRequest("Apps are published to managed spaces, not imported.", "spaceId")
    if not upload.complete:
        raise BadRequest("The uploaded file is incomplete.", "fileId")
    name = request.param("name") or re.sub(r"\.qvf$", "", upload.filename, flags=re.I)
    now = api.state.now()
    app = DeliveredApp(
        id=new_app_id(),
        name=name or "Imported app",
        space_id=space_id,
        owner_id=_owner(api, principal),
        created_at=now,
        modified_at=now,
        content=upload.content,
    )
    with api.state.lock:
        api.state.stores.add_app(app)
    return json_response(200, _nx_app(api, app.id))


def _publish_body(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    body = _parse_body(request)
    data = body.get("data", "source")
    if data not in ("source", "target"):
        raise BadRequest('data must be "source" or "target".', "data")
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise BadRequest("attributes must be an object.", "attributes")
    return body, attributes


@route("POST", "/api/v1/apps/{appId}/publish", "apps")
def publish_app(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    body, attributes = _publish_body(request)
    source = api.state.app_source(params["appId"])
    if source is None:
        return not_found("apps", "App")
    name, source_space, content = source
    space_id = body.get("spaceId")
    if not isinstance(space_id, str) or not space_id:
        raise BadRequest("spaceId is required: the managed space to publish to.", "spaceId")
    space = api.state.space_by_id.get(space_id)
    if space is None:
        return not_found("apps", "Space")
    if space["type"] != "managed":
        raise BadRequest(f"Space {space_id} is a {space['type']} space, not managed.", "spaceId")
    if source_space and api.state.space_by_id[source_space]["type"] == "managed":
        raise BadRequest("A published app cannot be published again; republish it.", "appId")
    now = api.state.now()
    app = DeliveredApp(
        id=new_app_id(),
        name=str(attributes.get("name") or name),
        description=str(attributes.get("description") or ""),
        space_id=space_id,
        owner_id=_owner(api, principal),
        created_at=now,
        modified_at=now,
        content=content,
        origin_app_id=params["appId"],
        publish_time=now,
    )
    with api.state.lock:
        api.state.stores.add_app(app)
    return json_response(200, _nx_app(api, app.id))


@route("PUT", "/api/v1/apps/{appId}/publish", "apps")
def republish_app(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    body, attributes = _publish_body(request)
    source = api.state.app_source(params["appId"])
    if source is None:
        return not_found("apps", "App")
    target_id = body.get("targetId")
    if not isinstance(target_id, str) or not target_id:
        raise BadRequest("targetId is required: the published app to republish over.", "targetId")
    check_origin = body.get("checkOriginAppId", True)
    if not isinstance(check_origin, bool):
        raise BadRequest("checkOriginAppId must be a boolean.", "checkOriginAppId")
    with api.state.lock:
        target = api.state.stores.live_app(target_id)
        if target is None:
            return not_found("apps", "Target app")
        if target.publish_time is None:
            raise BadRequest(f"App {target_id} is not a published app.", "targetId")
        if check_origin and target.origin_app_id != params["appId"]:
            # apps.json RepublishApp.checkOriginAppId (default true): the source must be the app
            # first published to the target. A freshly imported copy is another app.
            raise BadRequest(
                f"App {params['appId']} is not the app originally published to {target_id} "
                f"({target.origin_app_id}); set checkOriginAppId to false to replace it anyway.",
                "checkOriginAppId",
            )
        now = api.state.now()
        if body.get("data", "source") == "source":
            target.content = source[2]
        target.name = str(attributes.get("name") or target.name)
        if "description" in attributes:
            target.description = str(attributes["description"])
        target.origin_app_id = params["appId"]
        target.modified_at = now
        target.publish_time = now
    return json_response(200, _nx_app(api, target_id))


@route("DELETE", "/api/v1/apps/{appId}", "apps")
def delete_app(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    app_id = params["appId"]
    with api.state.lock:
        delivered = api.state.stores.live_app(app_id)
        if delivered is not None:
            delivered.deleted = True
        elif api.state.app_index(app_id) is not None:
            api.state.stores.deleted_seeded.add(app_id)
        else:
            return not_found("apps", "App")
    return json_response(200, {})


# == spaces and assignments ======================================================================


@route("POST", "/api/v1/spaces", "spaces")
def create_space(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    body = _parse_body(request)
    name = body.get("name")
    kind = body.get("type")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise BadRequest("name is required (1 to 256 characters).", "name")
    if not _SPACE_NAME.match(name):
        raise BadRequest('name must not contain " * ? < > / | \\ or :.', "name")
    if kind not in ASSIGNABLE_ROLES:
        raise BadRequest("type must be shared, managed or data.", "type")
    description = body.get("description") or ""
    now = iso(api.state.now())
    owner = _owner(api, principal)
    with api.state.lock:
        if any(s["name"].lower() == name.lower() for s in api.state.spaces):
            return error_response(
                "spaces", 409, "SPACES-409", "Conflict", f"A space named {name!r} already exists."
            )
        space: dict[str, Any] = {
            "id": new_space_id(),
            "name": name,
            "type": kind,
            "tenantId": api.state.tenant_id,
            "ownerId": owner,
            "createdBy": owner,
            "createdAt": now,
            "updatedAt": now,
            "description": str(description),
            "meta": {
                "actions": ["create", "read", "update", "delete"],
                "roles": [],
                "assignableRoles": ASSIGNABLE_ROLES[kind],
            },
        }
        api.state.spaces.append(space)
        api.state.space_by_id[space["id"]] = space
    view = api.state.space_view(space, request.base_url)
    return json_response(201, view, [("Location", f"/api/v1/spaces/{space['id']}")])


def _assignment_view(assignment: dict[str, Any], base_url: str) -> dict[str, Any]:
    space_href = f"{base_url}/api/v1/spaces/{assignment['spaceId']}"
    links = {
        "self": {"href": f"{space_href}/assignments/{assignment['id']}"},
        "space": {"href": space_href},
    }
    return {**assignment, "links": links}


@route("POST", "/api/v1/spaces/{spaceId}/assignments", "spaces")
def create_assignment(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    space = api.state.space_by_id.get(params["spaceId"])
    if space is None:
        return not_found("spaces", "Space")
    body = _parse_body(request)
    kind = body.get("type")
    assignee = body.get("assigneeId")
    roles = body.get("roles")
    if kind not in ("user", "group", "bot"):
        raise BadRequest("type must be user, group or bot.", "type")
    if not isinstance(assignee, str) or not assignee:
        raise BadRequest("assigneeId is required.", "assigneeId")
    if kind == "user" and assignee not in api.state.users:
        raise BadRequest(f"No user {assignee} in this tenant.", "assigneeId")
    allowed = space["meta"]["assignableRoles"]
    if not isinstance(roles, list) or not roles or any(r not in allowed for r in roles):
        raise BadRequest(
            f"roles must be a non-empty list of: {', '.join(allowed)} ({space['type']} space).",
            "roles",
        )
    now = iso(api.state.now())
    owner = _owner(api, principal)
    with api.state.lock:
        existing = api.state.stores.assignments.setdefault(space["id"], [])
        if any(a["assigneeId"] == assignee for a in existing):
            return error_response(
                "spaces",
                409,
                "SPACES-409",
                "Conflict",
                f"{assignee} is already assigned to this space.",
            )
        assignment = {
            "id": uuid.uuid4().hex[:24],
            "type": kind,
            "assigneeId": assignee,
            "roles": list(dict.fromkeys(roles)),
            "spaceId": space["id"],
            "tenantId": api.state.tenant_id,
            "createdAt": now,
            "createdBy": owner,
            "updatedAt": now,
            "updatedBy": owner,
        }
        existing.append(assignment)
    return json_response(201, _assignment_view(assignment, request.base_url))


@route("GET", "/api/v1/spaces/{spaceId}/assignments", "spaces")
def list_assignments(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    space = api.state.space_by_id.get(params["spaceId"])
    if space is None:
        return not_found("spaces", "Space")
    limit = _limit(request, 10)
    with api.state.lock:
        rows = list(api.state.stores.assignments.get(space["id"], []))
    wanted = request.param("assigneeId")
    if wanted:
        rows = [a for a in rows if a["assigneeId"] == wanted]
    # *Sandbox choice*: one page of up to `limit` (a space has few assignments).
    return json_response(
        200,
        {
            "data": [_assignment_view(a, request.base_url) for a in rows[:limit]],
            "meta": {"count": len(rows)},
            "links": {"self": {"href": request.self_url}},
        },
    )


# == data files ===================================================================================


def _data_file_view(api: Api, data_file: DataFile) -> dict[str, Any]:
    base_name = data_file.name.rsplit("/", 1)[-1]
    folder_path = data_file.name.rsplit("/", 1)[0] if "/" in data_file.name else None
    return {
        "id": data_file.id,
        "name": data_file.name,
        "baseName": base_name,
        "folderPath": folder_path,
        "folderId": None,
        "folder": False,
        "size": data_file.content.size,
        "appId": None,
        "ownerId": data_file.owner_id,
        "spaceId": data_file.space_id,
        "createdDate": iso(data_file.created_at),
        "modifiedDate": iso(data_file.modified_at),
        "contentUpdatedDate": iso(data_file.content_updated_at),
        "actions": ["read", "update", "delete", "list", "change_owner", "change_space"],
        "folderStats": dict.fromkeys(_FOLDER_STATS, 0),  # a file, not a folder
    }


def _df_error(status: int, title: str, detail: str) -> Response:
    return error_response("data-files", status, f"HTTP-{status}", title, detail)


def _multipart(request: Request) -> tuple[dict[str, Any], bytes | None]:
    """The `Json` part (parsed) and the `File` part (bytes, or None) of a multipart body."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("Send multipart/form-data with a Json part (and a File part).")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    try:
        meta = json.loads(fields.get("Json", b"{}") or b"{}")
    except json.JSONDecodeError:
        raise BadRequest("The Json part is not valid JSON.") from None
    if not isinstance(meta, dict):
        raise BadRequest("The Json part must be an object.")
    return meta, fields.get("File")


def _content_from(
    api: Api, meta: dict[str, Any], file_bytes: bytes | None
) -> Content | Response | None:
    temp_id = meta.get("tempContentFileId")
    if temp_id:
        with api.state.lock:
            upload = api.state.stores.uploads.get(str(temp_id))
        if upload is None or not upload.complete or api.state.now() >= upload.expires_at:
            return _df_error(400, "Bad Request", f"No complete temporary content {temp_id}.")
        return upload.content
    if file_bytes is None:
        return None
    with api.state.lock:
        path = api.state.stores.new_file()
    with open(path, "wb") as handle:
        handle.write(file_bytes)
    return Content(len(file_bytes), path)


@route("POST", "/api/v1/data-files", "data-files")
def create_data_file(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    meta, file_bytes = _multipart(request)
    name = meta.get("name")
    if not isinstance(name, str) or not name or not _FILE_NAME.match(name):
        return _df_error(400, "Bad Request", "Json.name is required and must be a valid name.")
    content = _content_from(api, meta, file_bytes)
    if isinstance(content, Response):
        return content
    if content is None:
        return _df_error(400, "Bad Request", "Send a File part or Json.tempContentFileId.")
    connection_id = meta.get("connectionId") or None
    with api.state.lock:
        if any(
            f.name == name and f.connection_id == connection_id
            for f in api.state.stores.data_files.values()
        ):
            return _df_error(409, "Conflict", f"A file named {name!r} already exists.")
        now = api.state.now()
        data_file = DataFile(
            id=str(uuid.uuid4()),
            name=name,
            owner_id=_owner(api, principal),
            space_id=None,
            connection_id=connection_id,
            content=content,
            created_at=now,
            modified_at=now,
            content_updated_at=now,
        )
        api.state.stores.data_files[data_file.id] = data_file
    view = _data_file_view(api, data_file)
    return json_response(201, view, [("Location", f"/api/v1/data-files/{data_file.id}")])


@route("PUT", "/api/v1/data-files/{id}", "data-files")
def replace_data_file(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    with api.state.lock:
        data_file = api.state.stores.data_files.get(params["id"])
    if data_file is None:
        return _df_error(404, "Not Found", "No data file with this id.")
    meta, file_bytes = _multipart(request)
    content = _content_from(api, meta, file_bytes)
    if isinstance(content, Response):
        return content
    now = api.state.now()
    with api.state.lock:
        new_name = meta.get("name")
        if isinstance(new_name, str) and new_name and new_name != data_file.name:
            if any(f.name == new_name for f in api.state.stores.data_files.values()):
                return _df_error(409, "Conflict", f"A file named {new_name!r} already exists.")
            data_file.name = new_name
        if content is not None:
            data_file.content = content
            data_file.content_updated_at = now
        data_file.modified_at = now
        data_file.owner_id = _owner(api, principal)
    return json_response(201, _data_file_view(api, data_file))


@route("GET", "/api/v1/data-files", "data-files")
def list_data_files(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    limit = _limit(request, 20, 1000)
    name = request.param("name")
    with api.state.lock:
        files = sorted(api.state.stores.data_files.values(), key=lambda f: (f.name, f.id))
    if name:
        files = [f for f in files if f.name == name]
    connection = request.param("connectionId")
    if connection:
        files = [f for f in files if f.connection_id == connection]
    try:
        start = int(request.param("page") or 0)
    except ValueError:
        return _df_error(400, "Bad Request", "page is not a valid cursor.")
    page = files[start : start + limit]
    following = start + limit < len(files)
    # data-files.json LinksResponse: self, next and prev are all present, href null when none.
    base = f"{request.base_url}{request.path}"
    query = "&".join(f"{k}={v}" for k, v in request.query_pairs if k != "page")
    prefix = f"{base}?{query}&" if query else f"{base}?"
    links = {
        "self": {"href": request.self_url},
        "next": {"href": f"{prefix}page={start + limit}" if following else None},
        "prev": {"href": f"{prefix}page={max(0, start - limit)}" if start else None},
    }
    return json_response(200, {"data": [_data_file_view(api, f) for f in page], "links": links})


@route("GET", "/api/v1/data-files/{id}", "data-files")
def get_data_file(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    with api.state.lock:
        data_file = api.state.stores.data_files.get(params["id"])
    if data_file is None:
        return _df_error(404, "Not Found", "No data file with this id.")
    return json_response(200, _data_file_view(api, data_file))


@route("DELETE", "/api/v1/data-files/{id}", "data-files")
def delete_data_file(
    api: Api, request: Request, principal: Principal | None, params: dict[str, str]
) -> Response:
    with api.state.lock:
        data_file = api.state.stores.data_files.pop(params["id"], None)
    if data_file is None:
        return _df_error(404, "Not Found", "No data file with this id.")
    return Response(204)
