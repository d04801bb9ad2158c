"""``perseus ui``: one deployment on a real Triton server, driven from Locust's web UI.

Locust is used as a library: an ``Environment`` with one User class per tenant (class name = tenant,
SLA and arrival settings as class attributes and docstring) and Locust's ``WebUI``. The users are the
very users ``perseus run`` spawns (``LoadRun.user_classes()``): one open-loop dispatcher per tenant
that replays the tenant's seeded schedule, or ``concurrency`` closed-loop senders.

How Locust's controls map onto the open-loop engine: the user count is not a knob here. A
``LoadTestShape`` asks for exactly one user per tenant (``fixed_count = 1``); Locust's start form would
show its user count and ramp-up disabled at "0", so perseus's script (static/perseus-tab.js) hides them
with one line saying the users are fixed. Start = the measurement begins (warm-up, then ``duration_s`` measured
seconds of the scenario's schedule). The shape stops the test when every schedule is done; Stop in
the UI (or Ctrl-C) ends it earlier, after letting in-flight requests finish for a moment. Either way
the records are closed exactly as ``perseus run`` closes them, the manifest is updated, and
``report.build`` writes summary.csv and report.html; the server is stopped. One measurement per
process: a second Start does nothing (the perseus page says so).

The perseus page (``/perseus``, also a tab in Locust's UI) shows per-tenant p50/p99, SLA latency and
attainment and request counts computed from perseus's raw records, and links the report once written.
In Locust's PERSEUS tab the same script draws, above that table, live SVG charts per tenant from
``/perseus/stats.json``'s series (p50 and p99 per 10 s window with the SLA line, throughput against
the target): perseus serves the script itself, so the UI needs no network and no charting library.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import time
from pathlib import Path

import gevent
import jinja2
from flask import Response, jsonify, redirect, request, send_file, session
from flask_login import UserMixin, login_user
from locust import LoadTestShape
from locust.env import Environment

from perseus import report, results
from perseus.errors import InputError
from perseus.load.engine import ABORT_GRACE_S, LoadRun
from perseus.manifest import Manifest
from perseus.plan import Deployment
from perseus.scenario import Scenario
from perseus.session import DeploymentSession
from perseus.ui import Credentials
from perseus.ui.live import LiveStats, TenantInfo, load_text

LEAD_S = 0.5  # from Start to the first (warm-up) arrival: time to spawn the users
TICK_S = 0.5
STOP_DRAIN_S = ABORT_GRACE_S + 1.5  # Stop waits this long for in-flight requests to complete
TAB_KEY = "perseus"
STOPPED_REASON = "stopped from the web UI"
TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
TAB_SCRIPT = "perseus-tab.js"  # the PERSEUS tab's charts and the start form's note, added to Locust's page

TEXT_KEYS = ["tenant", "load", "sla", "met"]
TABLE = [  # the perseus tab in Locust's UI: keys of LiveStats.rows()
    ("tenant", "Tenant"),
    ("load", "Load"),
    ("requests", "Requests (measured)"),
    ("errors", "Errors"),
    ("rps", "Throughput/s"),
    ("p50", "p50 ms"),
    ("p99", "p99 ms"),
    ("p99recent", "p99 ms, last 10 s"),
    ("sla", "SLA"),
    ("slalatency", "SLA-percentile ms"),
    ("attainment", "SLA attainment %"),
    ("met", "SLA met"),
]


class _LoginUser(UserMixin):
    def __init__(self, name: str):
        self.id = name


class _PhaseProgress:
    """``perseus.progress.Progress`` for the UI session: the phase the perseus page shows."""

    def __init__(self, ui: UiSession):
        self.ui = ui

    def message(self, text: str) -> None:
        pass

    def position(self, index: int) -> str:
        return str(index)

    def update(self, index, deployment, phase, now_s, duration_s, loads) -> None:
        if self.ui.measuring and not self.ui.run.abort_reason:
            self.ui.phase = phase


class _OneUserPerTenant(LoadTestShape):
    """One driver per tenant, all at once; the test ends when every tenant's load is done."""

    use_common_options = False

    def __init__(self, run: LoadRun):
        super().__init__()
        self.run = run

    def tick(self):
        if self.run.finished():
            return None
        n = len(self.run.tenants)
        return n, float(n)


def url_of(host_: str, port: int) -> str:
    return f"http://[{host_}]:{port}" if ":" in host_ else f"http://{host_ or '0.0.0.0'}:{port}"  # noqa: S104


