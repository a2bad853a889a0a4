"""The benchmark's run plan: grouping, order, counts, quick subset, and bad input."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.nswap.cluster.plugins.filter.benchmark_plan import benchmark_plan

BACKENDS = ["disk", "zram", "nbd", "nswap-1", "nswap-3"]


def cells(groups):
    return [cell for group in groups for cell in group["cells"]]


def test_full_matrix_counts_and_order():
    groups = benchmark_plan(BACKENDS, ["W1", "W2", "W3", "W4"], [1, 4], 5, "nswap-3", [10, 100])
    # per repetition: one setup per backend, 4 x 2 runs in each; the projection
    # backend's setup also holds its 4 x 2 runs at each projection rate
    assert len(groups) == 5 * 5
    runs = cells(groups)
    assert len(runs) == 5 * 7 * 4 * 2
    assert [c["index"] for c in runs] == list(range(1, len(runs) + 1))
    assert {c["total"] for c in runs} == {len(runs)}
    first = groups[:5]
    assert [g["backend"] for g in first] == BACKENDS
    assert {g["repetition"] for g in first} == {0} and groups[-1]["repetition"] == 4
    every_run = [(w, p) for w in ("W1", "W2", "W3", "W4") for p in (1, 4)]
    assert [(c["workload"], c["procs"]) for c in first[0]["cells"]] == every_run
    assert [(c["link_rate_mbit"], c["workload"], c["procs"]) for c in first[4]["cells"]] == [
        (rate, w, p) for rate in (None, 10, 100) for w, p in every_run
    ]
    for group in groups:
        for cell in group["cells"]:
            assert (cell["backend"], cell["repetition"]) == (group["backend"], group["repetition"])
            if group["backend"] != "nswap-3":
                assert cell["link_rate_mbit"] is None


def test_quick_keeps_every_backend_and_the_two_rates_a_fit_needs():
    groups = benchmark_plan(BACKENDS, ["W2", "W3"], [4, 1], 5, "nswap-3", [10, 100, 1000], True)
    runs = cells(groups)
    assert [c["backend"] for c in runs] == BACKENDS + ["nswap-3", "nswap-3"]
    assert [g["backend"] for g in groups] == BACKENDS  # no setup of their own
    assert {(c["workload"], c["procs"], c["repetition"]) for c in runs} == {("W2", 4, 0)}
    assert [c["link_rate_mbit"] for c in runs[-2:]] == [10, 100] and runs[-1]["total"] == 7


def test_no_projection_rates():
    runs = cells(benchmark_plan(["disk"], ["w1"], [1], 2, "nswap-3", []))
    assert [(c["workload"], c["repetition"]) for c in runs] == [("W1", 0), ("W1", 1)]


def test_the_shrink_backend_is_planned_beside_its_base():
    """nswap-3-shrink (a server shrinks mid-run) alternates with nswap-3 per repetition."""
    groups = benchmark_plan(["nswap-3", "nswap-3-shrink"], ["W1"], [1], 2, "nswap-3", [])
    assert [(g["backend"], g["repetition"]) for g in groups] == [
        ("nswap-3", 0),
        ("nswap-3-shrink", 0),
        ("nswap-3", 1),
        ("nswap-3-shrink", 1),
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        ((["tape"], ["W1"], [1], 1, "nswap-3", []), "unknown backend 'tape'"),
        ((["disk"], ["W9"], [1], 1, "nswap-3", []), "unknown workload 'W9'"),
        ((["disk"], ["W1"], [0], 1, "nswap-3", []), "use process counts from 1 to 64"),
        ((["disk"], ["W1"], [1], 0, "nswap-3", []), "repetitions=0"),
        ((["disk"], ["W1"], [1], 1, "nswap-3", [10]), "add it to the backends"),
        ((["nswap-3"], ["W1"], [1], 1, "nswap-3", [0]), "1 Mbit/s or more"),
        (([], ["W1"], [1], 1, "nswap-3", []), "no backends"),
        ((["disk"], ["W1"], ["x"], 1, "nswap-3", []), "invalid literal"),
    ],
)
def test_bad_input_names_the_problem(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        benchmark_plan(*args)
