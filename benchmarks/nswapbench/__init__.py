"""nswapbench: turns the benchmark runner's JSON lines into the disk-vs-nswap report.

schema.py defines and validates the records, stats.py and amdahl.py hold the maths,
tables.py groups runs into the paper's Table 1 and Table 2, report.py writes
results/<date>/ (raw JSON lines, CSV, report.md, charts.py's PNGs).
Run it as ``python -m benchmarks.nswapbench report RESULTS.jsonl``.
"""
