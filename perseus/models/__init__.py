"""The bundled model zoo: ONNX graphs with seeded random weights, and their Triton configs.

``RECIPES`` names every model; ``build_model`` writes one into a Triton model repository
(config.pbtxt for the Python backend, configs/onnxruntime.pbtxt for the ONNX Runtime backend,
recipe.toml, and the generated 1/model.py and 1/model.onnx, which are never committed).
"""

from perseus.models.build import build_model, missing_models, read_recipe, recipe_to_toml
from perseus.models.config import parse_config, render_config
from perseus.models.zoo import (
    RECIPES,
    Recipe,
    TensorSpec,
    build_onnx,
    expected_param_count,
    param_count,
    signature,
)

__all__ = [
    "RECIPES",
    "Recipe",
    "TensorSpec",
    "build_model",
    "build_onnx",
    "expected_param_count",
    "missing_models",
    "param_count",
    "parse_config",
    "read_recipe",
    "recipe_to_toml",
    "render_config",
    "signature",
]
