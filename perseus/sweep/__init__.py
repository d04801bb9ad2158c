"""`perseus sweep`: a declared design space, one deployment per point, Pareto frontiers and main effects.

design.py (points: factorial, random, LHS), run.py (the pipeline: check, folder, run + commit each point),
analysis.py (pure: table, frontiers, main effects, rank agreement), report.py (CSVs, plots, sweep.md),
cli.py (``sweep_command``).
"""
