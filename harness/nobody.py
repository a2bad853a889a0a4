"""Run a Python snippet as another local user (nobody, uid 65534), for tests of what nswapd
allows users other than root and its own: setpriv (util-linux) and the system Python
(the project's virtual environment lives under /root, which nobody cannot read)."""

import os
import subprocess

UID = 65534
PYTHON = "/usr/bin/python3"
SETPRIV = "/usr/bin/setpriv"
COLLECTIONS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "collections"
)


def available():
    """Whether run() can work here: root, setpriv and the system Python."""
    return os.geteuid() == 0 and os.path.exists(SETPRIV) and os.path.exists(PYTHON)


def run(script, *args, timeout=60):
    """subprocess.run of ``python3 -c script args...`` as nobody, output captured as text."""
    argv = [SETPRIV, "--reuid=%d" % UID, "--regid=%d" % UID, "--clear-groups", PYTHON]
    return subprocess.run(
        [*argv, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
