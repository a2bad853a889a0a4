"""The collection as a user gets it: `ansible-galaxy collection build` of this
checkout, installed into a fresh collections path.

Tests that deploy "from the installed tarball" use `install()`; nothing there
points back at the checkout, so a file left out of the tarball fails them.
"""

import glob
import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
# One installed copy per test run, shared by its users (molecule default's deploy and
# benchmark); `install()` rebuilds it from the checkout each time it is called.
INSTALLED = os.path.join(REPO, "build", "installed")


def _galaxy(*args, cwd):
    exe = os.path.join(VENV_BIN, "ansible-galaxy")
    if not os.path.exists(exe):
        exe = shutil.which("ansible-galaxy") or exe
    proc = subprocess.run(
        [exe, "collection", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            "ansible-galaxy collection %s failed (rc %d):\n%s%s"
            % (args[0], proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
        )
    return proc.stdout


def build(out_dir):
    """Build the tarball of this checkout into out_dir; return its path."""
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "nswap-cluster-*.tar.gz")):
        os.unlink(old)
    _galaxy("build", "--force", "--output-path", out_dir, REPO, cwd=out_dir)
    (tarball,) = glob.glob(os.path.join(out_dir, "nswap-cluster-*.tar.gz"))
    return tarball


def install(dest=INSTALLED):
    """Build the tarball and install it into a fresh collections path `dest`.

    Returns (collections_path, tarball).  `dest` is emptied first, so what is there
    afterwards is exactly what the tarball holds.
    """
    shutil.rmtree(dest, ignore_errors=True)
    tarball = build(os.path.join(dest, "dist"))
    path = os.path.join(dest, "collections")
    # --force: a copy elsewhere (~/.ansible/collections) must not make this a no-op.
    _galaxy("install", "--force", "-p", path, tarball, cwd=dest)
    return path, tarball


def main():
    path, tarball = install()
    print("installed %s into %s" % (tarball, path))


if __name__ == "__main__":
    main()
