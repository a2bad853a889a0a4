"""roles/nswap_kmod/files/nswap_kmod_package.py: nswap.ko built once on the controller into
nswap-modules-<kernel>, and the clear failures around it (no build tree, another
architecture, sources that do not build).  Builds against the headers of the lab guests'
kernel, which scripts/setup-host installs on this host."""

import glob
import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests import REPO

SCRIPT = os.path.join(REPO, "roles", "nswap_kmod", "files", "nswap_kmod_package.py")
KMOD = os.path.join(REPO, "src", "kmod")
HEADERS = sorted(glob.glob("/lib/modules/*/build/Makefile"))


def host_arch():
    return subprocess.check_output(["dpkg", "--print-architecture"], text=True).strip()


@pytest.fixture
def sources(tmp_path):
    """The sources archive as the role's pack.yml lays it out (include/ beside the .c)."""
    path = tmp_path / "nswap-src.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in sorted(os.listdir(KMOD)):
            if name in ("Kbuild", "Makefile", "dkms.conf") or name.endswith((".c", ".h")):
                if not name.endswith(".mod.c"):
                    archive.add(os.path.join(KMOD, name), arcname=name)
        for header in ("nswap_place.h", "nswap_proto.h"):
            archive.add(os.path.join(REPO, "src", "include", header), arcname="include/" + header)
    return path


def build(sources, out, kernel, build_dir, arch=None, version="0.1.0+src0123456789ab"):
    return subprocess.run(
        [sys.executable, SCRIPT, "--sources", str(sources), "--build-dir", build_dir]
        + ["--kernel", kernel, "--version", version, "--arch", arch or host_arch()]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_package_holds_the_module_for_that_kernel_and_runs_depmod(sources, tmp_path):
    assert HEADERS, "no kernel headers on this host: run scripts/setup-host"
    build_dir = os.path.dirname(HEADERS[0])
    kernel = build_dir.split("/")[3]
    proc = build(sources, tmp_path / "out", kernel, build_dir)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["package"] == "nswap-modules-%s" % kernel
    assert result["version"] == "0.1.0+src0123456789ab"
    deb = result["deb"]
    fields = subprocess.check_output(["dpkg-deb", "-f", deb], text=True)
    assert "Package: nswap-modules-%s\n" % kernel in fields
    assert "Architecture: %s\n" % host_arch() in fields
    files = subprocess.check_output(["dpkg-deb", "-c", deb], text=True)
    assert "./lib/modules/%s/updates/nswap/nswap.ko\n" % kernel in files
    assert len([line for line in files.splitlines() if line.endswith(".ko")]) == 1
    unpacked = tmp_path / "unpacked"
    subprocess.check_call(["dpkg-deb", "-R", deb, str(unpacked)])
    ko = unpacked / "lib" / "modules" / kernel / "updates" / "nswap" / "nswap.ko"
    info = subprocess.check_output(["modinfo", "-F", "vermagic", str(ko)], text=True)
    assert info.split()[0] == kernel  # loads only on the kernel it was built for
    for script in ("postinst", "postrm"):
        text = (unpacked / "DEBIAN" / script).read_text()
        assert "depmod -a %s" % kernel in text
        assert os.access(unpacked / "DEBIAN" / script, os.X_OK)
    # the build happened in a temporary folder: only the .deb is left in --out
    assert os.listdir(tmp_path / "out") == [os.path.basename(deb)]


def test_missing_build_tree_names_the_headers_package(sources, tmp_path):
    proc = build(sources, tmp_path / "out", "6.1.0-99-amd64", "/nonexistent/build")
    assert proc.returncode == 1
    assert "install linux-headers-6.1.0-99-amd64 on the controller" in proc.stderr
    assert "nswap_kmod_install_method=dkms" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_other_architecture_is_refused(sources, tmp_path):
    assert HEADERS
    build_dir = os.path.dirname(HEADERS[0])
    other = "arm64" if host_arch() != "arm64" else "amd64"
    proc = build(sources, tmp_path / "out", build_dir.split("/")[3], build_dir, arch=other)
    assert proc.returncode == 1
    assert "the nodes are %s" % other in proc.stderr
    assert not (tmp_path / "out").exists()


def test_sources_that_do_not_build_fail_with_the_compiler_error(tmp_path):
    assert HEADERS
    build_dir = os.path.dirname(HEADERS[0])
    broken = tmp_path / "broken.tar.gz"
    source = tmp_path / "nswap_main.c"
    source.write_text("#include <linux/module.h>\nthis is not C;\n")
    kbuild = tmp_path / "Kbuild"
    kbuild.write_text("obj-m := nswap.o\nnswap-y := nswap_main.o\n")
    with tarfile.open(broken, "w:gz") as archive:
        archive.add(source, arcname="nswap_main.c")
        archive.add(kbuild, arcname="Kbuild")
    proc = build(broken, tmp_path / "out", build_dir.split("/")[3], build_dir)
    assert proc.returncode == 1
    assert "building nswap.ko against %s failed" % build_dir in proc.stderr
    assert "nswap_main.c" in proc.stderr  # the compiler's own words
    assert not (tmp_path / "out").exists()
