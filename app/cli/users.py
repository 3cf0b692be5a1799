"""`vigil user create`, `vigil device create` and `vigil token revoke`."""

import sys
import uuid
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli.common import CLI_ACTOR, database_errors, fail
from app.permissions import Role

user_cli = typer.Typer(help="Manage user accounts.")
device_cli = typer.Typer(help="Register bedside devices (tablets) and issue their tokens.")
token_cli = typer.Typer(help="Revoke access tokens (sign-ins, API and device tokens).")


@user_cli.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name", show_default=False)],
    name: Annotated[
        str, typer.Option("--name", help="Printed name (shown on signatures)", show_default=False)
    ],
    role: Annotated[
        Role, typer.Option("--role", help="Role", case_sensitive=False, show_default=False)
    ],
    site: Annotated[
        list[str] | None,
        typer.Option("--site", help="Code of a site the user works at (repeat for several)"),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Code of the study the --site codes belong to"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin, no prompt")
    ] = False,
) -> None:
    """Create a user; prompts for the password twice (hidden) unless --password-stdin."""
    from app.db import unit_of_work
    from app.users.service import create_user

    site_codes = site or []
    if study is not None and not site_codes:
        fail("--study only says which study the --site codes belong to; give --site too")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("no password on stdin")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    with database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        site_ids = site_ids_of_codes(session, site_codes, study)
        user = create_user(
            session,
            username=username,
            display_name=name,
            role=role,
            password=password,
            site_ids=site_ids,
        )
    sites = f" at sites {', '.join(site_codes)}" if site_codes else ""
    typer.echo(f"created user {user.username} ({user.role}){sites} id {user.id}")


def site_ids_of_codes(
    session: Session, site_codes: list[str], study_code: str | None
) -> list[uuid.UUID]:
    """Site codes are unique within a study: resolve them, asking for --study when ambiguous."""
    from app.models import Site, Study

    ids: list[uuid.UUID] = []
    for code in site_codes:
        query = select(Site.id, Study.code).join(Study, Site.study_id == Study.id)
        query = query.where(Site.code == code)
        if study_code is not None:
            query = query.where(Study.code == study_code)
        matches = session.execute(query).all()
        if not matches:
            in_study = f" in study {study_code}" if study_code else ""
            fail(f"no site {code!r}{in_study}")
        if len(matches) > 1:
            studies = ", ".join(sorted(study for _, study in matches))
            fail(f"site code {code!r} exists in studies {studies}; say which with --study")
        ids.append(matches[0][0])
    return ids


@device_cli.command("create")
def device_create(
    name: Annotated[
        str, typer.Argument(help="Unique name of the tablet, e.g. tablet-s01-3", show_default=False)
    ],
    site: Annotated[
        str, typer.Option("--site", help="Code of the site the device works at", show_default=False)
    ],
    study: Annotated[
        str | None,
        typer.Option("--study", help="Code of the study the --site code belongs to"),
    ] = None,
) -> None:
    """Register a device at one site and print its token, this once (only a hash is kept)."""
    from pydantic import TypeAdapter

    from app.db import unit_of_work
    from app.users.schemas import DeviceName
    from app.users.service import create_device

    try:
        name = TypeAdapter(DeviceName).validate_python(name)
    except ValidationError:
        fail(f"device name {name!r}: use 2-64 letters, digits, '.', '_' or '-'")
    with database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        [site_id] = site_ids_of_codes(session, [site], study)
        device, token = create_device(session, name, site_id)
    typer.echo(f"created device {device.username} at site {site} id {device.id}")
    typer.echo("its token follows; it is shown this once, so put it on the device now:", err=True)
    typer.echo(token)


@token_cli.command("revoke")
def token_revoke(
    token_id: Annotated[
        uuid.UUID, typer.Argument(help="Id of the token (not the token itself)", show_default=False)
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is revoked (audited)", show_default=False)
    ],
) -> None:
    """Revoke a token now; requests made with it are refused from then on."""
    from app.auth.service import get_token, revoke
    from app.db import unit_of_work
    from app.models import User

    reason = reason.strip()
    if len(reason) < 3:
        fail("give a reason of 3 characters or more")
    with database_errors(), unit_of_work(actor=CLI_ACTOR) as session:
        token = revoke(session, get_token(session, token_id), reason)
        owner = session.get(User, token.user_id)
        username = owner.username if owner else "?"
    label = f" ({token.label})" if token.label else ""
    typer.echo(f"revoked {token.kind} token {token.id}{label} of {username}")
