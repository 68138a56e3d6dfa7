"""`qlikm2m data-files`: upload (or replace), list and remove data files (/api/v1/data-files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from qlikm2m.commands.delivery_options import ChunkOpt, YesOpt, chunk_size, confirm, progress_for
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.spaces import LimitOpt, NdjsonOpt
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command


@dataclass(frozen=True, kw_only=True)
class DataFileLsOptions(TenantRun):
    name: str | None = None
    limit: int | None = None
    ndjson: bool = False


def run_ls(options: DataFileLsOptions) -> None:
    """List data files: a table on a terminal, a JSON array (or NDJSON) for scripts.

    ``options`` is the command line of ``ls``, parsed; nothing here knows Typer.
    """
    from qlikm2m.listing import Column, Listing, check_limit, emit_listing, fetch

    tenant = options.tenant
    name = options.name
    limit = options.limit
    ndjson = options.ndjson
    runtime = options.runtime
    check_limit(limit)
    params = {"name": name} if name else {}
    listing = Listing(
        "data files",
        "/api/v1/data-files",
        params,
        (
            Column("NAME", lambda r: str(r.get("name") or "")),
            Column("ID", lambda r: str(r.get("id") or "")),
            Column("SIZE", lambda r: str(r.get("size") or 0)),
            Column("MODIFIED", lambda r: str(r.get("modifiedDate") or "")),
        ),
    )
    with tenant.client(runtime) as client:
        emit_listing(runtime, listing, fetch(client, listing, limit), ndjson=ndjson)


@tenant_command
def ls(
    ctx: typer.Context,
    tenant: TenantFlags,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only the file of this name.", show_default=False),
    ] = None,
    limit: LimitOpt = None,
    ndjson: NdjsonOpt = False,
) -> None:
    """List data files: a table on a terminal, a JSON array (or NDJSON) for scripts."""
    run_ls(
        DataFileLsOptions(
            runtime=runtime_of(ctx), tenant=tenant, name=name, limit=limit, ndjson=ndjson
        )
    )


@dataclass(frozen=True, kw_only=True)
class DataFileUploadOptions(TenantRun):
    file: Path
    name: str | None = None
    replace: bool = False
    connection: str | None = None
    chunk: int | None = None


def run_upload(options: DataFileUploadOptions) -> None:
    """Upload a data file (resumable tus upload, then POST /api/v1/data-files).

    ``options`` is the command line of ``upload``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import upload_data_file
    from qlikm2m.output import Output

    tenant = options.tenant
    file = options.file
    name = options.name
    replace = options.replace
    connection = options.connection
    chunk = options.chunk
    runtime = options.runtime
    output = Output(runtime)
    with tenant.client(runtime) as client:
        record = upload_data_file(
            client,
            file,
            name=name,
            replace=replace,
            connection_id=connection,
            chunk_size=chunk_size(chunk),
            progress=progress_for(runtime, f"uploading {file.name}"),
        )
        output.emit(record)


@tenant_command
def upload(
    ctx: typer.Context,
    tenant: TenantFlags,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The file to upload.")],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Its name on the tenant (default: the file's name).",
            show_default=False,
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a data file of the same name.")
    ] = False,
    connection: Annotated[
        str | None,
        typer.Option(
            "--connection-id", help="The DataFiles connection (a space's).", show_default=False
        ),
    ] = None,
    chunk: ChunkOpt = None,
) -> None:
    """Upload a data file (resumable tus upload, then POST /api/v1/data-files).

    Prints {action: created|replaced, sha256, dataFile}. An existing name without --replace
    is exit 5.
    """
    run_upload(
        DataFileUploadOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            file=file,
            name=name,
            replace=replace,
            connection=connection,
            chunk=chunk,
        )
    )


@dataclass(frozen=True, kw_only=True)
class DataFileRmOptions(TenantRun):
    file: str
    yes: bool = False


def run_rm(options: DataFileRmOptions) -> None:
    """Remove a data file (DELETE /api/v1/data-files/{id}); asks first at a terminal.

    ``options`` is the command line of ``rm``, parsed; nothing here knows Typer.
    """
    from qlikm2m.delivery import remove_data_file
    from qlikm2m.output import Output

    tenant = options.tenant
    file = options.file
    yes = options.yes
    runtime = options.runtime
    output = Output(runtime)
    confirm(runtime, f"Remove data file {file!r}?", yes=yes)
    with tenant.client(runtime) as client:
        output.emit(remove_data_file(client, file.strip()))


@tenant_command
def rm(
    ctx: typer.Context,
    tenant: TenantFlags,
    file: Annotated[str, typer.Argument(metavar="FILE", help="The data file's name or id.")],
    yes: YesOpt = False,
) -> None:
    """Remove a data file (DELETE /api/v1/data-files/{id}); asks first at a terminal.

    Prints {id, name} of the removed file.
    """
    run_rm(DataFileRmOptions(runtime=runtime_of(ctx), tenant=tenant, file=file, yes=yes))


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Data files (CSV, QVD, ...) of the tenant.", no_args_is_help=True)

    app.command("ls")(ls)
    app.command("upload")(upload)
    app.command("rm")(rm)

    root.add_typer(app, name="data-files")
