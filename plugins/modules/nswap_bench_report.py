#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The code is the action plugin plugins/action/nswap_bench_report.py: the report is made on
# the controller, from files there, so no module runs on a node.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nswap_bench_report
short_description: Render the benchmark's report (the Nswap paper's Tables 1 and 2)
version_added: 0.2.0
description:
  - Turns the C(runs.jsonl) that the role M(nswap.cluster.nswap_benchmark) wrote on the controller
    into a report directory - C(report.md) (Table 1 per disk and link profile with Welch's
    t-test against disk, the crossover summary, Table 2's projection to faster links, the swap
    traffic per request, the raw link and disk rates), C(runs.csv), C(cells.csv),
    C(projections.csv), PNG charts, and a copy of the records as C(results.jsonl).
  - Runs on the controller whatever host the task targets (an action plugin; nothing is sent to
    the node), in the Python that runs ansible-playbook, which needs numpy, scipy and matplotlib.
  - The report depends only on the records (PNGs carry no version or time), so rendering the same
    records again changes nothing. A new report is built beside O(dest) and renamed into place -
    a failed render (bad record, missing library, full disk) leaves the old report as it was.
  - Every record is validated first; a bad one fails the task naming the file, the line and the
    field.
author:
  - nswap developers (@nswap)
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Renders into a temporary directory, compares, reports whether O(dest) would change,
      and removes it.
  diff_mode:
    support: full
    details: The diff is that of C(report.md).
options:
  src:
    description: The benchmark's records (C(runs.jsonl)), a path on the controller.
    type: path
    required: true
  dest:
    description:
      - The report directory on the controller; replaced as a whole when the report changes.
      - Default C(report) beside O(src).
    type: path
  alpha:
    description: Significance level of Welch's t-test marker in Table 1 (between 0 and 1).
    type: float
    default: 0.05
requirements:
  - numpy, scipy and matplotlib in the controller's Python (C(pip install numpy scipy matplotlib),
    or C(apt install python3-numpy python3-scipy python3-matplotlib) for the system Python).
notes:
  - The role M(nswap.cluster.nswap_benchmark) runs this at its end (C(nswap_benchmark_report)).
  - From a checkout, C(scripts/nswapbench report RESULTS.jsonl) does the same in a shell.
"""

EXAMPLES = r"""
- name: Render the report of a benchmark run
  nswap.cluster.nswap_bench_report:
    src: results/20261206-051500/runs.jsonl
  register: bench_report

- name: Say where it is
  ansible.builtin.debug:
    msg: "{{ bench_report.report }} ({{ bench_report.runs }} runs)"

# The same from a shell, ad hoc:
#   ansible localhost -m nswap.cluster.nswap_bench_report -a src=results/quick/runs.jsonl
"""

RETURN = r"""
dest:
  description: The report directory.
  returned: success
  type: str
  sample: /home/admin/results/20261206-051500/report
report:
  description: The report's main file, C(report.md) in RV(dest).
  returned: success
  type: str
  sample: /home/admin/results/20261206-051500/report/report.md
files:
  description: The files of the report directory (in check mode, those it would hold).
  returned: success
  type: list
  elements: str
  sample: [cells.csv, projections.csv, report.md, results.jsonl, runs.csv, table1-none-none.png]
runs:
  description: Number of run records.
  returned: success
  type: int
  sample: 6
link_rates:
  description: Number of link measurement records.
  returned: success
  type: int
  sample: 3
disk_rates:
  description: Number of disk measurement records.
  returned: success
  type: int
  sample: 1
corrupt_runs:
  description: Runs that read back a wrong page (C(mismatches) > 0); each also gets a warning.
  returned: success
  type: list
  elements: str
  sample: []
"""
