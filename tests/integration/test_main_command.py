"""scripts/main (the README's main command): bad arguments (disk profiles, repetitions,
memory.max, --quick with --full) stop it before it creates a lab or deploys anything, and
--dry-run shows what the default (the quick run), --quick and --full select, without a lab."""

import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABS = os.path.expanduser("~/.cache/nswap/labs")
QUICK_HDD = "the quick run (nswap_benchmark_quick=true) on disk profiles hdd, repetitions 1,"


def labs():
    """The labs other than molecule default's, which scripts/test creates at the same time."""
    return sorted(set(os.listdir(LABS)) - {"molecule"}) if os.path.isdir(LABS) else []


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
        (
            ["--repetitions", "3"],
            "--repetitions 3 needs --full: the quick run (the default) has 1 repetition; "
            "e.g. scripts/main --full --repetitions 3",
        ),
        (["--quick", "--full"], "--quick and --full exclude each other"),
        (["--full", "--disk-profiles", "ssd,tape"], "unknown disk profile(s) tape"),
    ],
)
def test_bad_arguments_stop_before_the_lab(args, message):
    before = labs()
    proc = main(*args)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert labs() == before


@pytest.mark.parametrize(
    ("args", "plan"),
    [
        # The default is the quick run on the hdd profile; --quick is the same.
        ([], QUICK_HDD),
        (["--quick"], QUICK_HDD),
        (
            ["--full"],
            "the full matrix (nswap_benchmark_quick=false) on disk profiles hdd,ssd,nvme,none, "
            "repetitions 5, memory.max the role's default;",
        ),
        (
            ["--full", "--disk-profiles", "hdd,nvme", "--repetitions", "1", "--memory-max-mib=64"],
            "the full matrix (nswap_benchmark_quick=false) on disk profiles hdd,nvme, "
            "repetitions 1, memory.max 64 MiB;",
        ),
        (
            ["--disk-profiles=none", "-e", "lab_servers=1"],
            "the quick run (nswap_benchmark_quick=true) on disk profiles none, repetitions 1, "
            "memory.max the role's default; lab playbook arguments: -e lab_servers=1",
        ),
    ],
)
def test_dry_run_shows_the_plan_without_a_lab(args, plan):
    before = labs()
    proc = main("--dry-run", *args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "scripts/main: would run " + plan in proc.stdout, proc.stdout[-2000:]
    assert labs() == before


def main(*args):
    return subprocess.run(
        [os.path.join(REPO, "scripts", "main"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
