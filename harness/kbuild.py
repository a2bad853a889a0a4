"""Build an out-of-tree kernel module (nswap.ko) for a kernel kit, warnings as errors.

Where it builds depends on the kit's suite:

* the host's own suite (``kit.suite`` None): on the host, against ``linux-headers-<abi>``
  (scripts/setup-host installs them);
* another suite (``trixie``): inside a minimal chroot of that suite, the "build root", with
  the compiler its kernel was built with (6.12 wants gcc-14, which Debian 12 lacks) and its
  ``linux-headers-<abi>``.  It is made once with debootstrap + apt and cached under
  ``~/.cache/nswap/buildroot/<abi>/``, so later runs only compile.

Either way the sources are copied to a fresh directory first (inside the build root for a
chroot), so the checkout gets no build products and one tree builds for both kernels.
``build_module_cached`` skips the build when the sources and the kernel are those of the
.ko files already in the output directory (the data-path benchmark reruns often).
"""

import fnmatch
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import run

from harness.kernel import (
    KernelKitError,
    cached_tree,
    find_tool,
    has_marker,
    host_headers_build_dir,
    host_mirrors,
    suite_sources_list,
)

DEFAULT_BUILDROOT_CACHE = os.path.join("~", ".cache", "nswap", "buildroot")
# Written last into a build root; bump BUILDROOT_FORMAT when the recipe changes.
BUILDROOT_MARKER = ".nswap-buildroot-complete"
BUILDROOT_FORMAT = "1"
# The headers package pulls the kernel's own compiler (gcc-14 for 6.12), pahole and the
# kbuild tools; Kbuild also needs make, and W=1 runs scripts/kernel-doc (perl, Pod::Usage).
BUILDROOT_PACKAGES = ("make", "perl")
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
    # The headers depend on the linux-image package; its initramfs would cost a minute and
    # 37 MB for nothing (/etc/kernel/postinst.d/initramfs-tools honours INITRD=No).
    "INITRD": "No",
}

DEBOOTSTRAP_TIMEOUT_S = 1800
APT_INSTALL_TIMEOUT_S = 1200
MAKE_TIMEOUT_S = 900

# Kbuild products that must not be copied into a fresh build directory.
_BUILD_PRODUCTS = ("*.o", "*.ko", "*.mod", "*.mod.c", "*.cmd", "modules.order", "Module.symvers")
# Compiler and modpost warnings; -Werror turns the compiler's into errors already, this
# catches the rest (modpost: "WARNING: modpost: ...").
_WARNING_RE = re.compile(r"^.*\b(warning|WARNING):.*$", re.M)


@dataclass(frozen=True)
class BuildRoot:
    """Where Kbuild runs: ``root`` "/" is the host itself, anything else a chroot.
    ``build_dir`` is the kernel's ``/lib/modules/<abi>/build`` as seen inside ``root``."""

    root: str
    build_dir: str

    @property
    def is_host(self):
        return self.root == "/"

    def command(self, argv):
        if self.is_host:
            return list(argv)
        return [find_tool("chroot", "coreutils"), self.root] + list(argv)

    @property
    def env(self):
        return None if self.is_host else dict(CHROOT_ENV)

    def outside(self, inner_path):
        """Host path of a path inside the root."""
        return os.path.join(self.root, inner_path.lstrip("/"))


def default_buildroot_cache():
    return os.path.expanduser(DEFAULT_BUILDROOT_CACHE)


def is_complete_buildroot(root):
    return has_marker(root, BUILDROOT_MARKER, BUILDROOT_FORMAT)


def _in_root(root, argv, timeout_s, log):
    """Run argv chrooted into ``root``; its output goes to ``log`` (failures raise LabError)."""
    proc = run(
        [find_tool("chroot", "coreutils"), root] + list(argv),
        timeout=timeout_s,
        env=dict(CHROOT_ENV),
    )
    log.write(f"$ chroot {root} {' '.join(argv)}\n{proc.stdout}{proc.stderr}\n")


