"""`qlikm2m apps`: list and get apps; export, import, publish, republish, deploy and remove them.

Apps are items of type app; their app id is `resourceId`. Where an app or space is given, a name
works as well as an id (one match, or exit 5 listing the candidates).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from qlikm2m.commands.common import show_listing, show_resource
from qlikm2m.commands.delivery_options import ChunkOpt, YesOpt, chunk_size, confirm, progress_for
from qlikm2m.commands.items import SpaceOpt
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.spaces import LimitOpt, NdjsonOpt
from qlikm2m.commands.tenant_options import (
    TenantFlags,
    runtime_of,
    tenant_command,
)


def _complete_app_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from qlikm2m.commands.completion import complete_app_ids

    return complete_app_ids(ctx, incomplete)


class PublishData(StrEnum):
    source = "source"
    target = "target"


AppArg = Annotated[str, typer.Argument(metavar="APP", help="The app id (resourceId) or name.")]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="The name of the app it makes.", show_default=False)
]
DataOpt = Annotated[
    PublishData,
    typer.Option(
        "--data",
        help="source: the data of the app published; target: keep the published app's data.",
    ),
]
InSpaceOpt = Annotated[
    str | None,
    typer.Option(
        "--space", help="Look the app's name up in this space (name or id).", show_default=False
    ),
]
DEPLOY_EPILOG = (
    "Exit codes: 0 deployed (and reloaded); 2 bad arguments; 5 a space or app name matches "
    "nothing or several (candidates listed), or the tenant refused; 6 network; 8 the reload "
    "ended FAILED/CANCELED/EXCEEDED_LIMIT; 9 --timeout ran out waiting for the reload."
)


@dataclass(frozen=True, kw_only=True)
class AppLsOptions(TenantRun):
    space: str | None = None
    name: str | None = None
    limit: int | None = None
    ndjson: bool = False


def run_ls(options: AppLsOptions) -> None:
    """List apps (the table's APP ID is what `reload` and `apps get` take).

    ``options`` is the command line of ``ls``, parsed; nothing here knows Typer.
    """
    from qlikm2m.listing import apps_listing
    from qlikm2m.names import space_filter

    tenant = options.tenant
    space = options.space
    name = options.name
    limit = options.limit
    ndjson = options.ndjson
    show_listing(
        options.runtime,
        tenant,
        lambda client: apps_listing(space=space_filter(client, space), name=name),
        limit=limit,
        ndjson=ndjson,
    )


@tenant_command
def ls(
    ctx: typer.Context,
    tenant: TenantFlags,
    space: SpaceOpt = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only apps whose name contains TEXT.", show_default=False),
    ] = None,
    limit: LimitOpt = None,
    ndjson: NdjsonOpt = False,
) -> None:
    """List apps (the table's APP ID is what `reload` and `apps get` take).

    JSON output is the items API's records: the app id is `resourceId`, `id` is the item id.
    """
    run_ls(
        AppLsOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            space=space,
            name=name,
            limit=limit,
            ndjson=ndjson,
        )
    )


@dataclass(frozen=True, kw_only=True)
class AppGetOptions(TenantRun):
    app_id: str


def run_get(options: AppGetOptions) -> None:
    """Print one app's attributes and your privileges on it (GET /api/v1/apps/{appId}).

    ``options`` is the command line of ``get``, parsed; nothing here knows Typer.
    """
    from urllib.parse import quote

    from qlikm2m.errors import UsageError

    tenant = options.tenant
    app_id = options.app_id
    if not app_id.strip():
        raise UsageError("The app id is empty.", hint="List app ids with: qlikm2m apps ls")
    show_resource(options.runtime, tenant, f"/api/v1/apps/{quote(app_id.strip(), safe='')}")


@tenant_command
def get(
    ctx: typer.Context,
    tenant: TenantFlags,
    app_id: Annotated[
        str,
        typer.Argument(
            metavar="APP_ID",
            help="The app id (resourceId).",
            autocompletion=_complete_app_ids,
        ),
    ],
) -> None:
    """Print one app's attributes and your privileges on it (GET /api/v1/apps/{appId})."""
    run_get(AppGetOptions(runtime=runtime_of(ctx), tenant=tenant, app_id=app_id))


@dataclass(frozen=True, kw_only=True)
class AppExportOptions(TenantRun):
    app_ref: str
    out: Path
    no_data: bool = False
    overwrite: bool = False
    space: str | None = None


def run_export(options: AppExportOptions) -> None:
    """Export an app to a .qvf file, streamed to disk.

    ``options`` is the command line of ``export``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import export_app
    from qlikm2m.names import resolve_app, space_filter
    from qlikm2m.output import Output

    tenant = options.tenant
    app_ref = options.app_ref
    out = options.out
    no_data = options.no_data
    overwrite = options.overwrite
    space = options.space
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        found = resolve_app(client, app_ref, space_id=space_filter(client, space))
        output.emit(export_app(client, found.id, out, no_data=no_data, overwrite=overwrite))


@tenant_command
def export(
    ctx: typer.Context,
    tenant: TenantFlags,
    app_ref: AppArg,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-f", metavar="FILE", help="The .qvf file to write.", show_default=False
        ),
    ],
    no_data: Annotated[
        bool, typer.Option("--no-data", help="Export the app without its data.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
    space: InSpaceOpt = None,
) -> None:
    """Export an app to a .qvf file, streamed to disk.

    Prints {appId, file, bytes, sha256, noData}. The file appears only once complete.
    """
    run_export(
        AppExportOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            app_ref=app_ref,
            out=out,
            no_data=no_data,
            overwrite=overwrite,
            space=space,
        )
    )


@dataclass(frozen=True, kw_only=True)
class AppImportOptions(TenantRun):
    file: Path
    space: str | None = None
    name: str | None = None
    chunk: int | None = None


def run_import(options: AppImportOptions) -> None:
    """Import a .qvf file as a new app: a resumable (tus) upload, then POST /apps/import.

    ``options`` is the command line of ``import_``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import import_app
    from qlikm2m.names import resolve_space
    from qlikm2m.output import Output

    tenant = options.tenant
    file = options.file
    space = options.space
    name = options.name
    chunk = options.chunk
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        space_id = str(resolve_space(client, space)["id"]) if space else None
        record = import_app(
            client,
            file,
            space_id=space_id,
            name=name,
            chunk_size=chunk_size(chunk),
            progress=progress_for(runtime, f"uploading {file.name}"),
        )
        output.emit(record)


@tenant_command
def import_(
    ctx: typer.Context,
    tenant: TenantFlags,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The .qvf file to import.")],
    space: Annotated[
        str | None,
        typer.Option(
            "--space",
            help="The shared space to import into (name or id); default: personal.",
            show_default=False,
        ),
    ] = None,
    name: NameOpt = None,
    chunk: ChunkOpt = None,
) -> None:
    """Import a .qvf file as a new app: a resumable (tus) upload, then POST /apps/import.

    Prints {appId, name, spaceId, originAppId, publishTime, file, bytes, sha256, fileId,
    resumes, bytesSent}: bytesSent counts what went on the wire, re-sent bytes included.
    """
    run_import(
        AppImportOptions(
            runtime=runtime_of(ctx), tenant=tenant, file=file, space=space, name=name, chunk=chunk
        )
    )


@dataclass(frozen=True, kw_only=True)
class AppPublishOptions(TenantRun):
    app_ref: str
    to: str
    name: str | None = None
    data: PublishData = PublishData.source
    space: str | None = None


def run_publish(options: AppPublishOptions) -> None:
    """Publish an app to a managed space as a new published app (POST /apps/{id}/publish).

    ``options`` is the command line of ``publish``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import publish_app
    from qlikm2m.names import resolve_app, resolve_space, space_filter
    from qlikm2m.output import Output

    tenant = options.tenant
    app_ref = options.app_ref
    to = options.to
    name = options.name
    data = options.data
    space = options.space
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        found = resolve_app(client, app_ref, space_id=space_filter(client, space))
        managed = str(resolve_space(client, to)["id"])
        output.emit(publish_app(client, found.id, managed, name=name, data=data.value))


@tenant_command
def publish(
    ctx: typer.Context,
    tenant: TenantFlags,
    app_ref: AppArg,
    to: Annotated[
        str,
        typer.Option("--to", help="The managed space (name or id).", show_default=False),
    ],
    name: NameOpt = None,
    data: DataOpt = PublishData.source,
    space: InSpaceOpt = None,
) -> None:
    """Publish an app to a managed space as a new published app (POST /apps/{id}/publish).

    Prints {appId, name, spaceId, originAppId, publishTime} of the published app. To update
    an app published before, use `apps republish` (or `apps deploy`, which picks).
    """
    run_publish(
        AppPublishOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            app_ref=app_ref,
            to=to,
            name=name,
            data=data,
            space=space,
        )
    )


@dataclass(frozen=True, kw_only=True)
class AppRepublishOptions(TenantRun):
    app_ref: str
    target: str
    name: str | None = None
    data: PublishData = PublishData.source
    no_check_origin: bool = False
    space: str | None = None


def run_republish(options: AppRepublishOptions) -> None:
    """Republish an app over a published app (PUT /apps/{id}/publish).

    ``options`` is the command line of ``republish``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import republish_app
    from qlikm2m.names import resolve_app, space_filter
    from qlikm2m.output import Output

    tenant = options.tenant
    app_ref = options.app_ref
    target = options.target
    name = options.name
    data = options.data
    no_check_origin = options.no_check_origin
    space = options.space
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        found = resolve_app(client, app_ref, space_id=space_filter(client, space))
        record = republish_app(
            client,
            found.id,
            target.strip(),
            name=name,
            data=data.value,
            check_origin=not no_check_origin,
        )
        output.emit(record)


@tenant_command
def republish(
    ctx: typer.Context,
    tenant: TenantFlags,
    app_ref: AppArg,
    target: Annotated[
        str,
        typer.Option("--target", help="The published app to replace (id).", show_default=False),
    ],
    name: NameOpt = None,
    data: DataOpt = PublishData.source,
    no_check_origin: Annotated[
        bool,
        typer.Option(
            "--no-check-origin",
            help="Replace the target even if it was first published from another app "
            "(checkOriginAppId=false), e.g. from a fresh import.",
        ),
    ] = False,
    space: InSpaceOpt = None,
) -> None:
    """Republish an app over a published app (PUT /apps/{id}/publish).

    Prints {appId, name, spaceId, originAppId, publishTime} of the published app.
    """
    run_republish(
        AppRepublishOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            app_ref=app_ref,
            target=target,
            name=name,
            data=data,
            no_check_origin=no_check_origin,
            space=space,
        )
    )


@dataclass(frozen=True, kw_only=True)
class AppDeployOptions(TenantRun):
    file: Path | None = None
    to: str = ""
    from_app: str | None = None
    via: str | None = None
    name: str | None = None
    data: PublishData = PublishData.source
    keep_staging: bool = False
    reload: bool = False
    variables: list[str] | None = None
    weight: int | None = None
    timeout: str | None = None
    dry_run: bool = False
    chunk: int | None = None


def run_deploy(options: AppDeployOptions) -> None:
    """Deploy an app to a managed space, idempotently: create it the first time, republish over it the
    next times (found by name), optionally reload with variables, check it.

    ``options`` is the command line of ``deploy``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import DeployPlan
    from qlikm2m.delivery import deploy as deploy_app
    from qlikm2m.errors import UsageError
    from qlikm2m.names import resolve_app, space_filter
    from qlikm2m.output import Output
    from qlikm2m.reloads import (
        DEFAULT_TIMEOUT,
        PlainReporter,
        WaitOptions,
        check_weight,
        parse_duration,
        parse_variables,
    )

    tenant = options.tenant
    file = options.file
    to = options.to
    from_app = options.from_app
    via = options.via
    name = options.name
    data = options.data
    keep_staging = options.keep_staging
    reload = options.reload
    variables = options.variables
    weight = options.weight
    timeout = options.timeout
    dry_run = options.dry_run
    chunk = options.chunk
    runtime = options.runtime
    if not to.strip():
        raise UsageError("--to is required: the managed space to publish to.")
    if (file is None) == (from_app is None):
        raise UsageError("Give either a .qvf FILE or --app APP.")
    if not reload and (variables or weight is not None or timeout is not None):
        raise UsageError("--var, --weight and --timeout only apply with --reload.")
    parsed = parse_variables(variables or [])
    check_weight(weight)
    wait = WaitOptions(
        timeout=DEFAULT_TIMEOUT if timeout is None else parse_duration(timeout, option="--timeout")
    )
    output = Output(runtime)
    stderr = runtime.stderr
    with tenant.client(runtime) as client:
        app_id = None
        if from_app is not None:
            app_id = resolve_app(client, from_app, space_id=space_filter(client, via)).id
        plan = DeployPlan(
            to_space=to,
            file=file,
            app_id=app_id,
            staging_space=via if file is not None else None,
            name=name,
            data=data.value,
            keep_staging=keep_staging,
            reload=reload,
            variables=parsed,
            weight=weight,
            wait=wait,
            chunk_size=chunk_size(chunk),
        )
        record, error = deploy_app(
            client,
            plan,
            dry_run=dry_run,
            progress=progress_for(runtime, f"uploading {file.name}" if file else "uploading"),
            reporter=PlainReporter(stderr) if reload else None,
            note=lambda line: print(f"deploy: {line}", file=stderr, flush=True),
        )
    output.emit(record)
    if error is not None:
        raise error


@tenant_command
def deploy(
    ctx: typer.Context,
    tenant: TenantFlags,
    file: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="A .qvf file to deploy (or use --app)."),
    ] = None,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="The managed space to publish to (name or id).", show_default=False
        ),
    ] = "",
    from_app: Annotated[
        str | None,
        typer.Option(
            "--app", help="Deploy this app (id or name) instead of a file.", show_default=False
        ),
    ] = None,
    via: Annotated[
        str | None,
        typer.Option(
            "--via",
            help="With a file: the shared space it is imported into first (name or id); "
            "default: personal. With --app: where to look its name up.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The published app's name, how it is found again (default: the file name "
            "without .qvf, or the app's name).",
            show_default=False,
        ),
    ] = None,
    data: DataOpt = PublishData.source,
    keep_staging: Annotated[
        bool,
        typer.Option("--keep-staging", help="Keep the imported copy in --via (default: removed)."),
    ] = False,
    reload: Annotated[
        bool, typer.Option("--reload", help="Reload the published app and wait for it.")
    ] = False,
    variables: Annotated[
        list[str] | None,
        typer.Option(
            "--var",
            metavar="NAME=VALUE",
            help="With --reload: a reload-time variable (repeatable, at most 20).",
            show_default=False,
        ),
    ] = None,
    weight: Annotated[
        int | None,
        typer.Option(
            "--weight", help="With --reload: 1-10, higher runs sooner.", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            help="With --reload: give up waiting after this long (default 30m).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only read: print what it would do.")
    ] = False,
    chunk: ChunkOpt = None,
) -> None:
    """Deploy an app to a managed space, idempotently: create it the first time, republish
    over it the next times (found by name), optionally reload with variables, check it.

    Prints one record: {action: created|updated, dryRun, name, source {file, bytes, sha256,
    appId}, stagingSpaceId, stagingRemoved, spaceId, appId, originAppId, reload, checked}.
    Running it twice leaves one published app.
    """
    run_deploy(
        AppDeployOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            file=file,
            to=to,
            from_app=from_app,
            via=via,
            name=name,
            data=data,
            keep_staging=keep_staging,
            reload=reload,
            variables=variables,
            weight=weight,
            timeout=timeout,
            dry_run=dry_run,
            chunk=chunk,
        )
    )


@dataclass(frozen=True, kw_only=True)
class AppRmOptions(TenantRun):
    app_ref: str
    yes: bool = False
    space: str | None = None


def run_rm(options: AppRmOptions) -> None:
    """Remove an app (DELETE /apps/{appId}); asks first at a terminal, --yes in scripts.

    ``options`` is the command line of ``rm``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import remove_app
    from qlikm2m.names import resolve_app, space_filter
    from qlikm2m.output import Output

    tenant = options.tenant
    app_ref = options.app_ref
    yes = options.yes
    space = options.space
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        found = resolve_app(client, app_ref, space_id=space_filter(client, space))
        confirm(runtime, f"Remove app {found.name!r} ({found.id})?", yes=yes)
        output.emit(remove_app(client, found))


@tenant_command
def rm(
    ctx: typer.Context,
    tenant: TenantFlags,
    app_ref: AppArg,
    yes: YesOpt = False,
    space: InSpaceOpt = None,
) -> None:
    """Remove an app (DELETE /apps/{appId}); asks first at a terminal, --yes in scripts.

    Prints {appId, name, spaceId} of the removed app.
    """
    run_rm(
        AppRmOptions(runtime=runtime_of(ctx), tenant=tenant, app_ref=app_ref, yes=yes, space=space)
    )


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Qlik Sense apps.", no_args_is_help=True)

    app.command("ls")(ls)
    app.command("get")(get)
    app.command("export")(export)
    app.command("import")(import_)
    app.command("publish")(publish)
    app.command("republish")(republish)
    app.command("deploy", epilog=DEPLOY_EPILOG)(deploy)
    app.command("rm")(rm)

    root.add_typer(app, name="apps")
