"""Run one deployment: open (render repository, start server, build load) -> measure -> close.

Whatever happens (model load failure, server death, Ctrl-C), the server is stopped and the records
measured so far are written (``DeploymentSession.close``).
"""

from __future__ import annotations

import traceback
from pathlib import Path

from perseus.errors import PerseusError, ServerError
from perseus.load.interrupts import InterruptGuard
from perseus.manifest import Status
from perseus.plan import Deployment
from perseus.progress import Progress
from perseus.scenario import Scenario
from perseus.session import DeploymentSession, Outcome


def run_deployment(
    scenario: Scenario,
    deployment: Deployment,
    source_repo: Path,
    run_dir: Path,
    *,
    gpu: bool,
    progress: Progress,
    index: int,
    workers=None,
) -> Outcome:
    """``workers``: a ``perseus.load.distributed.Master`` to send the load from its workers, or None."""
    session = DeploymentSession(
        scenario, deployment, source_repo, run_dir, gpu=gpu, progress=progress, index=index, workers=workers
    )
    with InterruptGuard() as guard:
        try:
            session.open()
            guard.check()
            session.measure(guard.check)
        except KeyboardInterrupt:
            # Not re-raised: the caller sees the status, records it and stops the run.
            session.interrupt()
        except ServerError as exc:
            session.fail(str(exc), exc.log_tail)
        except PerseusError as exc:
            session.fail(str(exc))
        except Exception as exc:
            session.fail(f"internal error: {type(exc).__name__}: {exc}")
            (session.dep_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        finally:
            with guard.held():  # Ctrl-C here would leave the server up and the records unwritten
                outcome = session.close()
            if guard.seen and outcome.status == Status.COMPLETED:  # interrupted, and the interrupt was lost
                session.interrupt()
            if outcome.status != Status.COMPLETED:
                # Say why on stderr too, not only in the manifest and the report.
                progress.message(f"[{progress.position(index)}] {deployment.name}: {outcome.status}: {outcome.reason}")
    return outcome
