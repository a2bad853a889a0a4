# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter of the nswap_benchmark role: the ordered list of runs of a benchmark."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: benchmark_plan
short_description: The runs of the disk-vs-nswap benchmark, grouped by backend setup
version_added: 0.1.0
description:
  - Crosses backends, workloads, process counts and repetitions into runs, grouped so
    that a backend is set up once per group.  For each repetition, for each backend, one
    group with a run per workload and process count.  The repetition is the outermost
    loop, so slow drift of the machine (other load) falls on every backend alike.
  - Projection runs (Table 2 of the Nswap paper) are O(projection_backend) with the link
    limited to each of O(projection_rates_mbit); they follow that backend's own runs in
    its group (the link rate is set per run), so they cost no setup of their own.
  - With O(quick), keeps one repetition, the first workload, the first process count,
    every backend and the first two projection rates (the fewest runs that still give
    Table 1 and a Table 2 fit, which needs two rates).
positional: workloads, procs, repetitions, projection_backend, projection_rates_mbit, quick
options:
  _input:
    description: Backends, e.g. V([disk, zram, nbd, nswap-1, nswap-3, nswap-3-shrink]).
    type: list
    elements: str
    required: true
  workloads:
    description: Workloads, V(W1) to V(W4).
    type: list
    elements: str
    required: true
  procs:
    description: Process counts.
    type: list
    elements: int
    required: true
  repetitions:
    description: Repetitions of each combination.
    type: int
    required: true
  projection_backend:
    description: Backend of the projection runs (must be one of the backends).
    type: str
    required: true
  projection_rates_mbit:
    description: Link rates of the projection runs; empty for none.
    type: list
    elements: int
    required: true
  quick:
    description: The quick subset.
    type: bool
    default: false
"""

EXAMPLES = r"""
groups: >-
  {{ ['disk', 'nswap-3'] | nswap.cluster.benchmark_plan(['W1'], [1, 4], 5, 'nswap-3', [10, 100]) }}
"""

RETURN = r"""
_value:
  description: One dict per backend setup, with C(backend), C(repetition) (0-based, as in
    the results schema) and C(cells), its runs in order, each with C(index) (1-based over
    all runs), C(total), C(workload), C(procs), C(backend), C(repetition) and
    C(link_rate_mbit) (null for the lab's own profile).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

BACKENDS = ("disk", "zram", "nbd", "nswap-1", "nswap-3", "nswap-3-shrink")
WORKLOADS = ("W1", "W2", "W3", "W4")


def _fail(what, fix):
    raise AnsibleFilterError("benchmark_plan: %s; %s" % (what, fix))


def _check(backends, workloads, procs, repetitions, projection_backend, rates):
    if not backends:
        _fail("no backends", "list at least one of %s" % ", ".join(BACKENDS))
    for backend in backends:
        if backend not in BACKENDS:
            _fail("unknown backend %r" % backend, "use %s" % ", ".join(BACKENDS))
    for workload in workloads or _fail("no workloads", "list some of W1, W2, W3, W4"):
        if workload not in WORKLOADS:
            _fail("unknown workload %r" % workload, "use W1, W2, W3 or W4")
    for count in procs or _fail("no process counts", "list e.g. [1, 4]"):
        if not 1 <= count <= 64:
            _fail("procs %r" % count, "use process counts from 1 to 64")
    if repetitions < 1:
        _fail("repetitions=%d" % repetitions, "use 1 or more")
    if rates and projection_backend not in backends:
        _fail(
            "projection backend %r is not among the backends" % projection_backend,
            "add it to the backends or set the projection rates to []",
        )
    for rate in rates:
        if rate < 1:
            _fail("projection rate %r Mbit/s" % rate, "use rates of 1 Mbit/s or more")


def benchmark_plan(
    backends, workloads, procs, repetitions, projection_backend, projection_rates_mbit, quick=False
):
    try:
        backends = [str(b) for b in backends]
        workloads = [str(w).upper() for w in workloads]
        procs = [int(p) for p in procs]
        repetitions = int(repetitions)
        rates = [int(r) for r in projection_rates_mbit or []]
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("benchmark_plan: %s" % exc)
    _check(backends, workloads, procs, repetitions, projection_backend, rates)
    if quick:
        workloads, procs, repetitions, rates = workloads[:1], procs[:1], 1, rates[:2]
    groups = []
    for repetition in range(repetitions):
        for backend in backends:
            link_rates = [None] + (rates if backend == projection_backend else [])
            cells = [
                dict(
                    workload=workload,
                    procs=count,
                    backend=backend,
                    repetition=repetition,
                    link_rate_mbit=rate,
                )
                for rate in link_rates
                for workload in workloads
                for count in procs
            ]
            groups.append(dict(backend=backend, repetition=repetition, cells=cells))
    total = sum(len(group["cells"]) for group in groups)
    index = 0
    for group in groups:
        for cell in group["cells"]:
            index += 1
            cell.update(index=index, total=total)
    return groups


class FilterModule:
    def filters(self):
        return {"benchmark_plan": benchmark_plan}
