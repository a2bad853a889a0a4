# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nswap.cluster.nswap_bench_report: the benchmark report, rendered on the controller.

An action plugin because everything happens where the records are, on the controller, in
the Python that runs ansible-playbook (plugins/plugin_utils/nswapbench does the work);
the documentation is plugins/modules/nswap_bench_report.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.plugins.action import ActionBase
from ansible_collections.nswap.cluster.plugins.plugin_utils.nswapbench import (
    libraries,
    report,
    schema,
    stats,
)

ARGUMENT_SPEC = dict(
    src=dict(type="path", required=True),
    dest=dict(type="path"),
    alpha=dict(type="float", default=stats.ALPHA),
)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # nothing runs on the node

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # not used: nothing is copied to the node
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]  # (result, args)
        src = args["src"]
        dest = args["dest"] or os.path.join(os.path.dirname(os.path.abspath(src)), "report")
        alpha = args["alpha"]
        if not 0 < alpha < 1:
            result.update(
                failed=True, msg="alpha=%g: use a level between 0 and 1, e.g. 0.05" % alpha
            )
            return result
        check = bool(self._task.check_mode)
        main = os.path.join(dest, report.REPORT_NAME)
        before = _read(main)
        try:
            written = report.write(src, dest, force=True, alpha=alpha, check=check)
        except schema.SchemaError as err:
            result.update(failed=True, msg="bad benchmark records: %s" % err)
            return result
        except (report.ReportError, libraries.MissingLibraries) as err:
            result.update(failed=True, msg=str(err))
            return result
        except OSError as err:
            result.update(
                failed=True, msg="cannot write the report %s from %s: %s" % (dest, src, err)
            )
            return result
        corrupt = [
            "%s x%d %s rep %d: %d mismatches"
            % (r.workload, r.procs, r.backend, r.repetition + 1, r.mismatches)
            for r in written.results.runs
            if r.corrupt
        ]
        for line in corrupt:
            self._display.warning("DATA CORRUPTION in the benchmark: %s" % line)
        result.update(
            changed=written.changed,
            dest=dest,
            report=main,
            files=written.files,
            runs=len(written.results.runs),
            link_rates=len(written.results.link_rates),
            disk_rates=len(written.results.disk_rates),
            corrupt_runs=corrupt,
        )
        if self._task.diff and written.changed:
            result["diff"] = dict(
                before_header=main, after_header=main, before=before, after=written.text
            )
        return result
