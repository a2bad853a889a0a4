# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small shared helpers of the lab code: running commands, label names, atomic files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import tempfile

# Everything the lab creates carries this prefix plus the lab name, so that an
# `absent` run can find and sweep what a killed run left behind.
LABEL_PREFIX = "nswap-lab"
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")


class LabError(Exception):
    """A lab operation failed; the message names the problem and the fix."""


def check_lab_name(name):
    if not LAB_NAME_RE.match(name or ""):
        raise LabError(
            "lab name %r is invalid: use 1-8 lowercase letters/digits starting with a "
            "letter (it becomes part of network namespace and interface names)" % (name,)
        )
    return name


def netns_name(lab):
    return "%s-%s" % (LABEL_PREFIX, lab)


def vm_label(lab, vm):
    """The QEMU -name of a lab VM; also what sweeps look for in /proc/*/cmdline."""
    return "%s.%s.%s" % (LABEL_PREFIX, lab, vm)


def run(argv, timeout=600, check=True, input_text=None, env=None, cwd=None):
    """Run argv (a list, never a shell string); return CompletedProcess.

    On failure raise LabError quoting the command and the tail of its stderr.
    """
    try:
        proc = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        raise LabError("command not found: %s" % argv[0])
    except subprocess.TimeoutExpired:
        raise LabError("command timed out after %ss: %s" % (timeout, " ".join(argv)))
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
        raise LabError(
            "command failed (exit %d): %s\n%s" % (proc.returncode, " ".join(argv), "\n".join(tail))
        )
    return proc


def require_commands(commands):
    """commands: {binary: debian_package}. Raise naming every missing one and the fix."""
    missing = sorted((cmd, pkg) for cmd, pkg in commands.items() if shutil.which(cmd) is None)
    if missing:
        pkgs = sorted(set(pkg for _cmd, pkg in missing))
        raise LabError(
            "missing host commands: %s; install them with: apt-get install -y %s"
            % (", ".join(cmd for cmd, _pkg in missing), " ".join(pkgs))
        )


def write_json_atomic(path, data):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def read_json(path, default=None):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def tail_file(path, lines=40):
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def remove_tree(path):
    """rm -rf that never crosses into another file system (a stale bind mount of
    /dev in an image build chroot must not take the host's /dev with it)."""
    if os.path.lexists(path):
        run(["rm", "-rf", "--one-file-system", "--", path], timeout=600)
