"""The `crossborder` command. Commands are thin: parse, call a service, print.

Usage errors print one line and exit 2; invalid configuration exits 78 (EX_CONFIG);
a refused operation (unknown authority, duplicate user, ...) prints one line and exits 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from typer import Abort, Exit

try:  # recent typer vendors click; older releases use the click package itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import (  # type: ignore[assignment,no-redef,unused-ignore]
        ClickException,
        NoArgsIsHelpError,
        UsageError,
    )

from crossborder.cli import context
from crossborder.cli.evidence import evidence_app, node_app
from crossborder.cli.federation import inbox_app, outbox_app, peer_app, rotate_keys
from crossborder.cli.identifiers import identifiers_app
from crossborder.cli.intel import intel_app
from crossborder.cli.matching import matching_app
from crossborder.core.errors import DomainError
from crossborder.settings import ConfigError

app = typer.Typer(
    name="crossborder",
    help="crossborder: the node an authority runs for cross-border cooperation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for machines.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit chain.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(evidence_app, name="evidence")
app.add_typer(node_app, name="node")
app.add_typer(peer_app, name="peer")
app.add_typer(outbox_app, name="outbox")
app.add_typer(inbox_app, name="inbox")
app.add_typer(identifiers_app, name="identifiers")
app.add_typer(intel_app, name="intel")
app.add_typer(matching_app, name="matching")
node_app.command("rotate-keys")(rotate_keys)


@app.command()
def init() -> None:
    """Create the data directory and secret key, and migrate the database."""
    settings = context.settings()
    context.init_node(settings)
    typer.echo(f"initialised {settings.data_dir.resolve()} ({context.safe_url(settings)})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port.")] = None,
) -> None:
    """Serve the web interface, the JSON API and (later) TAXII and the federation inbox."""
    import uvicorn

    from crossborder.app import create_app

    settings = context.settings()
    context.require_migrated(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run one sweep and exit.")] = False,
    interval: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="Seconds between sweeps.")
    ] = 30.0,
) -> None:
    """Run the background sweeps (expired sessions, old login attempts, ...)."""
    from crossborder import worker as worker_mod

    settings = context.settings()
    context.require_migrated(settings)
    worker_mod.run(settings, once=once, interval=interval, echo=typer.echo)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from crossborder.db.migrate import upgrade

    settings = context.settings()
    context.ensure_dir(settings)
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision} ({context.safe_url(settings)})")


@db_app.command("current")
def db_current() -> None:
    """Print the database's current migration."""
    from crossborder.db.migrate import current_revision, head_revision
    from crossborder.db.session import make_engine

    settings = context.settings()
    engine = make_engine(settings.resolved_database_url)
    current = current_revision(engine)
    engine.dispose()
    head = head_revision(settings.resolved_database_url)
    typer.echo(f"current {current or '-'}; latest {head}")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    authority: Annotated[str, typer.Option(help="Authority id or acronym.")],
    role: Annotated[
        list[str],
        typer.Option(help="Role (repeat): officer, supervisor, analyst, auditor, administrator."),
    ],
    display_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user bound to one authority."""
    from crossborder.cli import commands

    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    user_id = commands.add_user(
        context.settings(),
        username=username,
        authority=authority,
        roles=role,
        password=password,
        display_name=display_name,
        email=email,
    )
    typer.echo(f"user {username} created (id {user_id})")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="The user the token acts for.")],
    name: Annotated[str, typer.Option(help="What the token is for.")],
    scope: Annotated[list[str], typer.Option(help="Scope (repeat), e.g. directory:read.")],
    days: Annotated[int, typer.Option(min=1, max=365, help="Days until it expires.")] = 90,
) -> None:
    """Create an API token; it is printed once and stored only hashed."""
    from crossborder.cli import commands

    raw = commands.create_token(
        context.settings(), username=user, name=name, scopes=scope, days=days
    )
    typer.echo(raw)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the whole audit chain; print OK or the first event where it breaks."""
    from crossborder.cli import commands

    result = commands.verify_audit(context.settings())
    typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


demo_app = typer.Typer(help="Demo data and demonstrations.", invoke_without_command=True)
app.add_typer(demo_app, name="demo")


@demo_app.callback()
def demo(ctx: typer.Context) -> None:
    """Load the demo data (once) and print the demo logins."""
    if ctx.invoked_subcommand is not None:
        return
    from crossborder.demo import loader

    settings = context.settings()
    context.init_node(settings)
    created = loader.load(settings)
    typer.echo(loader.summary(created))


@demo_app.command("federation")
def demo_federation(
    base_dir: Annotated[Path, typer.Option(help="Where the three nodes keep their data.")] = Path(
        "var/federation-demo"
    ),
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the nodes up to look around.")
    ] = False,
) -> None:
    """Start Viet Nam's, Australia's and Morocco's nodes on loopback and walk a preservation
    request between two of them; exit 1 if the nodes end up disagreeing."""
    from crossborder.demo import federation

    code = federation.run(base_dir.resolve(), echo=typer.echo, keep_running=keep_running)
    if code:
        raise typer.Exit(code)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"crossborder: error: {message}", err=True)
    raise SystemExit(code)


def main() -> None:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="crossborder", standalone_mode=False)
    except Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Abort:
        _fail("aborted", 1)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        raise SystemExit(2) from None
    except UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(exc.format_message().replace("\n", " ") + hint, 2)
    except ClickException as exc:
        _fail(exc.format_message().replace("\n", " "), 1)
    except ConfigError as exc:
        _fail(str(exc), 78)
    except DomainError as exc:
        _fail(exc.detail, 1)
    # Without standalone mode, `typer.Exit(n)` comes back as the return value.
    if isinstance(code, int) and code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
