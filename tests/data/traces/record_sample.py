"""Records the committed trace sample, sample/trace.json.0, from the bundled tritonserver.

The server is Triton 2.51 from nvidia-pytriton 0.7.0. Run from the repository root:

    PYTHONPATH=$PWD .venv/bin/python tests/data/traces/record_sample.py tests/data/traces/sample

Three `vision` requests (resnet_tiny) go one at a time, then six `series` requests (lstm_tiny, dynamic
batching) go together, and the server runs them as batches. Every request carries a perseus request id.
"""

import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import gevent
import numpy as np
from geventhttpclient import HTTPClient

from perseus.analysis.spans import request_id
from perseus.checks import load_scenario
from perseus.load.inputs import build_request
from perseus.server import repository, tracing
from perseus.server.local import LocalServer


def main(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario, _ = load_scenario(Path("scenarios/smoke.toml"))
        repository.render(scenario, ["vision", "series"], Path("model_repository"), work / "repo", False)
        server = LocalServer(work / "repo", work / "server.log", extra_args=tracing.server_args(out, 1))
        server.start()
        try:
            parts = urlsplit(server.url)
            rng = np.random.default_rng(0)
            requests = {t: build_request(server.url, t, b, rng) for t, b in (("vision", 1), ("series", 2))}
            client = HTTPClient(parts.hostname, parts.port, concurrency=16)

            def send(tenant: str, scheduled: float) -> None:
                body, headers = requests[tenant].tagged(request_id(tenant, scheduled))
                response = client.post(requests[tenant].path, body=body, headers=headers)
                response.read()
                response.release()

            for i in range(3):
                send("vision", 0.1 * i)
            gevent.joinall([gevent.spawn(send, "series", 1.0 + 0.001 * i) for i in range(6)])
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
