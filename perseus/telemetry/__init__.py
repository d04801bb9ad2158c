"""Telemetry samplers. Each yields rows in the long format of ``results.TELEMETRY_SCHEMA``."""
