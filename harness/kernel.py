"""Kernel kits for lab VMs: a Debian kernel that apt resolves, unpacked into a cache.

A "kit" is ``linux-image-<abi>`` unpacked with ``dpkg -x`` (never installed: its postinst
would touch the host's /boot) plus the ``modules.dep`` that ``depmod -b`` writes, because the
package ships none.  The ABI is always resolved from apt at run time, so the lab follows the
kernel that ``linux-image-amd64`` points at today instead of a number written in the code.

Kits come from one of two archives (``AptView``): the host's own apt sources (the default,
Debian 12's 6.1 here), or another Debian suite such as ``trixie`` (6.12), read through a
private apt configuration under ``~/.cache/nswap/apt/<suite>`` whose mirrors are the host's
own (``aptsources``), so no mirror host is written in the code.  Which ABI apt resolves is
the collection's own ``kernelabi`` (the lab image needs it too).
"""

import bz2
import errno
import fcntl
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass

from ansible_collections.nswap.cluster.plugins.module_utils.lab import aptsources, image
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    run,
)
from ansible_collections.nswap.cluster.plugins.module_utils.lab.kernelabi import (
    APT_TIMEOUT_S,
    DEFAULT_FLAVOUR,
    HOST_APT,
    AptView,
    KernelAbiError,
    find_tool,
    resolve_image_package,
    resolve_kernel_abi,
)

DEFAULT_CACHE_ROOT = os.path.join("~", ".cache", "nswap", "kernel")
DEFAULT_APT_ROOT = os.path.join("~", ".cache", "nswap", "apt")
# Written last into a kit directory; a directory without it was left by a killed run.
COMPLETE_MARKER = ".nswap-kit-complete"
# Bump when the kit layout changes; kits with another version are rebuilt.
KIT_FORMAT = "2"

APT_UPDATE_TIMEOUT_S = 300
DOWNLOAD_TIMEOUT_S = 900
UNPACK_TIMEOUT_S = 600
DEPMOD_TIMEOUT_S = 300


class KernelKitError(KernelAbiError):
    """A kit could not be resolved or built; the message names the problem and the fix."""


class ArchiveUnreachableError(KernelKitError):
    """The archive of a suite could not be read and nothing of it is cached: tests skip."""


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
    suite: str = None  # None: the host's own suite (modules build against host headers)

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


def _run(argv, timeout_s, cwd=None):
    """Run a command (argv list), return its stdout; failures raise LabError with stderr."""
    return run(argv, timeout=timeout_s, cwd=cwd).stdout


# --- apt views of other suites ----------------------------------------------------------------


def suite_sources_list(suite, mirrors):
    """sources.list text for ``suite`` and ``suite``-security from {'main', 'security'} URIs."""
    return f"deb {mirrors['main']} {suite} main\ndeb {mirrors['security']} {suite}-security main\n"


def host_mirrors():
    """{'main', 'security'} URIs that serve the host's own suite: the same mirrors serve the
    other Debian suites."""
    return aptsources.mirrors_for(image.host_suite(), aptsources.host_sources())


def _has_lists(lists_dir):
    try:
        return any(
            name.endswith("_Packages") or "_Packages." in name for name in os.listdir(lists_dir)
        )
    except OSError:
        return False


