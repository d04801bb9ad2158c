"""``perseus ui``: one deployment driven from Locust's web UI, with a perseus page of exact SLA statistics.

This module stays light (no Locust import): the CLI imports ``ui_command`` at start-up, and importing
Locust monkey-patches the process for gevent, so ``perseus.ui.app`` is imported only when the command runs.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perseus.errors import InputError, PerseusError, ServerError, did_you_mean
from perseus.exits import EXIT_INTERRUPTED, command_line, exit_for, terminate_as_interrupt
from perseus.plan import Deployment, group, on_each_server, scenario_for, shared, solo
from perseus.scenario import Scenario

if TYPE_CHECKING:
    from perseus.checks import Prepared

USER_ENV = "PERSEUS_UI_USER"
PASSWORD_ENV = "PERSEUS_UI_PASSWORD"  # noqa: S105 - the name of a variable, not a password
DEFAULT_WEB_PORT = 8089


@dataclass(frozen=True)
class Credentials:
    """The login that Locust's web UI asks for when it listens beyond loopback."""

    user: str
    password: str = field(repr=False)

    def check(self, user: str, password: str) -> bool:
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_password


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name: treat as reachable from outside


def credentials_for(web_host: str, environ=os.environ):
    """None on loopback; otherwise the login from the environment, or an InputError (exit 2)."""
    if is_loopback(web_host):
        return None
    user, password = environ.get(USER_ENV, ""), environ.get(PASSWORD_ENV, "")
    if not (user and password):
        where = web_host or "every interface"
        raise InputError(
            "--web-host",
            None,
            f"serving the UI on {where} (not loopback) needs a login: set {USER_ENV} and {PASSWORD_ENV}",
        )
    return Credentials(user, password)


def port_problem(host_: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (checked before the slow server start), or None."""
    family = socket.AF_INET6 if ":" in host_ else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gevent's WSGIServer does
        try:
            s.bind((host_, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def ui_command(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario TOML file, e.g. scenarios/smoke.toml.")],
    deployment: Annotated[
        str,
        typer.Option(
            help="Which deployment to serve and drive: 'shared', 'solo-<tenant>' or a [[deployments]] group; with"
            " [run] servers, one of them on one kind, e.g. 'shared@mlserver'."
        ),
    ] = "shared",
    web_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web UI.")] = DEFAULT_WEB_PORT,
    web_host: Annotated[
        str,
        typer.Option(
            help=f"Address of the web UI. Anything but loopback needs {USER_ENV} and {PASSWORD_ENV} (Locust's login)."
        ),
    ] = "127.0.0.1",
    out: Annotated[
        Path | None, typer.Option(help="Run folder to create (absent or empty). Default: results/<name>-<UTC time>/.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Measured seconds after Start (overrides run.duration_s).")
    ] = None,
    warmup: Annotated[float | None, typer.Option(help="Warm-up seconds after Start (overrides run.warmup_s).")] = None,
) -> None:
    """Serve one deployment and drive it from Locust's web UI, with a live perseus SLA page.

    Starts tritonserver (loopback) and Locust's web UI with one user per tenant. Start in the UI
    replays the tenants' open-loop schedules, as `perseus run` does; the test ends after the
    scenario's duration or when stopped (Stop in the UI, Ctrl-C). Then the run folder gets
    requests.parquet, summary.csv and report.html; the perseus tab (/perseus) links the report.
    Ctrl-C quits. The last line on stdout is the run folder. Exit codes: 0 done, 1 failed,
    2 bad input, 130 interrupted during a measurement (or closed before any).
    """
    # Imported when the command runs, as the CLI's other commands do: `perseus --help` stays quick.
    from perseus import checks
    from perseus.display import RunDisplay

    signal.signal(signal.SIGTERM, terminate_as_interrupt)
    try:
        credentials = credentials_for(web_host)
        problem = port_problem(web_host, web_port)
        if problem:
            raise InputError("--web-port", None, f"cannot listen on {web_host}:{web_port}: {problem}")
        checks.check_out(out)
        scenario, raw = checks.load_scenario(scenario_file, duration_s=duration, warmup_s=warmup)
        chosen = _deployment(scenario, deployment)
        # The same checks as `perseus run` (remote, docker, models, price, GPU), then the models this
        # deployment needs are built.
        ready = checks.check_and_build(scenario_file, scenario, raw, tenants=list(chosen.tenants), say=RunDisplay.say)
        status, run_dir = _serve(ready, chosen, out, web_host, web_port, credentials)
    except PerseusError as exc:
        typer.echo(f"perseus: {exc}", err=True)
        run_dir = getattr(exc, "run_dir", None)
        if run_dir is not None:
            typer.echo(str(run_dir))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("perseus: interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(str(run_dir))
    raise exit_for(status)


def _deployment(scenario: Scenario, name: str) -> Deployment:
    """The deployment the user named: a [[deployments]] group, the shared server, or a tenant's solo baseline;
    with ``[run] servers``, each of them on one kind, as `perseus run` names them (``shared@mlserver``)."""
    candidates = on_each_server(
        scenario,
        [
            *(group(scenario, g.name) for g in scenario.deployments),
            shared(scenario),
            *(solo(t.name) for t in scenario.tenants),
        ],
    )
    for candidate in candidates:
        if candidate.name == name:
            return candidate
    choices = ", ".join(c.name for c in candidates)
    raise InputError(
        "--deployment",
        None,
        f"'{name}' is not a deployment of this scenario (choose: {choices})"
        + did_you_mean(name, [c.name for c in candidates]),
    )


def _serve(ready: Prepared, chosen: Deployment, out, web_host, web_port, credentials):
    """The run folder, as `perseus run` makes it; then the session until Ctrl-C."""
    from perseus import checks
    from perseus.run import new_manifest, save_inputs
    from perseus.ui import app  # deferred: imports Locust (gevent monkey-patching), only once checks passed

    run_dir = checks.prepare_run_dir(out, ready.scenario.name)
    manifest = new_manifest(ready, [chosen], command_line())
    save_inputs(run_dir, ready.file, manifest)
    session = app.UiSession(
        scenario_for(ready.scenario, chosen),
        chosen,
        ready.repository,
        run_dir,
        manifest,
        gpu=ready.use_gpu,
        web_host=web_host,
        web_port=web_port,
        credentials=credentials,
    )
    try:
        session.start()
    except ServerError as exc:
        session.fail_startup(str(exc), exc.log_tail or None)
        raise _Failed(exc, run_dir) from None
    except BaseException:
        session.shutdown()
        raise
    url = app.url_of(web_host, web_port)
    typer.echo(f"perseus ui: Locust web UI at {url}/  ·  perseus page: {url}/perseus", err=True)
    typer.echo(f"perseus ui: run folder {run_dir}  ·  Ctrl-C to quit", err=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGTERM: the normal way to quit
        session.wait()
    status = session.shutdown()
    if session.report_error:
        typer.echo(f"perseus ui: {status}; the report could not be built: {session.report_error}", err=True)
    else:
        typer.echo(f"perseus ui: {status}; report: {run_dir / 'report.html'}", err=True)
    return status, run_dir


class _Failed(PerseusError):
    def __init__(self, cause: PerseusError, run_dir: Path):
        super().__init__(str(cause))
        self.exit_code = cause.exit_code
        self.run_dir = run_dir
