"""scripts/main (the README's main command): bad arguments stop it before it creates
a lab or deploys anything."""

import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABS = os.path.expanduser("~/.cache/nswap/labs")


def labs():
    return sorted(os.listdir(LABS)) if os.path.isdir(LABS) else []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--disk-profiles", "hdd,floppy"],
            "unknown disk profile(s) floppy in --disk-profiles 'hdd,floppy'; use a "
            "comma-separated list of none, hdd, ssd, nvme",
        ),
        (["--disk-profiles="], "--disk-profiles is empty; give a comma-separated list of none"),
        (["--disk-profiles"], "--disk-profiles needs a list, e.g. hdd,none"),
    ],
)
def test_bad_disk_profiles_stop_before_the_lab(args, message):
    before = labs()
    proc = subprocess.run(
        [os.path.join(REPO, "scripts", "main"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert labs() == before
