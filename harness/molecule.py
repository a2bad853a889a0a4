"""`molecule test -s SCENARIO` for the e2e tests, with the wall time of each step.

Molecule prints `INFO [scenario > step] Executing` and `... Executed: ...` but no times;
`run()` reads its output as it comes and notes when each step started and ended, so that
a slow run says which step its time went to.  The log it writes ends with one line per
step, `molecule-step SCENARIO STEP SECONDS RESULT`, which scripts/test puts into its
phase table.
"""

import contextlib
import os
import re
import signal
import subprocess
import threading
import time

ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
STEP_RE = re.compile(r"\[(?P<scenario>[\w-]+) > (?P<step>[\w-]+)\] (?P<what>Executing|Executed)")
STEP_LINE = "molecule-step %s %s %ds %s"


def step_times(timed_lines):
    """[(scenario, step, seconds, result)] from [(monotonic time, line)], in order; a step
    that ran twice (check) is listed twice; a step that never ended has result 'unfinished'."""
    steps, open_steps = [], {}
    for when, line in timed_lines:
        match = STEP_RE.search(line)
        if not match:
            continue
        key = (match.group("scenario"), match.group("step"))
        if match.group("what") == "Executing":
            open_steps[key] = when
        elif key in open_steps:
            result = line.split("Executed:", 1)[-1].strip() or "?"
            steps.append(key + (when - open_steps.pop(key), result.split(" (")[0]))
    for key, start in open_steps.items():
        steps.append(key + (time.monotonic() - start, "unfinished"))
    return steps


def run(scenario, cwd, env, timeout, log_path, molecule="molecule"):
    """(returncode, output without colours) of `molecule test -s SCENARIO`; the output and
    the step times go to log_path also when it times out (returncode 124 then)."""
    proc = subprocess.Popen(
        [molecule, "test", "-s", scenario],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # a timeout kills its ansible-playbook children too
    )
    timed = []

    def read():
        for line in proc.stdout:
            timed.append((time.monotonic(), ANSI_RE.sub("", line)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        returncode = 124
    reader.join(timeout=30)
    out = "".join(line for _when, line in timed)
    if returncode == 124:
        out += "\nmolecule test -s %s killed after %d s\n" % (scenario, timeout)
    with open(log_path, "w") as log:
        log.write(out)
        for step in step_times(timed):
            log.write(STEP_LINE % step + "\n")
    return returncode, out