class UiSession:
    """The server, the Locust environment and web UI, and the run folder of one ``perseus ui``."""

    def __init__(
        self,
        scenario: Scenario,
        deployment: Deployment,
        source_repo: Path,
        run_dir: Path,
        manifest: Manifest,
        *,
        gpu: bool,
        web_host: str,
        web_port: int,
        credentials: Credentials | None,
    ):
        self.scenario, self.deployment, self.source_repo = scenario, deployment, source_repo
        self.run_dir, self.manifest, self.gpu = run_dir, manifest, gpu
        self.web_host, self.web_port, self.credentials = web_host, web_port, credentials
        self.live = LiveStats(
            [
                TenantInfo(
                    t.name,
                    t.model,
                    t.sla_ms,
                    t.sla_percentile,
                    load_text(t.load.arrival, t.load.mean_rate(), t.load.concurrency),
                    t.load.mean_rate() if t.load.open_loop else None,
                )
                for t in (scenario.tenant(n) for n in deployment.tenants)
            ]
        )
        self.phase = "starting tritonserver"
        self.measuring = False  # a test is running (Start was pressed, not yet finalized)
        self.finalized = False
        self.cause: str | None = None  # why the measurement ended: completed | stopped | interrupted | failed
        self.interrupting = False
        self.end_now: float | None = None
        self.report_error: str | None = None
        # The same lifecycle `perseus run` uses; the UI decides when the load starts (Start).
        self.session = DeploymentSession(
            scenario, deployment, source_repo, run_dir, gpu=gpu, progress=_PhaseProgress(self), on_record=self.live.add
        )
        self.run: LoadRun | None = None
        self.env: Environment | None = None
        self._ticker: gevent.Greenlet | None = None
        self._finalizer: gevent.Greenlet | None = None
        self.report_built = False
        self._page = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True).get_template(
            "perseus.html.j2"
        )

    # -- setup -----------------------------------------------------------------------------------
    @property
    def record(self):
        return self.manifest.deployments[self.deployment.name]

    def start(self) -> None:
        """Render the repository, start tritonserver, then Locust's environment and web UI."""
        self.run = self.session.open()
        self.env = Environment(user_classes=self._user_classes(), shape_class=_OneUserPerTenant(self.run))
        self.run.env = self.env  # every request also becomes a Locust request event (its charts)
        self.env.create_local_runner()
        self.env.events.test_start.add_listener(self._on_test_start)
        self.env.events.test_stopping.add_listener(self._on_test_stopping)
        self.env.events.test_stop.add_listener(self._on_test_stop)
        # Locust's web UI parses sys.argv for its own options (argument_parser.ui_extra_args_dict) on
        # every page load; this process's arguments are perseus's, already parsed, so hide them.
        sys.argv = sys.argv[:1]
        login = self.credentials is not None
        web = self.env.create_web_ui(self.web_host, self.web_port, web_login=login, delayed_start=True)
        self._add_routes(web)
        web.start()
        gevent.sleep(0.2)
        if web.greenlet.dead:
            reason = f"cannot listen on {self.web_host}:{self.web_port}: {web.greenlet.exception}"
            raise InputError("--web-port", None, reason)
        self.phase = "ready: press Start in the Locust page"

    def _user_classes(self) -> list[type]:
        classes = self.run.user_classes()
        for cls, load in zip(classes, self.run.tenants, strict=True):
            t = self.scenario.tenant(load.tenant)
            cls.model = t.model
            cls.sla_ms, cls.sla_percentile = t.sla_ms, t.sla_percentile
            cls.arrival, cls.rate, cls.concurrency = t.load.arrival, t.load.mean_rate(), t.load.concurrency
            cls.__doc__ = (
                f"tenant {t.name}: model {t.model}, SLA p{t.sla_percentile:g} <= {t.sla_ms:g} ms, "
                f"{load_text(t.load.arrival, t.load.mean_rate(), t.load.concurrency)} "
                f"(warm-up {self.scenario.run.warmup_s:g} s, measured {self.scenario.run.duration_s:g} s)"
            )
        return classes

    # -- the test's life -------------------------------------------------------------------------
    def _on_test_start(self, **_kw) -> None:
        if self.finalized or self.measuring:
            return  # one measurement per process: the users find the run stopped and send nothing
        self.measuring = True
        self.session.outcome.started = results.utc_now()
        self.run.begin(LEAD_S)
        self.manifest.begin(self.deployment, self.scenario.run.duration_s)
        self.manifest.save(self.run_dir)
        self.session.start_telemetry()
        self._ticker = gevent.spawn(self._tick_loop)

    def _tick_loop(self) -> None:
        while True:
            gevent.sleep(TICK_S)
            self.session.tick()

    def _on_test_stopping(self, **_kw) -> None:
        """Before Locust kills the users: stop new arrivals and let requests in flight complete."""
        if not self.measuring or self.cause is not None:
            return
        run = self.run
        if run.abort_reason:
            self.cause = "failed"  # the server died (the ticker's health check aborted the run)
        elif run.finished():
            self.cause = "completed"
        else:
            self.cause = "interrupted" if self.interrupting else "stopped"
            run.abort("interrupted (Ctrl-C or SIGTERM)" if self.interrupting else STOPPED_REASON)
            self.phase = "stopping: waiting for requests in flight"
            deadline = time.monotonic() + STOP_DRAIN_S
            while not run.finished() and time.monotonic() < deadline:
                gevent.sleep(0.05)
        self.end_now = run.now()

    def _on_test_stop(self, **_kw) -> None:
        if self.measuring and not self.finalized and self._finalizer is None:
            self._finalizer = gevent.spawn(self._finalize)

    def _finalize(self) -> None:
        """Close the records as ``perseus run`` does, update the manifest, write summary and report."""
        run = self.run
        if self._ticker is not None:
            self._ticker.kill()
        if self.end_now is None:
            self.end_now = run.now()
        if run.abort_reason is None:
            run.abort("the measurement is over")  # a later Start sends nothing
        self.phase = "writing results"
        cause, session = self.cause or "stopped", self.session
        if cause == "failed":
            session.fail(run.abort_reason)
        elif cause == "interrupted":
            session.interrupt()
        elif cause == "stopped":
            duration = self.scenario.run.duration_s
            session.outcome.reason = (
                f"{STOPPED_REASON} after {max(0.0, self.end_now):.1f} of {duration:g} measured seconds"
            )
        if cause != "completed":
            session.stopped_at(self.end_now)
        outcome = self._close()
        self.measuring, self.finalized = False, True
        self.phase = "building the report"
        self._build_report()
        self.phase = {"failed": f"failed: {outcome.reason}", "interrupted": "finished (interrupted)"}.get(
            outcome.status, "finished"
        )

    def _close(self, log_tail: bool = True):
        """Close the session (server stopped, records written) and record its outcome in the manifest."""
        outcome = self.session.close(log_tail=log_tail)
        self.manifest.finish(self.deployment.name, **outcome.record_fields(self.scenario.run.duration_s))
        self.manifest.close()
        self.manifest.save(self.run_dir)
        return outcome

    def _build_report(self) -> None:
        """summary.csv, report.md/html and plots, from the run folder alone (as `perseus report`)."""
        try:
            # In a native thread, so the web UI keeps answering while the plots are drawn.
            gevent.get_hub().threadpool.apply(report.build, (self.run_dir,))
            self.report_built = True
        except Exception as exc:  # the run folder is complete without it; say why on the page
            self.report_error = f"{type(exc).__name__}: {exc}"

    # -- shutdown --------------------------------------------------------------------------------
    def wait(self) -> None:
        """Serve until Ctrl-C / SIGTERM (KeyboardInterrupt), or until the web server dies."""
        while self.env.web_ui.greenlet is not None and not self.env.web_ui.greenlet.dead:
            gevent.sleep(0.5)

    def shutdown(self) -> str:
        """Stop whatever runs, finish the run folder; returns the run's status."""
        try:
            runner = self.env.runner if self.env is not None else None
            if runner is not None and self.measuring and self._finalizer is None:
                self.interrupting = True
                runner.stop()  # test_stopping lets requests in flight finish; test_stop starts the finalizer
                if self._finalizer is None:  # stop() found nothing running: finish here
                    self._finalizer = gevent.spawn(self._finalize)
            if self._finalizer is not None:
                self._finalizer.join()
            elif not self.finalized:
                self._never_started()
        finally:
            if self.env is not None and self.env.web_ui is not None and self.env.web_ui.server is not None:
                self.env.web_ui.stop()
            if self.env is not None and self.env.runner is not None:
                self.env.runner.quit()
            self.close()
        return self.manifest.status

    def _never_started(self) -> None:
        """Closed before any Start (or the server never came up): keep what there is, say why."""
        ready = self.phase.startswith("ready")
        self.session.interrupt("closed before a test was started" if ready else f"interrupted while {self.phase}")
        self.session.stopped_at(0.0)
        self._close(log_tail=False)
        self.finalized = True
        self._build_report()

    def fail_startup(self, reason: str, log_tail_text: str | None = None) -> None:
        """The server did not come up: record the deployment as failed and build what report there is."""
        self.session.fail(reason, log_tail_text)
        self.session.stopped_at(0.0)
        self._close()
        self.finalized = True
        self._build_report()

    def close(self) -> None:
        self.session.close()

    # -- the perseus page ------------------------------------------------------------------------
    def snapshot(self) -> dict:
        now = self.end_now if self.end_now is not None else (self.run.now() if self.measuring else 0.0)
        note = None
        if self.finalized:
            note = "This process measured once; start `perseus ui` again for a new measurement."
        return {
            "scenario": self.scenario.name,
            "deployment": self.deployment.name,
            "phase": self.phase,
            "elapsed_s": round(max(now, 0.0), 1),
            "warmup_s": self.scenario.run.warmup_s,
            "duration_s": self.scenario.run.duration_s,
            "status": self.record.status,
            "reason": self.record.reason,
            "report": "./perseus/report" if self.report_built else None,
            "report_error": self.report_error,
            "run_dir": str(self.run_dir),
            "note": note,
            "tenants": self.live.rows(now, self.scenario.run.duration_s),
            "series": self.live.series(now, self.scenario.run.duration_s),
        }

    def _add_routes(self, web) -> None:
        app = web.app
        guard = web.auth_required_if_enabled
        web.template_args["extended_tabs"] = [{"title": "perseus", "key": TAB_KEY}]
        web.template_args["extended_tables"] = [
            {"key": TAB_KEY, "structure": [{"key": k, "title": title} for k, title in TABLE]}
        ]
        web.template_args["extended_csv_files"] = [
            {"href": "./perseus", "title": "perseus: live SLA page"},
            {"href": "./perseus/report", "title": "perseus: report.html (written when the test stops)"},
        ]

        @app.route("/perseus")
        @guard
        def perseus_page() -> str:
            return self._page.render(
                scenario=self.scenario.name, deployment=self.deployment.name, table=TABLE, text_keys=TEXT_KEYS
            )

        @app.route(f"/perseus/static/{TAB_SCRIPT}")
        @guard
        def perseus_tab_script() -> Response:
            return send_file(STATIC / TAB_SCRIPT, mimetype="text/javascript", max_age=0)

        @app.route("/perseus/stats.json")
        @guard
        def perseus_stats() -> Response:
            return jsonify(self.snapshot())

        @app.route("/perseus/report")
        @guard
        def perseus_report() -> Response:
            path = self.run_dir / results.REPORT_HTML
            if not (self.report_built and path.is_file()):
                return Response("The report is written when the test stops.\n", 404, mimetype="text/plain")
            return send_file(path.resolve(), mimetype="text/html", max_age=0)

        @app.after_request
        def perseus_extras(response: Response) -> Response:
            if request.path == "/" and response.mimetype == "text/html" and response.status_code == 200:
                # Locust's page, served from our own origin: add the script that draws the PERSEUS tab's charts.
                page = response.get_data(as_text=True)
                tag = f'<script src="./perseus/static/{TAB_SCRIPT}" defer></script>'
                response.set_data(page.replace("</body>", f"{tag}\n</body>", 1))
            elif request.path == "/stats/requests" and response.is_json:
                # Locust's React UI fills the extended tab's table from this key of its stats poll.
                data = response.get_json()
                data["extended_stats"] = [{"key": TAB_KEY, "data": self.snapshot()["tenants"]}]
                response.set_data(json.dumps(data))
            elif request.path.startswith("/perseus"):
                # Locust's app allows every origin (flask-cors, "*"); perseus's pages allow only their
                # own. flask-cors leaves a response alone that already names an origin.
                response.headers["Access-Control-Allow-Origin"] = request.host_url.rstrip("/")
                response.headers["Cache-Control"] = "no-store"
            return response

        if self.credentials is not None:
            self._add_login(web)

    def _add_login(self, web) -> None:
        """Locust's login page (``web_login``), checked against PERSEUS_UI_USER / PERSEUS_UI_PASSWORD."""
        credentials = self.credentials
        web.app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
        web.app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
        web.auth_args = {"username_password_callback": "/perseus/login"}

        @web.login_manager.user_loader
        def load_user(user_id: str):
            return _LoginUser(user_id) if hmac.compare_digest(user_id.encode(), credentials.user.encode()) else None

        @web.app.route("/perseus/login", methods=["POST"])
        def perseus_login():
            user = request.form.get("username", "")
            password = request.form.get("password", "")
            if credentials.check(user, password):
                login_user(_LoginUser(user))
                return redirect("/")
            session["auth_error"] = "Invalid username or password"
            return redirect("/login")
