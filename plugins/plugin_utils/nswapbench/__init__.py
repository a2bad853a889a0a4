"""nswapbench: turns the benchmark runner's JSON lines into the disk-vs-nswap report.

schema.py defines and validates the records, stats.py and amdahl.py hold the maths,
tables.py groups runs into the paper's Table 1 and Table 2, report.py writes
the report directory (raw JSON lines, CSV, report.md, charts.py's PNGs); libraries.py
imports numpy, scipy and matplotlib.  Controller-side code, shipped with the collection:
the module nswap.cluster.nswap_bench_report (an action plugin) runs it; from a checkout's
shell, scripts/nswapbench.
"""
