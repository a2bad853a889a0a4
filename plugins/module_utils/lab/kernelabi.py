# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Debian kernel ABI apt resolves ``linux-image-<flavour>`` to, e.g. ``6.1.0-56-amd64``.

The lab image installs that kernel, so modules built against the host's
``linux-headers-<abi>`` load in the guests.  The ABI is always resolved from apt at run time,
so the lab follows the kernel that ``linux-image-amd64`` points at today instead of a number
written in the code.  ``AptView`` says which archive apt reads: the host's own sources, or a
private configuration for another Debian suite (made by the test harness's kernel kits).
"""

from __future__ import absolute_import, division, print_function  # noqa: UP010

__metaclass__ = type  # noqa: UP001

import os
import re
import shutil
from dataclasses import dataclass

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    run,
)

DEFAULT_FLAVOUR = "amd64"
APT_TIMEOUT_S = 60

_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin")


class KernelAbiError(LabError):
    """The kernel ABI could not be resolved; the message names the problem and the fix."""


@dataclass(frozen=True)
class AptView:
    """Which archive apt commands read: the host's sources (``suite`` None), or a private
    configuration in ``state_dir`` (sources.list, lists, download cache) for ``suite``."""

    suite: str = None
    state_dir: str = None

    def options(self):
        """``-o`` arguments for apt-get/apt-cache; none for the host's own view."""
        if self.suite is None:
            return []
        return [
            "-o",
            "Dir::Etc::SourceList=" + os.path.join(self.state_dir, "sources.list"),
            "-o",
            "Dir::Etc::SourceParts=" + os.path.join(self.state_dir, "sources.list.d"),
            "-o",
            "Dir::State::Lists=" + os.path.join(self.state_dir, "lists"),
            "-o",
            "Dir::Cache=" + os.path.join(self.state_dir, "cache"),
            # The host's pins and installed packages say nothing about another suite.
            "-o",
            "Dir::Etc::Preferences=/dev/null",
            "-o",
            "Dir::Etc::PreferencesParts=" + os.path.join(self.state_dir, "preferences.d"),
        ]


HOST_APT = AptView()


def find_tool(name, package):
    """Absolute path of a host tool; root's PATH may lack the sbin dirs, so look there too."""
    path = shutil.which(name)
    if path:
        return path
    for directory in _SBIN_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise KernelAbiError(f"{name} not found: apt-get install {package}")


def _run(argv, timeout_s, cwd=None):
    """Run a command (argv list), return its stdout; failures raise LabError with stderr."""
    return run(argv, timeout=timeout_s, cwd=cwd).stdout


_IMAGE_DEPENDS_RE = re.compile(r"^\s*\|?Depends:\s*(linux-image-(\d\S*))\s*$")


def parse_image_depends(apt_cache_output):
    """(package, abi) from ``apt-cache depends linux-image-<flavour>`` output.

    The metapackage depends on exactly one versioned image, e.g. ``linux-image-6.1.0-56-amd64``
    (ABI ``6.1.0-56-amd64``).  Some releases point at an ``-unsigned`` build: the package name
    keeps the suffix, the ABI (what ``uname -r`` says) does not.  Returns None if there is none.
    """
    for line in apt_cache_output.splitlines():
        match = _IMAGE_DEPENDS_RE.match(line)
        if match:
            package, version = match.groups()
            abi = version.removesuffix("-unsigned")
            return package, abi
    return None


def resolve_image_package(flavour=DEFAULT_FLAVOUR, apt=HOST_APT):
    """(package, abi) that ``linux-image-<flavour>`` resolves to in ``apt``'s lists: the
    candidate, i.e. the newest version the suite and its -security updates offer."""
    meta = "linux-image-" + flavour
    apt_cache = find_tool("apt-cache", "apt")
    output = _run([apt_cache] + apt.options() + ["depends", meta], APT_TIMEOUT_S)
    resolved = parse_image_depends(output)
    if resolved is None:
        where = "the host's apt lists" if apt.suite is None else f"the {apt.suite} lists"
        raise KernelAbiError(
            f"apt-cache depends {meta} names no linux-image-<abi> package in {where}; "
            "run apt-get update (are the Debian sources configured?)"
        )
    return resolved


def resolve_kernel_abi(flavour=DEFAULT_FLAVOUR, apt=HOST_APT):
    """The kernel ABI (``uname -r`` form) apt resolves, e.g. ``6.1.0-56-amd64``."""
    return resolve_image_package(flavour, apt)[1]
