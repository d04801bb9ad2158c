"""`perseus calibrate`: the harness checked against queueing theory on a model of known service time."""