def suite_apt(suite, apt_root=None, mirrors=None):
    """An AptView of ``suite`` with fresh lists (``apt-get update``, cheap when unchanged).

    When the archive cannot be reached the lists of an earlier run are used; without any,
    ArchiveUnreachableError says so.
    """
    state_dir = os.path.join(
        os.path.abspath(apt_root or os.path.expanduser(DEFAULT_APT_ROOT)), suite
    )
    view = AptView(suite=suite, state_dir=state_dir)
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        os.makedirs(os.path.join(state_dir, sub), exist_ok=True)
    sources = suite_sources_list(suite, mirrors or host_mirrors())
    with open(os.path.join(state_dir, "sources.list"), "w") as handle:
        handle.write(sources)
    lists = os.path.join(state_dir, "lists")
    with open(os.path.join(state_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = run(
            [find_tool("apt-get", "apt")] + view.options() + ["-q", "update"],
            timeout=APT_UPDATE_TIMEOUT_S,
            check=False,
        )
    # apt-get update exits 0 even when a source failed; "Err:"/"W: Failed" say it did.
    failed = proc.returncode != 0 or "\nErr:" in "\n" + proc.stdout or "W: Failed" in proc.stderr
    if failed and not _has_lists(lists):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
        raise ArchiveUnreachableError(
            f"the Debian {suite} archive is unreachable (apt-get update failed and nothing is "
            f"cached in {lists}); check the network and the mirrors in "
            f"{os.path.join(state_dir, 'sources.list')} (taken from the host's apt sources)\n"
            + tail
        )
    return view


def apt_view(suite=None, apt_root=None):
    """HOST_APT for the host's own suite (None), a refreshed suite_apt() otherwise."""
    return HOST_APT if suite is None else suite_apt(suite, apt_root)


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


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_TIMEOUT_S = 120


def _zstd_decompress(payload):
    """zstd (Debian 13's kernels) needs the zstd tool: the stdlib has no zstd before 3.14."""
    tool = shutil.which("zstd")
    if tool is None:
        return None
    # The kernel build appends the uncompressed size (le32) after the zstd frame.
    proc = subprocess.run(
        [tool, "-dcq"], input=payload[:-4], capture_output=True, timeout=ZSTD_TIMEOUT_S, check=False
    )
    size = int.from_bytes(payload[-4:], "little")
    if proc.returncode != 0 or len(proc.stdout) != size:
        return None
    return proc.stdout


def decompress_payload(payload):
    """Decompress a bzImage payload; None for formats that cannot be read here (lz4, or zstd
    without the zstd tool)."""
    if payload.startswith(ZSTD_MAGIC):
        return _zstd_decompress(payload)
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


def _kit_from_dir(abi, root, suite=None):
    vmlinux = os.path.join(root, VMLINUX_NAME)
    return KernelKit(
        abi=abi,
        root=root,
        vmlinuz=os.path.join(root, "boot", "vmlinuz-" + abi),
        modules_dir=os.path.join(root, "lib", "modules", abi),
        vmlinux=vmlinux if os.path.exists(vmlinux) else None,
        suite=suite,
    )


def has_marker(root, marker_name, fmt):
    """Whether a cached tree is finished: its marker file (written last) exists and its last
    word says format ``fmt`` (the words before it name what was built)."""
    try:
        with open(os.path.join(root, marker_name)) as marker:
            return marker.read().split()[-1:] == ["format=" + fmt]
    except OSError:
        return False


def is_complete_kit(root):
    return has_marker(root, COMPLETE_MARKER, KIT_FORMAT)


def _download_deb(package, download_dir, apt=HOST_APT):
    """apt-get download writes into the cwd; return the path of the one .deb it fetched."""
    # apt drops to user _apt for downloads and warns when it cannot write the directory.
    os.chmod(download_dir, 0o755)
    _run(
        [find_tool("apt-get", "apt")] + apt.options() + ["download", package],
        DOWNLOAD_TIMEOUT_S,
        cwd=download_dir,
    )
    debs = [name for name in os.listdir(download_dir) if name.endswith(".deb")]
    if len(debs) != 1:
        raise KernelKitError(
            f"apt-get download {package} left {len(debs)} .deb files in {download_dir}, expected 1"
        )
    return os.path.join(download_dir, debs[0])


def _build_kit_tree(package, abi, tree, apt=HOST_APT):
    """Download, unpack and depmod into ``tree``; the marker goes in only when all worked."""
    download_dir = os.path.join(tree, ".download")
    os.mkdir(download_dir)
    deb = _download_deb(package, download_dir, apt)
    _run([find_tool("dpkg", "dpkg"), "-x", deb, tree], UNPACK_TIMEOUT_S)
    shutil.rmtree(download_dir)
    _merge_usr_lib(tree)
    kit = _kit_from_dir(abi, tree)
    for needed in (kit.vmlinuz, kit.modules_dir):
        if not os.path.exists(needed):
            raise KernelKitError(f"{package} does not contain {needed}")
    _run([find_tool("depmod", "kmod"), "-b", tree, abi], DEPMOD_TIMEOUT_S)
    if _config_has(kit.config, "CONFIG_PVH"):
        extract_vmlinux(kit.vmlinuz, os.path.join(tree, VMLINUX_NAME))
    with open(os.path.join(tree, COMPLETE_MARKER), "w") as marker:
        marker.write(f"{abi} format={KIT_FORMAT}\n")


def _merge_usr_lib(tree):
    """Packages of merged-/usr suites (trixie) ship their modules in /usr/lib/modules; link
    /lib -> usr/lib as on such a system, so a kit has one layout (and depmod -b finds them)."""
    if not os.path.lexists(os.path.join(tree, "lib")) and os.path.isdir(
        os.path.join(tree, "usr", "lib", "modules")
    ):
        os.symlink(os.path.join("usr", "lib"), os.path.join(tree, "lib"))


def _config_has(config_path, option):
    try:
        with open(config_path) as handle:
            return f"{option}=y\n" in handle.read()
    except OSError:
        return False


def _remove_leftovers(cache_root, key, is_complete):
    """Delete half-built trees of earlier (killed) runs; called while holding the key's lock."""
    prefix = f".{key}.partial-"
    for name in os.listdir(cache_root):
        if name.startswith(prefix):
            shutil.rmtree(os.path.join(cache_root, name), ignore_errors=True)
    final = os.path.join(cache_root, key)
    if os.path.isdir(final) and not is_complete(final):
        shutil.rmtree(final)


def _install_tree(tree, final, is_complete):
    """Atomically move a finished tree into place (rename within one filesystem)."""
    try:
        os.rename(tree, final)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not is_complete(final):
            raise
        shutil.rmtree(tree)  # someone else finished the same tree first: keep theirs


def cached_tree(cache_root, key, is_complete, build):
    """``<cache_root>/<key>``, made by ``build(tree)`` unless ``is_complete`` already says so.

    ``build`` works in ``<cache_root>/.<key>.partial-*``, which is renamed into place when it
    returns, under an flock so that parallel callers build once; a failed or killed build
    leaves nothing that a later call would take for finished.
    """
    cache_root = os.path.abspath(cache_root)
    final = os.path.join(cache_root, key)
    if is_complete(final):
        return final
    os.makedirs(cache_root, exist_ok=True)
    with open(os.path.join(cache_root, f".{key}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(final):
            return final
        _remove_leftovers(cache_root, key, is_complete)
        tree = tempfile.mkdtemp(prefix=f".{key}.partial-", dir=cache_root)
        try:
            build(tree)
            _install_tree(tree, final, is_complete)
        finally:
            if os.path.exists(tree):
                shutil.rmtree(tree, ignore_errors=True)
    return final


def ensure_kernel_kit(cache_root=None, abi=None, flavour=DEFAULT_FLAVOUR, suite=None, apt=None):
    """Return the KernelKit for ``abi`` (default: what apt resolves), building it if needed.

    ``suite``: None for the host's own archive, or another Debian suite (``trixie``) read
    through a private apt view (``apt``, default ``suite_apt(suite)``).
    Layout: ``<cache_root>/<abi>/{boot/vmlinuz-<abi>, lib/modules/<abi>/...}``; ABIs of
    different suites differ (``6.1.0-56-amd64``, ``6.12.57+deb13-amd64``), so one cache holds
    both.
    """
    if abi is None:
        apt = apt or apt_view(suite)
        package, abi = resolve_image_package(flavour, apt)
    else:
        package = "linux-image-" + abi
    final = cached_tree(
        cache_root or default_cache_root(),
        abi,
        is_complete_kit,
        # A cached kit of a given ABI needs no apt at all (works offline).
        lambda tree: _build_kit_tree(package, abi, tree, apt or apt_view(suite)),
    )
    return _kit_from_dir(abi, final, suite)


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