def _build_buildroot_tree(suite, abi, tree, mirrors, log):
    """debootstrap ``suite`` into ``tree``, then apt-get the headers of ``abi`` inside it.

    apt inside the chroot (not debootstrap --include) because the newest ABI is often only in
    ``<suite>-security``, which debootstrap does not read.
    """
    # mkdtemp made the tree 0700; as the chroot's / it must let apt's _apt user through.
    os.chmod(tree, 0o755)
    argv = [
        find_tool("debootstrap", "debootstrap"),
        "--variant=minbase",
        "--include=" + ",".join(BUILDROOT_PACKAGES),
        suite,
        tree,
        mirrors["main"],
    ]
    proc = run(argv, timeout=DEBOOTSTRAP_TIMEOUT_S)
    log.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}\n")
    with open(os.path.join(tree, "etc", "apt", "sources.list"), "w") as handle:
        handle.write(suite_sources_list(suite, mirrors))
    if os.path.exists("/etc/resolv.conf"):
        shutil.copyfile("/etc/resolv.conf", os.path.join(tree, "etc", "resolv.conf"))
    headers = "linux-headers-" + abi
    _in_root(tree, ["apt-get", "-q", "update"], APT_INSTALL_TIMEOUT_S, log)
    _in_root(
        tree,
        ["apt-get", "-q", "-y", "--no-install-recommends", "install", headers],
        APT_INSTALL_TIMEOUT_S,
        log,
    )
    _in_root(tree, ["apt-get", "clean"], APT_INSTALL_TIMEOUT_S, log)
    shutil.rmtree(os.path.join(tree, "var", "lib", "apt", "lists"), ignore_errors=True)
    # The image package came only as a dependency of the headers: its modules (~100 MB) are
    # never used here (the kit holds the ones the VM boots with).
    shutil.rmtree(os.path.join(tree, "usr", "lib", "modules", abi, "kernel"), ignore_errors=True)
    makefile = os.path.join(tree, "lib", "modules", abi, "build", "Makefile")
    if not os.path.exists(makefile):
        raise KernelKitError(f"{headers} installed into {tree} but {makefile} is missing")
    with open(os.path.join(tree, BUILDROOT_MARKER), "w") as marker:
        marker.write(f"{abi} {suite} format={BUILDROOT_FORMAT}\n")


def ensure_buildroot(suite, abi, cache_root=None, mirrors=None):
    """The cached chroot that builds modules for ``abi`` of ``suite``, made if missing.

    The first run costs a debootstrap plus the compiler and headers download; the build log
    is ``<cache_root>/<abi>.build.log``.
    """
    cache_root = os.path.abspath(cache_root or default_buildroot_cache())
    os.makedirs(cache_root, exist_ok=True)
    log_path = os.path.join(cache_root, abi + ".build.log")

    def build(tree):
        with open(log_path, "w") as log:
            _build_buildroot_tree(suite, abi, tree, mirrors or host_mirrors(), log)

    root = cached_tree(cache_root, abi, is_complete_buildroot, build)
    return BuildRoot(root=root, build_dir=os.path.join("/lib/modules", abi, "build"))


def buildroot_for(kit, cache_root=None):
    """The BuildRoot for ``kit``: the host for the host's suite, a cached chroot otherwise."""
    if kit.suite is None:
        return BuildRoot(root="/", build_dir=host_headers_build_dir(kit.abi))
    return ensure_buildroot(kit.suite, kit.abi, cache_root)


def _copy_sources(source_dirs, workdir):
    """Copy each source directory to ``workdir/<its name>`` (siblings, as in the checkout)."""
    names = [os.path.basename(os.path.normpath(path)) for path in source_dirs]
    if len(set(names)) != len(names):
        raise KernelKitError(f"source directories must have distinct names: {source_dirs}")
    for path, name in zip(source_dirs, names, strict=True):
        if not os.path.isdir(path):
            raise KernelKitError(f"module source directory {path} does not exist")
        shutil.copytree(
            path, os.path.join(workdir, name), ignore=shutil.ignore_patterns(*_BUILD_PRODUCTS)
        )


