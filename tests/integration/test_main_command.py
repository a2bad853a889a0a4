"""scripts/main (the README's main command): bad arguments (disk profiles, repetitions,
memory.max) stop it before it creates a lab or deploys anything."""

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
        (["--repetitions", "0"], "--repetitions '0' is not a whole number >= 1; use 1 or more"),
        (["--repetitions=five"], "--repetitions 'five' is not a whole number >= 1"),
        (["--repetitions="], "--repetitions '' is not a whole number >= 1"),
        (["--repetitions"], "--repetitions needs a number, e.g. 1"),
        (
            ["--memory-max-mib", "16"],
            "--memory-max-mib '16' is not a whole number >= 32; use 32 or more MiB",
        ),
        (["--memory-max-mib=-64"], "--memory-max-mib '-64' is not a whole number >= 32"),
    ],
)
def test_bad_arguments_stop_before_the_lab(args, message):
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
