"""Kernel kits for lab VMs: the Debian kernel the host's apt resolves, unpacked into a cache.

A "kit" is ``linux-image-<abi>`` unpacked with ``dpkg -x`` (never installed: its postinst
would touch the host's /boot) plus the ``modules.dep`` that ``depmod -b`` writes, because the
package ships none.  The ABI is always resolved from apt at run time, so the lab follows the
kernel that ``linux-image-amd64`` points at today instead of a number written in the code.

Stdlib only: this file is Ansible module_utils.
"""

from __future__ import absolute_import, division, print_function  # noqa: UP010

__metaclass__ = type  # noqa: UP001

import bz2
import errno
import fcntl
import lzma
import os
import re
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    run,
)

DEFAULT_FLAVOUR = "amd64"
DEFAULT_CACHE_ROOT = os.path.join("~", ".cache", "nswap", "kernel")
# Written last into a kit directory; a directory without it was left by a killed run.
COMPLETE_MARKER = ".nswap-kit-complete"
# Bump when the kit layout changes; kits with another version are rebuilt.
KIT_FORMAT = "2"

APT_TIMEOUT_S = 60
DOWNLOAD_TIMEOUT_S = 900
UNPACK_TIMEOUT_S = 600
DEPMOD_TIMEOUT_S = 300

_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin")


class KernelKitError(LabError):
    """A kit could not be resolved or built; the message names the problem and the fix."""


@dataclass(frozen=True)
class KernelKit:
    """An unpacked kernel and its modules (``modules_dir``).

    ``vmlinux`` is the decompressed kernel, booted by QEMU through its PVH entry point: that
    skips the in-guest decompressor, which under TCG takes ~4 s of a ~7 s mini VM run.  It is
    None when the kernel has no PVH entry or an unsupported compression; use ``boot_image``.
    """

    abi: str
    root: str
    vmlinuz: str
    modules_dir: str
    vmlinux: str = None

    @property
    def boot_image(self):
        return self.vmlinux or self.vmlinuz

    @property
    def modules_dep(self):
        return os.path.join(self.modules_dir, "modules.dep")

    @property
    def modules_builtin(self):
        return os.path.join(self.modules_dir, "modules.builtin")

    @property
    def config(self):
        """The kernel's .config as shipped in the package (``/boot/config-<abi>``)."""
        return os.path.join(self.root, "boot", "config-" + self.abi)


def find_tool(name, package):
    """Absolute path of a host tool; root's PATH may lack the sbin dirs, so look there too."""
    path = shutil.which(name)
    if path:
        return path
    for directory in _SBIN_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise KernelKitError(f"{name} not found: apt-get install {package}")


def _run(argv, timeout_s, cwd=None):
    """Run a command (argv list), return its stdout; failures raise LabError with stderr."""
    return run(argv, timeout=timeout_s, cwd=cwd).stdout


# --- ABI resolution -------------------------------------------------------------------------

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


def resolve_image_package(flavour=DEFAULT_FLAVOUR):
    """(package, abi) that ``linux-image-<flavour>`` resolves to with the host's apt lists."""
    meta = "linux-image-" + flavour
    apt_cache = find_tool("apt-cache", "apt")
    output = _run([apt_cache, "depends", meta], APT_TIMEOUT_S)
    resolved = parse_image_depends(output)
    if resolved is None:
        raise KernelKitError(
            f"apt-cache depends {meta} names no linux-image-<abi> package; "
            "run apt-get update (are the Debian sources configured?)"
        )
    return resolved


def resolve_kernel_abi(flavour=DEFAULT_FLAVOUR):
    """The kernel ABI (``uname -r`` form) the host's apt resolves, e.g. ``6.1.0-56-amd64``."""
    return resolve_image_package(flavour)[1]


# --- vmlinux from vmlinuz ---------------------------------------------------------------------

VMLINUX_NAME = "vmlinux"


def _bzimage_payload(image):
    """The compressed kernel inside a bzImage, located by its boot header (x86 boot protocol
    >= 2.08: payload_offset/payload_length, relative to the protected-mode code)."""
    if image[0x202:0x206] != b"HdrS":
        raise KernelKitError("not an x86 bzImage (no HdrS boot header)")
    setup_sects = image[0x1F1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    return image[start : start + length]


def decompress_payload(payload):
    """Decompress a bzImage payload; None for formats the stdlib cannot read (zstd, lz4)."""
    if payload.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    if payload.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31).decompress(payload)
    if payload.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(payload)
    if payload.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(payload)
    return None


