"""The kernel tests' fixtures: the kernel kits, nswap.ko built for each, the static
workload.  Shared by every module here (one build of each per session)."""

import os
import subprocess

import pytest

from harness import kbuild, kernel
from tests.kernel.test_nswap_kmod import KIT_IDS, KIT_SUITES, KMOD, KMOD_INCLUDE, REPO, WORKLOAD


@pytest.fixture(scope="session", params=KIT_SUITES, ids=KIT_IDS)
def kit(request):
    try:
        return kernel.ensure_kernel_kit(suite=request.param)
    except kernel.ArchiveUnreachableError as exc:
        pytest.skip(f"no {request.param} kernel kit: {exc}")


@pytest.fixture(scope="session")
def nswap_ko(kit, tmp_path_factory):
    """nswap.ko for the kit, built from a copy of the sources with W=1 and -Werror."""
    output_dir = tmp_path_factory.mktemp("nswap-ko-" + kit.abi)
    (ko,) = kbuild.build_module(kit, KMOD, str(output_dir), support_dirs=[KMOD_INCLUDE])
    return ko


@pytest.fixture(scope="session")
def workload():
    proc = subprocess.run(
        ["make", "-C", "src/workloads", "static"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0 and os.path.exists(WORKLOAD), proc.stderr[-3000:]
