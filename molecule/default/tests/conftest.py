"""Verify order: the deploy checks (test_default.py) first, the benchmark
(test_benchmark.py) last, so that a benchmark that broke the node cannot be mistaken for
a deploy that did (the benchmark itself checks it put every node's swap back).

Tests marked ``after_benchmark`` run after the benchmark: they leave the lab changed (the
rolling re-deploy test: the servers at log level debug).  Tests marked ``long`` (many
minutes of emulated CPU each; none at present) are left out of the test command's run,
which has a time budget; NSWAP_LONG_TESTS=1 runs them too, after everything else (README,
"Long runs")."""

import os


def pytest_configure(config):
    config.addinivalue_line("markers", "long: a long run, only with NSWAP_LONG_TESTS=1")
    config.addinivalue_line("markers", "after_benchmark: runs after the benchmark")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("NSWAP_LONG_TESTS") != "1":
        long_runs = [item for item in items if item.get_closest_marker("long")]
        if long_runs:
            config.hook.pytest_deselected(items=long_runs)
            items[:] = [item for item in items if not item.get_closest_marker("long")]
    items.sort(
        key=lambda item: (
            bool(item.get_closest_marker("long")),
            bool(item.get_closest_marker("after_benchmark")),
            item.nodeid.split("::")[0].endswith("test_benchmark.py"),
        )
    )
