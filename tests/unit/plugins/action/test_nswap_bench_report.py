"""nswap.cluster.nswap_bench_report (the action plugin) through ansible itself, ad hoc on
localhost from this checkout: renders, is idempotent, check mode and diff change nothing,
and bad input (records, alpha, a missing library) fails naming the problem and keeps the
old report."""

import json
import os
import re
import subprocess

import pytest

from tests import REPO
from tests.unit.plugins.plugin_utils.nswapbench.test_schema import cell, run, write_jsonl

ANSIBLE = os.path.join(REPO, ".venv", "bin", "ansible")
# `localhost | CHANGED => {...}` (the minimal callback: one JSON object per host)
ONE_HOST = re.compile(r"^localhost \| (SUCCESS|CHANGED|FAILED!) => (\{.*\})\s*$", re.S | re.M)


def bench_report(args, *options, env=None):
    """(state, result) of the module run ad hoc with the checkout's ansible.cfg."""
    proc = subprocess.run(
        [ANSIBLE, "localhost", "-m", "nswap.cluster.nswap_bench_report", "-a", args, *options],
        cwd=REPO,
        env=dict(
            os.environ,
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",
            ANSIBLE_CALLBACK_RESULT_FORMAT="json",
            **(env or {}),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    m = ONE_HOST.search(proc.stdout)
    assert m, proc.stdout[-3000:] + proc.stderr[-3000:]
    return m.group(1), json.loads(m.group(2)), proc.stdout + proc.stderr


def snapshot(directory):
    return {n: (directory / n).read_bytes() for n in sorted(os.listdir(directory))}


@pytest.fixture
def runs(tmp_path):
    return write_jsonl(tmp_path / "runs.jsonl", cell("W1", 1, "disk", [10.0, 12.0]))


def test_renders_beside_the_records_then_changes_nothing(tmp_path, runs):
    state, result, out = bench_report("src=%s" % runs)
    assert state == "CHANGED", out
    assert result["dest"] == str(tmp_path / "report")
    assert result["report"] == str(tmp_path / "report" / "report.md")
    assert (result["runs"], result["link_rates"], result["disk_rates"]) == (2, 0, 0)
    assert result["files"] == sorted(os.listdir(tmp_path / "report"))
    assert "report.md" in result["files"] and result["corrupt_runs"] == []
    assert "## Table 1" in (tmp_path / "report" / "report.md").read_text()
    before = snapshot(tmp_path / "report")
    state, result, out = bench_report("src=%s" % runs)
    assert state == "SUCCESS" and not result["changed"], out
    assert snapshot(tmp_path / "report") == before


def test_check_mode_and_diff_change_nothing(tmp_path, runs):
    state, result, out = bench_report("src=%s dest=%s/r" % (runs, tmp_path), "--check", "--diff")
    assert state == "CHANGED", out
    assert sorted(os.listdir(tmp_path)) == ["runs.jsonl"]  # nothing written, no staging left
    assert "+## Table 1" in out  # the diff of report.md
    bench_report("src=%s dest=%s/r" % (runs, tmp_path))
    before = snapshot(tmp_path / "r")
    write_jsonl(runs, cell("W1", 1, "disk", [10.0, 14.0]))
    state, result, out = bench_report("src=%s dest=%s/r" % (runs, tmp_path), "--check")
    assert state == "CHANGED", out
    assert snapshot(tmp_path / "r") == before


def test_bad_records_fail_naming_line_and_field_and_keep_the_old_report(tmp_path, runs):
    bench_report("src=%s" % runs)
    before = snapshot(tmp_path / "report")
    write_jsonl(runs, [run(), run(status="done")])
    state, result, out = bench_report("src=%s" % runs)
    assert state == "FAILED!", out
    assert (
        result["msg"].startswith("bad benchmark records: ")
        and "runs.jsonl:2: field 'status'" in result["msg"]
    )
    assert snapshot(tmp_path / "report") == before
    assert sorted(os.listdir(tmp_path)) == ["report", "runs.jsonl"]


def test_bad_alpha_and_missing_file_fail_with_the_fix(tmp_path, runs):
    state, result, _ = bench_report("src=%s alpha=5" % runs)
    assert state == "FAILED!" and "alpha=5: use a level between 0 and 1" in result["msg"]
    state, result, _ = bench_report("src=%s/none.jsonl" % tmp_path)
    assert state == "FAILED!" and "none.jsonl" in result["msg"] and "No such file" in result["msg"]
    state, result, _ = bench_report("dest=%s" % tmp_path)
    assert state == "FAILED!" and "src" in result["msg"]
    assert sorted(os.listdir(tmp_path)) == ["runs.jsonl"]


def test_corrupt_runs_are_returned_and_warned(tmp_path):
    records = write_jsonl(tmp_path / "runs.jsonl", cell("W1", 1, "nswap-1", [10.0], mismatches=3))
    state, result, out = bench_report("src=%s" % records)
    assert state == "CHANGED", out
    assert result["corrupt_runs"] == ["W1 x1 nswap-1 rep 1: 3 mismatches"]
    assert "DATA CORRUPTION in the benchmark: W1 x1 nswap-1 rep 1" in out


def test_a_controller_without_scipy_gets_the_library_and_the_fix(tmp_path, runs):
    """A Python that cannot import scipy (a sitecustomize that blocks it, as on a controller
    without it installed)."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'scipy' or name.startswith('scipy.'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    state, result, _ = bench_report("src=%s" % runs, env={"PYTHONPATH": str(blocker)})
    assert state == "FAILED!", result
    assert "needs scipy in the Python that runs ansible-playbook" in result["msg"]
    assert "pip install numpy scipy matplotlib" in result["msg"]
    assert "import errors: blocked: scipy" in result["msg"]
    assert sorted(os.listdir(tmp_path)) == ["block", "runs.jsonl"]
