"""Operator commands: `python -m app.cli migrate | create-api-key | seed-demo | serve | worker`."""
import asyncio
import sys

import click

from app.core.db import normalize_url
from app.core.settings import get_settings


def run_migrations(database_url: str | None = None) -> None:
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["database_url"] = normalize_url(database_url or get_settings().database_url)
    command.upgrade(cfg, "head")


@click.group()
def cli() -> None:
    """Unified-commerce backend operations."""


@cli.command()
def migrate() -> None:
    """Bring the database to the latest migration."""
    run_migrations()
    click.echo("database is at the latest migration")


@cli.command("create-api-key")
@click.option("--role", required=True, type=click.Choice(["admin", "storefront", "pos", "marketplace", "dropshipper"]))
@click.option("--name", required=True)
@click.option("--channel", default=None, help="channel code (required for storefront, marketplace and pos: its pos channel)")
@click.option("--location", default=None, help="location code (required for pos: its store; dropshipper: its partner location)")
def create_api_key(role: str, name: str, channel: str | None, location: str | None) -> None:
    """Create an API key; the secret is the last line printed."""
    from app.auth.service import create_api_key as create
    from app.core.db import dispose_engine, unit_of_work
    from app.core.errors import ApiError

    async def go():
        try:
            async with unit_of_work() as session:
                return await create(session, name=name, role=role, channel=channel, location=location)
        finally:
            await dispose_engine()

    try:
        key, secret = asyncio.run(go())
    except ApiError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        sys.exit(2)
    click.echo(f"created {key.role} key {key.id} ({key.name})")
    click.echo(secret)


@cli.command("seed-demo")
def seed_demo() -> None:
    """Load a small demo retailer (idempotent: running it twice changes nothing)."""
    from app.seed import seed

    summary = asyncio.run(seed())
    click.echo(summary)


@cli.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
@click.option("--workers", default=1, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API with uvicorn. The port is bound first: when it is taken the command stops at
    once with a message (exit 1), instead of starting the app (and its inline worker) for nothing."""
    import os

    import uvicorn

    sock = bind_or_exit(host, port)
    # the workers read it: with more than one, rate limits default to the shared database
    os.environ["WEB_CONCURRENCY"] = str(workers)
    if workers == 1:
        uvicorn.Server(uvicorn.Config("app.main:app", host=host, port=port, log_level="info")).run(sockets=[sock])
    else:
        sock.close()  # uvicorn's supervisor binds it again for its worker processes
        uvicorn.run("app.main:app", host=host, port=port, workers=workers, log_level="info")


def bind_or_exit(host: str, port: int):
    import socket
    import sys

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        sys.exit(f"cannot listen on {host}:{port}: {exc.strerror or exc}. Is the API (or something else) already "
                 f"running there? Stop it, or use another port (PORT=8001 bash scripts/dev.sh, or --port 8001).")
    return sock


@cli.command()
@click.option("--once", is_flag=True, help="run one round of background work and exit")
def worker(once: bool) -> None:
    """Run background work: webhook delivery, expiries, clean-up."""
    from app import worker as w

    asyncio.run(w.run(once=once))


if __name__ == "__main__":
    cli()
