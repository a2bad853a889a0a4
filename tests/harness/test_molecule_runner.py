"""harness/molecule.py: each molecule step's wall time, from a fake molecule."""

import os
import stat

from harness import molecule

FAKE = """#!/bin/sh
echo "INFO     [default > create] Executing"
sleep 2
echo "INFO     [default > create] Executed: Successful"
echo "INFO     [default > check] Executing"
echo "INFO     [default > check] Executed: Successful"
echo "INFO     [default > check] Executing"
echo "INFO     [default > check] Executed: Successful"
printf '\\033[31mINFO     [default > verify] Executing\\033[0m\\n'
echo "ERROR    [default > verify] Executed: Failed (Verifier tests failed)"
echo "INFO     [default > destroy] Executing"
sleep "${FAKE_SLEEP:-0}"
exit 3
"""


def fake_molecule(tmp_path):
    path = tmp_path / "molecule"
    path.write_text(FAKE)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_each_step_gets_its_time_and_result(tmp_path):
    log = tmp_path / "molecule.log"
    rc, out = molecule.run(
        "default", str(tmp_path), dict(os.environ), 60, str(log), molecule=fake_molecule(tmp_path)
    )
    assert rc == 3
    assert "\x1b[" not in out  # colours stripped
    lines = [
        line.split() for line in log.read_text().splitlines() if line.startswith("molecule-step")
    ]
    steps = [(scenario, step, result) for _tag, scenario, step, _seconds, result in lines]
    assert steps == [
        ("default", "create", "Successful"),
        ("default", "check", "Successful"),
        ("default", "check", "Successful"),
        ("default", "verify", "Failed"),
        ("default", "destroy", "unfinished"),  # no Executed line
    ]
    # create slept 2 s; the log keeps whole seconds of when lines were read (under load
    # the first line may be read late)
    assert int(lines[0][3].rstrip("s")) >= 1


def test_timeout_kills_molecule_and_still_writes_the_log(tmp_path):
    log = tmp_path / "molecule.log"
    env = dict(os.environ, FAKE_SLEEP="30")
    rc, out = molecule.run(
        "default", str(tmp_path), env, 3, str(log), molecule=fake_molecule(tmp_path)
    )
    assert rc == 124
    assert "killed after 3 s" in out
    assert "molecule-step default create" in log.read_text()
