# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build nswap.ko once, on the controller, into a binary Debian package for one kernel.

    nswap_kmod_package.py --sources nswap-src.tar.gz --build-dir /lib/modules/KREL/build \
        --kernel KREL --version VERSION --arch amd64 --out DIR

Prints one JSON object: {"deb": PATH, "package": NAME, "version": VERSION}.
The package (nswap-modules-KREL) holds /lib/modules/KREL/updates/nswap/nswap.ko and runs
depmod for KREL after install and removal: every node of that kernel installs it with
dpkg, with no compiler, headers or DKMS of its own.  The build runs in a temporary
folder (the sources archive is the role's reproducible one), warnings are printed.
Exit 1 with the reason on stderr when make or dpkg-deb fails.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

MAKE_TIMEOUT_S = 900

CONTROL = """Package: {package}
Version: {version}
Architecture: {arch}
Maintainer: nswap.cluster <root@localhost>
Section: kernel
Priority: optional
Depends: kmod
Description: nswap.ko network swap block device for Linux {kernel}
 Built on the Ansible controller by the nswap.cluster.nswap_kmod role
 (nswap_kmod_install_method=package) from nswap {module_version}.
"""

# depmod so that modprobe finds the module; for KREL only (not the running kernel's).
MAINTSCRIPT = """#!/bin/sh
set -e
if [ -d /lib/modules/{kernel} ]; then
    depmod -a {kernel}
fi
"""


def fail(message):
    sys.stderr.write("nswap_kmod_package: %s\n" % message)
    sys.exit(1)


def build_module(sources, build_dir, work):
    src = os.path.join(work, "src")
    os.mkdir(src)
    with tarfile.open(sources) as archive:
        archive.extractall(src, filter="data")
    argv = ["make", "-C", build_dir, "M=%s" % src, "modules"]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=MAKE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        fail("make did not finish in %d s: %s" % (MAKE_TIMEOUT_S, " ".join(argv)))
    except OSError as exc:
        fail("cannot run make (%s); install make and gcc on the controller" % exc)
    ko = os.path.join(src, "nswap.ko")
    if proc.returncode != 0 or not os.path.isfile(ko):
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        fail("building nswap.ko against %s failed:\n%s" % (build_dir, "\n".join(tail)))
    # as Debian's kernel packages ship modules: without debug info (a fifth of the size)
    if shutil.which("strip"):
        subprocess.run(["strip", "--strip-debug", ko], check=False, timeout=60)
    return ko


def build_package(ko, args, work):
    package = "nswap-modules-%s" % args.kernel
    root = os.path.join(work, "root")
    moddir = os.path.join(root, "lib", "modules", args.kernel, "updates", "nswap")
    os.makedirs(moddir)
    shutil.copy(ko, os.path.join(moddir, "nswap.ko"))
    os.chmod(os.path.join(moddir, "nswap.ko"), 0o644)
    debian = os.path.join(root, "DEBIAN")
    os.mkdir(debian)
    fields = dict(
        package=package,
        version=args.version,
        arch=args.arch,
        kernel=args.kernel,
        module_version=args.version.split("+", 1)[0],
    )
    with open(os.path.join(debian, "control"), "w") as handle:
        handle.write(CONTROL.format(**fields))
    for script in ("postinst", "postrm"):
        path = os.path.join(debian, script)
        with open(path, "w") as handle:
            handle.write(MAINTSCRIPT.format(**fields))
        os.chmod(path, 0o755)
    os.makedirs(args.out, exist_ok=True)
    deb = os.path.join(args.out, "%s_%s_%s.deb" % (package, args.version, args.arch))
    proc = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", root, deb],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        fail("dpkg-deb failed: %s" % (proc.stderr.strip() or proc.stdout.strip()))
    return {"deb": deb, "package": package, "version": args.version}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sources", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.build_dir, "Makefile")):
        fail(
            "%s is not a kernel build tree for %s: install linux-headers-%s on the "
            "controller, or set nswap_kmod_kernel_build_dir, or use "
            "nswap_kmod_install_method=dkms" % (args.build_dir, args.kernel, args.kernel)
        )
    if shutil.which("dpkg-deb") is None:
        fail(
            "dpkg-deb is missing on the controller: install dpkg, or use "
            "nswap_kmod_install_method=dkms"
        )
    controller_arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if controller_arch != args.arch:
        fail(
            "the nodes are %s, the controller %s: it cannot build their module; use "
            "nswap_kmod_install_method=dkms" % (args.arch, controller_arch or "unknown")
        )
    with tempfile.TemporaryDirectory(prefix="nswap-kmod-package.") as work:
        ko = build_module(args.sources, args.build_dir, work)
        result = build_package(ko, args, work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
