"""Load generation: seeded arrival schedules, request inputs, per-request records, Locust as a library.

Import ``perseus.load.engine`` only in the process that generates load: it imports Locust, which
monkey-patches the standard library for gevent at import time.
"""