def extract_vmlinux(vmlinuz, target):
    """Write the ELF kernel inside ``vmlinuz`` to ``target``; False if it cannot be read."""
    with open(vmlinuz, "rb") as handle:
        elf = decompress_payload(_bzimage_payload(handle.read()))
    if not elf or not elf.startswith(b"\x7fELF"):
        return False
    with open(target + ".tmp", "wb") as handle:
        handle.write(elf)
    os.rename(target + ".tmp", target)
    return True


# --- kit cache --------------------------------------------------------------------------------


def default_cache_root():
    return os.path.expanduser(DEFAULT_CACHE_ROOT)


def _kit_from_dir(abi, root):
    vmlinux = os.path.join(root, VMLINUX_NAME)
    return KernelKit(
        abi=abi,
        root=root,
        vmlinuz=os.path.join(root, "boot", "vmlinuz-" + abi),
        modules_dir=os.path.join(root, "lib", "modules", abi),
        vmlinux=vmlinux if os.path.exists(vmlinux) else None,
    )


def is_complete_kit(root):
    try:
        with open(os.path.join(root, COMPLETE_MARKER)) as marker:
            return marker.read().split()[1:] == ["format=" + KIT_FORMAT]
    except OSError:
        return False


def _download_deb(package, download_dir):
    """apt-get download writes into the cwd; return the path of the one .deb it fetched."""
    # apt drops to user _apt for downloads and warns when it cannot write the directory.
    os.chmod(download_dir, 0o755)
    _run(
        [find_tool("apt-get", "apt"), "download", package],
        DOWNLOAD_TIMEOUT_S,
        cwd=download_dir,
    )
    debs = [name for name in os.listdir(download_dir) if name.endswith(".deb")]
    if len(debs) != 1:
        raise KernelKitError(
            f"apt-get download {package} left {len(debs)} .deb files in {download_dir}, expected 1"
        )
    return os.path.join(download_dir, debs[0])


def _build_kit_tree(package, abi, tree):
    """Download, unpack and depmod into ``tree``; the marker goes in only when all worked."""
    download_dir = os.path.join(tree, ".download")
    os.mkdir(download_dir)
    deb = _download_deb(package, download_dir)
    _run([find_tool("dpkg", "dpkg"), "-x", deb, tree], UNPACK_TIMEOUT_S)
    shutil.rmtree(download_dir)
    kit = _kit_from_dir(abi, tree)
    for needed in (kit.vmlinuz, kit.modules_dir):
        if not os.path.exists(needed):
            raise KernelKitError(f"{package} does not contain {needed}")
    _run([find_tool("depmod", "kmod"), "-b", tree, abi], DEPMOD_TIMEOUT_S)
    if _config_has(kit.config, "CONFIG_PVH"):
        extract_vmlinux(kit.vmlinuz, os.path.join(tree, VMLINUX_NAME))
    with open(os.path.join(tree, COMPLETE_MARKER), "w") as marker:
        marker.write(f"{abi} format={KIT_FORMAT}\n")


def _config_has(config_path, option):
    try:
        with open(config_path) as handle:
            return f"{option}=y\n" in handle.read()
    except OSError:
        return False


def _remove_leftovers(cache_root, abi):
    """Delete half-built trees of earlier (killed) runs; called while holding the kit lock."""
    prefix = f".{abi}.partial-"
    for name in os.listdir(cache_root):
        if name.startswith(prefix):
            shutil.rmtree(os.path.join(cache_root, name), ignore_errors=True)
    final = os.path.join(cache_root, abi)
    if os.path.isdir(final) and not is_complete_kit(final):
        shutil.rmtree(final)


def _install_tree(tree, final):
    """Atomically move a finished tree into place (rename within one filesystem)."""
    try:
        os.rename(tree, final)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not is_complete_kit(final):
            raise
        shutil.rmtree(tree)  # someone else finished the same kit first: keep theirs


