"""The ``modelgate`` command: serve, config check, fake-upstream; db, keys, teams, usage (``admin/commands.py``),
endpoints (``admin/endpoint_commands.py``)."""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from modelgate.admin.commands import COMMANDS as ADMIN_COMMANDS
from modelgate.admin.endpoint_commands import endpoints_group
from modelgate.admin.user_commands import users_group
from modelgate.config import Config, ConfigError, load_config


def _load_or_exit(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as e:
        click.echo(f"error: invalid configuration\n{e}", err=True)
        sys.exit(2)


@click.group()
@click.version_option(package_name="modelgate")
def main() -> None:
    """modelgate — one gateway for the Anthropic, OpenAI and Gemini wire protocols."""


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default 8080).")
@click.option("--workers", type=int, help="Worker processes (default 1; more need --redis-url).")
@click.option("--database-url", help="Keys, teams and ledger (default: $MODELGATE_DATABASE_URL, else SQLite).")
@click.option("--redis-url", help="Counters shared by workers and instances (default: $MODELGATE_REDIS_URL).")
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log lines (default: server.log_format).")
def serve(
    config_path: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    database_url: str | None,
    redis_url: str | None,
    log_level: str,
    log_format: str | None,
) -> None:
    """Start the gateway."""
    import uvicorn

    from modelgate.app import CONFIG_ENV, Gateway, ensure_master_key
    from modelgate.observability.metrics import MULTIPROC_ENV

    config = _load_or_exit(config_path)
    # The options reach every worker through the environment, as the config file's path does.
    for value, var in ((database_url, "MODELGATE_DATABASE_URL"), (redis_url, "MODELGATE_REDIS_URL")):
        if value:
            os.environ[var] = value
    if database_url or redis_url:
        config = _load_or_exit(config_path)
    worker_count = workers or config.server.workers
    if worker_count > 1 and not config.server.redis_url:
        click.echo(
            f"error: --workers {worker_count} needs shared counters: limits and budgets kept in each process "
            "would let a key spend its limit once per worker. Give --redis-url (or $MODELGATE_REDIS_URL), "
            "or run one worker.",
            err=True,
        )
        sys.exit(2)
    try:
        Gateway(config)  # build once to fail fast on anything the schema cannot see
    except ValueError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    server = config.server
    key_file = Path(server.data_dir) / "master_key"
    fresh = not config.master_key and not key_file.exists()
    key = ensure_master_key(config)
    if config.master_key:
        click.echo("modelgate: clients authenticate with the master key ($MODELGATE_MASTER_KEY / config)")
    elif fresh:
        click.echo(f"modelgate: generated a master key (kept in {key_file}): {key}")
    else:
        click.echo(f"modelgate: clients authenticate with the master key kept in {key_file}")
    if not config.providers:
        click.echo(
            "modelgate: no provider configured "
            "(set ANTHROPIC_API_KEY / OPENAI_API_KEY / GEMINI_API_KEY or use --config)"
        )
    if config_path:
        os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
    bound_host, bound_port = host or server.host, port if port is not None else server.port
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(
        f"modelgate: the web portal is at {(server.public_url or f'http://{shown_host}:{bound_port}').rstrip('/')}/portal"
    )
    if worker_count > 1 and not os.environ.get(MULTIPROC_ENV):
        # each worker writes its metrics there and a scrape adds them up; fresh, so no value
        # of a previous run is counted again
        metrics_dir = Path(server.data_dir) / "prometheus"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="run-", dir=metrics_dir)
    uvicorn.run(
        "modelgate.app:create_app",
        factory=True,
        host=bound_host,
        port=bound_port,
        workers=worker_count,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_level=log_level,
        log_config=log_config(log_level, log_format or server.log_format),
        access_log=False,
        # X-Forwarded-For is only trustworthy behind a known proxy: never by default.
        proxy_headers=False,
        timeout_graceful_shutdown=30,
    )


def log_config(level: str, log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging config, plus the gateway's own loggers (``modelgate.*``: the request
    log line, tracebacks of unexpected errors) on stderr at ``level``, as text or JSON
    (:mod:`modelgate.observability.logs`), each line with its request's id."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if log_format == "json":
        config["formatters"]["modelgate"] = {"()": "modelgate.observability.logs.JSONFormatter"}
    else:
        config["formatters"]["modelgate"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config.setdefault("filters", {})["request_id"] = {"()": "modelgate.observability.logs.RequestIdFilter"}
    config["handlers"]["modelgate"] = {
        "class": "logging.StreamHandler",
        "formatter": "modelgate",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["modelgate"] = {"handlers": ["modelgate"], "level": level.upper(), "propagate": False}
    return config


@main.group("config")
def config_group() -> None:
    """Work with configuration files."""


@config_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def config_check(path: str) -> None:
    """Validate PATH and report every problem with its field path."""
    from modelgate.providers import PROVIDER_TYPES

    config = _load_or_exit(path)
    unsupported = [p for p in config.providers if p.type not in PROVIDER_TYPES]
    for p in unsupported:
        click.echo(f"{path}: providers.{config.providers.index(p)}.type: {p.type} is not supported yet", err=True)
    if unsupported:
        sys.exit(2)
    click.echo(f"{path}: ok ({len(config.providers)} providers, {len(config.models)} models)")


@main.command("fake-upstream")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9090, show_default=True)
@click.option("--require-key", default=None, help="Only accept this API key.")
def fake_upstream(host: str, port: int, require_key: str | None) -> None:
    """Run the scriptable emulator of the provider APIs (for demos and tests)."""
    from modelgate.testing.fake_upstream import serve as serve_fake

    serve_fake(host, port, require_key)


for _command in (*ADMIN_COMMANDS, endpoints_group, users_group):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
