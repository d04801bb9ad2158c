"""MLServer's and BentoML's Prometheus text as telemetry rows (perseus.telemetry.frameworks), parsed for real."""

import json

from perseus.telemetry import frameworks

# Shaped as MLServer 1.7.1 and BentoML 1.4.40 print them (families abridged from a live /metrics).
MLSERVER = """# HELP batch_request_queue counter of request queue batch size
# TYPE batch_request_queue histogram
batch_request_queue_sum{model_name="series",model_version=""} 3.0
batch_request_queue_bucket{le="0.005",model_name="series",model_version=""} 1.0
batch_request_queue_count{model_name="series",model_version=""} 4.0
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 512.0
"""
BENTOML = """# HELP bentoml_service_request_total Multiprocess metric
# TYPE bentoml_service_request_total counter
bentoml_service_request_total{endpoint="/series",http_response_code="200",runner_name="perseus"} 7.0
# HELP bentoml_service_request_duration_seconds Multiprocess metric
# TYPE bentoml_service_request_duration_seconds histogram
bentoml_service_request_duration_seconds_sum{endpoint="/series",http_response_code="200"} 0.25
bentoml_service_request_duration_seconds_bucket{endpoint="/series",http_response_code="200",le="0.005"} 1.0
bentoml_service_request_duration_seconds_count{endpoint="/series",http_response_code="200"} 7.0
"""


def test_mlserver_keeps_its_own_families_without_buckets():
    rows = list(frameworks.parse(MLSERVER, "mlserver"))
    assert [(m, v) for m, _, v in rows] == [("batch_request_queue_sum", 3.0), ("batch_request_queue_count", 4.0)]
    assert json.loads(rows[0][1]) == {"model_name": "series", "model_version": ""}


def test_bentoml_counters_and_duration_sums():
    rows = {m: v for m, _, v in frameworks.parse(BENTOML, "bentoml")}
    assert rows == {
        "bentoml_service_request_total": 7.0,
        "bentoml_service_request_duration_seconds_sum": 0.25,
        "bentoml_service_request_duration_seconds_count": 7.0,
    }


def test_no_url_or_triton_no_rows():
    assert frameworks.sample_rows("", "mlserver", 1.0) == []
    assert frameworks.sample_rows("http://127.0.0.1:9/metrics", "triton", 1.0) == []  # not a framework kind
    assert frameworks.sample_rows("http://127.0.0.1:9/metrics", "mlserver", 1.0) is None  # refused: counted as failed
