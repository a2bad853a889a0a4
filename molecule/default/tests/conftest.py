"""Verify order: the deploy checks (test_default.py) first, the benchmark
(test_benchmark.py) last, so that a benchmark that broke the node cannot be mistaken for
a deploy that did (the benchmark itself checks it put every node's swap back)."""


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.nodeid.split("::")[0].endswith("test_benchmark.py"))
