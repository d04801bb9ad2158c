"""perseus: measure multi-tenant model serving on a real Triton server, with SLAs and dollars."""

__version__ = "0.1.0"