def build_module(kit, module_dir, output_dir, support_dirs=(), buildroot=None):
    """Build the module in ``module_dir`` for ``kit`` with W=1 and -Werror; return the paths of
    the .ko files, copied to ``output_dir``.

    ``support_dirs`` are copied next to it (nswap's Kbuild includes ``../include``).  Any
    warning, also from modpost, fails the build with the compiler's output in the message.
    """
    buildroot = buildroot or buildroot_for(kit)
    scratch = buildroot.outside("/tmp") if not buildroot.is_host else None
    workdir = tempfile.mkdtemp(prefix="nswap-kbuild-", dir=scratch)
    try:
        _copy_sources([module_dir] + list(support_dirs), workdir)
        module_name = os.path.basename(os.path.normpath(module_dir))
        host_module_dir = os.path.join(workdir, module_name)
        inner_module_dir = (
            host_module_dir
            if buildroot.is_host
            else "/" + os.path.relpath(host_module_dir, buildroot.root)
        )
        argv = buildroot.command(
            [
                "make",
                "-C",
                buildroot.build_dir,
                "M=" + inner_module_dir,
                "W=1",
                "KCFLAGS=-Werror",
                "modules",
            ]
        )
        proc = run(argv, timeout=MAKE_TIMEOUT_S, check=False, env=buildroot.env)
        output = proc.stdout + proc.stderr
        warnings = [match.group(0) for match in _WARNING_RE.finditer(output)]
        if proc.returncode != 0 or warnings:
            what = f"exit {proc.returncode}" if proc.returncode else "warnings"
            raise KernelKitError(
                f"building {module_dir} for {kit.abi} failed ({what}); it must build "
                f"warning-free with W=1:\n" + "\n".join(output.strip().splitlines()[-40:])
            )
        kos = sorted(name for name in os.listdir(host_module_dir) if name.endswith(".ko"))
        if not kos:
            raise KernelKitError(f"make succeeded but left no .ko in {host_module_dir}")
        os.makedirs(output_dir, exist_ok=True)
        built = []
        for name in kos:
            shutil.copyfile(os.path.join(host_module_dir, name), os.path.join(output_dir, name))
            built.append(os.path.join(output_dir, name))
        return built
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SOURCE_HASH_FILE = ".source-hash"


def source_hash(kit, source_dirs):
    """A short hash of the kit's kernel and every source file (build products left out)."""
    digest = hashlib.sha256(f"{kit.abi} {kit.suite}\n".encode())
    for top in map(os.path.normpath, source_dirs):
        for directory, subdirs, files in os.walk(top):
            subdirs.sort()
            for name in sorted(files):
                if any(fnmatch.fnmatch(name, pattern) for pattern in _BUILD_PRODUCTS):
                    continue
                path = os.path.join(directory, name)
                digest.update(os.path.relpath(path, os.path.dirname(top)).encode() + b"\0")
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()[:16]


def build_module_cached(kit, module_dir, output_dir, support_dirs=()):
    """``build_module``, unless ``output_dir`` already holds the .ko files built from the same
    sources for the same kernel.  Returns (paths of the .ko files, source hash)."""
    wanted = source_hash(kit, [module_dir] + list(support_dirs))
    stamp = os.path.join(output_dir, SOURCE_HASH_FILE)
    try:
        with open(stamp) as handle:
            recorded, *names = handle.read().split()
    except (OSError, ValueError):
        recorded, names = None, []
    kos = [os.path.join(output_dir, name) for name in names]
    if recorded == wanted and kos and all(os.path.isfile(ko) for ko in kos):
        return kos, wanted
    # The stamp goes first, so that a build that fails halfway is never taken for current.
    if os.path.exists(stamp):
        os.unlink(stamp)
    kos = build_module(kit, module_dir, output_dir, support_dirs)
    with open(stamp, "w") as handle:
        handle.write(" ".join([wanted] + [os.path.basename(ko) for ko in kos]) + "\n")
    return kos, wanted
