"""How a tenant's Triton config becomes MLServer's model-settings.json and BentoML's service spec."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from perseus.server import bentoml, mlserver

CONFIG = """
name: "series"
max_batch_size: 32
input { name: "series" data_type: TYPE_FP32 dims: [16, 4] }
input { name: "ids" data_type: TYPE_INT64 dims: [8] }
output { name: "forecast" data_type: TYPE_FP32 dims: [4] }
instance_group { count: 2 kind: KIND_CPU }
dynamic_batching { max_queue_delay_microseconds: 2500 }
parameters { key: "intra_op_num_threads" value { string_value: "2" } }
"""


def config(text: str = CONFIG) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def test_a_batching_model_gets_adaptive_batching_and_its_threads():
    settings = mlserver.model_settings("series", config(), Path("1/model.onnx"))
    assert settings["implementation"] == "perseus_onnx.OnnxModel"
    assert settings["inputs"] == [
        {"name": "series", "datatype": "FP32", "shape": [-1, 16, 4]},
        {"name": "ids", "datatype": "INT64", "shape": [-1, 8]},
    ]
    assert settings["outputs"] == [{"name": "forecast", "datatype": "FP32", "shape": [-1, 4]}]
    assert settings["max_batch_size"] == 32
    assert settings["max_batch_time"] == 2500e-6
    assert settings["parameters"]["extra"] == {"onnx": "1/model.onnx", "intra_op_num_threads": "2"}
    assert mlserver.instances(config()) == 2


def test_a_zero_queue_delay_still_batches():
    """MLServer turns adaptive batching off at max_batch_time 0; Triton's batcher with no delay still groups."""
    text = CONFIG.replace("max_queue_delay_microseconds: 2500", "")
    assert mlserver.model_settings("series", config(text), Path("1/model.onnx"))["max_batch_time"] == (
        mlserver.MIN_BATCH_TIME_S
    )


def test_without_dynamic_batching_or_a_batch_dimension():
    text = CONFIG.replace("dynamic_batching { max_queue_delay_microseconds: 2500 }", "")
    settings = mlserver.model_settings("series", config(text), Path("1/model.onnx"))
    assert "max_batch_size" not in settings and "max_batch_time" not in settings
    unbatched = config(text.replace("max_batch_size: 32", "max_batch_size: 0"))
    settings = mlserver.model_settings("series", unbatched, Path("1/model.onnx"))
    assert settings["inputs"][0]["shape"] == [16, 4]
    assert mlserver.instances(config("name: 'x'")) == 1


# -- BentoML: the same config as perseus-bento.json's tenant entry (perseus.server.bentoml) ---------
def test_bentoml_spec_batches_where_triton_would_with_the_run_timeout_as_its_latency_cap():
    text = CONFIG.replace('input { name: "ids" data_type: TYPE_INT64 dims: [8] }', "")
    spec = bentoml.tenant_spec(3, "solo-series", config(text), "solo-series/1/model.onnx", request_timeout_s=30)
    assert spec["method"] == "tenant_3" and spec["onnx_input"] == "series"
    assert spec["metadata"]["inputs"] == [{"name": "tensor", "datatype": "FP32", "shape": [-1, 16, 4]}]
    assert spec["batching"] == {"max_batch_size": 32, "max_latency_ms": 30000}
    assert "adaptive" in spec["batch_wait"]
    assert spec["threads"] == {"intra_op_num_threads": "2"}
    unbatched = bentoml.tenant_spec(
        0, "x", config(text.replace("dynamic_batching { max_queue_delay_microseconds: 2500 }", "")), "x", 30
    )
    assert unbatched["batching"] is None


def test_bentoml_refuses_models_with_more_than_one_input():
    assert "2 inputs and 1 outputs" in bentoml.servable(config())
    assert bentoml.servable(config(CONFIG.replace('input { name: "ids" data_type: TYPE_INT64 dims: [8] }', ""))) is None