def ensure_kernel_kit(cache_root=None, abi=None, flavour=DEFAULT_FLAVOUR):
    """Return the KernelKit for ``abi`` (default: what apt resolves), building it if needed.

    Layout: ``<cache_root>/<abi>/{boot/vmlinuz-<abi>, lib/modules/<abi>/...}``.  Building
    happens in ``<cache_root>/.<abi>.partial-*`` and is renamed into place when complete, under
    an flock so that parallel callers download once.
    """
    if abi is None:
        package, abi = resolve_image_package(flavour)
    else:
        package = "linux-image-" + abi
    cache_root = os.path.abspath(cache_root or default_cache_root())
    final = os.path.join(cache_root, abi)
    if is_complete_kit(final):
        return _kit_from_dir(abi, final)
    os.makedirs(cache_root, exist_ok=True)
    with open(os.path.join(cache_root, f".{abi}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete_kit(final):
            return _kit_from_dir(abi, final)
        _remove_leftovers(cache_root, abi)
        tree = tempfile.mkdtemp(prefix=f".{abi}.partial-", dir=cache_root)
        try:
            _build_kit_tree(package, abi, tree)
            _install_tree(tree, final)
        finally:
            if os.path.exists(tree):
                shutil.rmtree(tree, ignore_errors=True)
    return _kit_from_dir(abi, final)


# --- host headers -----------------------------------------------------------------------------


def _package_installed(package):
    try:
        status = _run(
            [find_tool("dpkg-query", "dpkg"), "-W", "-f", "${Status}", package],
            APT_TIMEOUT_S,
        )
    except LabError:
        return False  # dpkg-query exits 1 for packages it has never heard of
    return status.strip() == "install ok installed"


def host_headers_build_dir(abi=None, flavour=DEFAULT_FLAVOUR):
    """``/lib/modules/<abi>/build`` for out-of-tree module builds against the kit's kernel."""
    if abi is None:
        abi = resolve_kernel_abi(flavour)
    package = "linux-headers-" + abi
    build_dir = os.path.join("/lib/modules", abi, "build")
    if not _package_installed(package) or not os.path.isfile(os.path.join(build_dir, "Makefile")):
        raise KernelKitError(
            f"kernel headers for {abi} are not installed ({build_dir} missing): "
            f"apt-get install {package}"
        )
    return build_dir


# --- module index (modules.dep) ---------------------------------------------------------------

_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


def module_name(path):
    """``kernel/mm/zsmalloc.ko`` -> ``zsmalloc``; ``-`` and ``_`` are the same to modprobe."""
    base = os.path.basename(path)
    for suffix in _MODULE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_modules_dep(text):
    """{name: (path, [dependency paths])} from modules.dep (paths relative to the modules dir)."""
    index = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, deps = line.split(":", 1)
        path = path.strip()
        index[module_name(path)] = (path, deps.split())
    return index


def parse_modules_builtin(text):
    """Names of modules compiled into the kernel (modprobe accepts them and does nothing)."""
    return {module_name(line.strip()) for line in text.splitlines() if line.strip()}


def module_closure(names, dep_index, builtin=frozenset()):
    """Relative paths of ``names`` and everything they need, dependencies first, no repeats.

    modules.dep already lists the full transitive closure of each module, but walking the
    dependencies' own lines as well keeps this correct for hand-written indexes too.
    """
    ordered = []
    seen = set()

    def visit(path):
        if path in seen:
            return
        seen.add(path)
        for dep in dep_index[module_name(path)][1]:
            visit(dep)
        ordered.append(path)

    for name in names:
        key = module_name(name)
        if key in dep_index:
            visit(dep_index[key][0])
        elif key not in builtin:
            raise KernelKitError(
                f"kernel module {name!r} is not in modules.dep (and not built in): check "
                "the name with `modinfo -b <kit root> -k <abi> NAME`"
            )
    return ordered


def read_module_index(kit):
    """(dep_index, builtin names) of a kit."""
    with open(kit.modules_dep) as handle:
        dep_index = parse_modules_dep(handle.read())
    builtin = set()
    if os.path.exists(kit.modules_builtin):
        with open(kit.modules_builtin) as handle:
            builtin = parse_modules_builtin(handle.read())
    return dep_index, builtin
