"""The mini VM: a kernel kit plus a busybox initramfs that runs one shell script and stops.

Kernel tests need a real kernel that boots in seconds, not a full distribution.  The VM:

* boots the kit's kernel under TCG (this host's KVM cannot run stock kernels) with an
  initramfs holding busybox-static, the chosen modules (with their modules.dep closure),
  extra files and the script;
* /init mounts the usual pseudo file systems, brings up lo and, if asked, eth0, runs the
  script with stdout+stderr on the second serial port (ttyS1) and then writes an end marker
  carrying the exit status there, so the script's output never mixes with kernel messages on
  the console (ttyS0);
* ``poweroff -f`` ends it; ``panic=-1`` + ``-no-reboot`` turn a panic into a qemu exit, and
  a hang is killed at ``timeout_s``.

Networks: ``"user"`` is QEMU's slirp (guest 10.0.2.15/24, the host's loopback is reachable at
10.0.2.2); ``NetTap`` runs qemu inside a network namespace on a tap device there, see
``netns_with_tap`` for the test topology.
"""

import contextlib
import ipaddress
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    run,
)

from harness.kernel import (
    find_tool,
    module_closure,
    read_module_index,
)

QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
GUEST_SCRIPT = "/minivm/script.sh"
# Always in the initramfs: /init mounts configfs, which Debian builds as a module.
BASE_MODULES = ("configfs",)
DISK_MODULES = ("virtio_pci", "virtio_blk")
NET_MODULES = ("virtio_pci", "virtio_net")
USER_NET_GUEST_CIDR = "10.0.2.15/24"
USER_NET_HOST_IP = "10.0.2.2"
DEFAULT_MAC = "52:54:00:6e:73:01"
KILL_GRACE_S = 5
IP_TIMEOUT_S = 30

# Console lines that mean the kernel is unwell; a test should fail on any of them.
KERNEL_PROBLEM_RE = re.compile(
    r"Oops|Kernel panic|kernel BUG at|BUG:|WARNING:|general protection fault"
    r"|Unable to handle kernel|blocked for more than \d+ seconds|soft lockup"
    r"|hard LOCKUP|rcu_sched self-detected stall|rcu: INFO: rcu_\w+ detected stalls"
    r"|Call Trace:"
)
_INIT_AT_RE = re.compile(r"MINIVM: init at uptime ([0-9.]+)")


class MiniVMError(LabError):
    """The mini VM could not be set up, or (from check()) its run failed; the message says
    what went wrong and how to fix or debug it."""


@dataclass(frozen=True)
class NetTap:
    """Attach the VM to an existing tap device inside network namespace ``netns``."""

    netns: str
    tap: str
    guest_cidr: str = "10.99.0.2/24"
    mac: str = DEFAULT_MAC
    gateway: str = None


@dataclass
class MiniVMResult:
    """What a run left: ``exit_status`` is None when the script never finished (hang/crash)."""

    exit_status: int
    output: str
    console: str
    wall_s: float
    timed_out: bool = False
    boot_s: float = None  # guest uptime when /init started
    qemu_returncode: int = None
    qemu_stderr: str = ""
    error: str = None
    workdir: str = None  # only kept with keep=True
    kernel_problems: list = field(default_factory=list)

    def console_tail(self, lines=40):
        return "\n".join(self.console.splitlines()[-lines:])

    def check(self, allow_kernel_problems=False):
        """Raise MiniVMError unless the script exited 0 and the kernel stayed healthy."""
        if self.exit_status == 0 and (allow_kernel_problems or not self.kernel_problems):
            return self
        if self.exit_status is None:
            what = self.error or "the script did not finish"
        elif self.exit_status != 0:
            what = f"the script exited {self.exit_status}"
        else:
            what = "the kernel reported problems"
        problems = "\n".join(self.kernel_problems[:10]) or "(none)"
        raise MiniVMError(
            f"mini VM run failed: {what}\n--- kernel problems ---\n{problems}"
            f"\n--- script output ---\n{self.output}"
            f"\n--- console tail ---\n{self.console_tail()}"
        )


def find_kernel_problems(console):
    return [line.strip() for line in console.splitlines() if KERNEL_PROBLEM_RE.search(line)]


# --- initramfs ---------------------------------------------------------------------------------


class CpioWriter:
    """Writes a newc cpio archive (what the kernel unpacks as initramfs), everything root-owned.

    Written here rather than with cpio(1) so that ownership and device nodes need no root.
    """

    def __init__(self, handle):
        self._handle = handle
        self._ino = 0

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        self._ino += 1
        name_bytes = name.encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,
            0,
            1,
            0,
            len(data),
            0,
            0,
            *rdev,
            len(name_bytes),
            0,
        )
        header = b"070701" + b"".join(b"%08x" % value for value in fields)
        self._write_padded(header + name_bytes)
        self._write_padded(data)

    def _write_padded(self, blob):
        self._handle.write(blob)
        self._handle.write(b"\0" * (-len(blob) % 4))

    def add_dir(self, name, mode=0o755):
        self._entry(name, stat.S_IFDIR | mode)

    def add_file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def add_symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def add_tree(self, root):
        """Add a staged directory tree; paths in the archive are relative to ``root``."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                self._add_path(os.path.relpath(path, root), path)

    def _add_path(self, name, path):
        info = os.lstat(path)
        perms = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            self.add_symlink(name, os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            self.add_dir(name, perms)
        else:
            with open(path, "rb") as handle:
                self.add_file(name, handle.read(), perms)

    def finish(self):
        self._entry("TRAILER!!!", 0)


def _stage_busybox(stage):
    if not os.path.exists(BUSYBOX):
        raise MiniVMError(f"{BUSYBOX} not found: apt-get install busybox-static")
    bindir = os.path.join(stage, "bin")
    shutil.copy2(BUSYBOX, os.path.join(bindir, "busybox"))
    applets = run([BUSYBOX, "--list"], timeout=30).stdout.split()
    for applet in applets:
        link = os.path.join(bindir, applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)


def _host_module_depends(path):
    """The ``depends`` field of a .ko built outside the kit (e.g. nswap.ko)."""
    modinfo = find_tool("modinfo", "kmod")
    depends = run([modinfo, "-F", "depends", path], timeout=30).stdout.strip()
    return [name for name in depends.split(",") if name]


def _split_modules(modules):
    """Names from the kit vs. host paths of .ko files (anything containing a slash)."""
    names = [m for m in modules if "/" not in str(m)]
    host_kos = [os.fspath(m) for m in modules if "/" in str(m)]
    for path in host_kos:
        if not os.path.isfile(path):
            raise MiniVMError(f"kernel module file {path} does not exist (build it first)")
    return names, host_kos


def _stage_modules(stage, kit, modules):
    """Copy the modules' closure into the initramfs tree and depmod it for busybox modprobe."""
    names, host_kos = _split_modules(modules)
    for path in host_kos:
        names.extend(_host_module_depends(path))
    dep_index, builtin = read_module_index(kit)
    guest_modules = os.path.join(stage, "lib", "modules", kit.abi)
    for relpath in module_closure(names, dep_index, builtin):
        target = os.path.join(guest_modules, relpath)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(kit.modules_dir, relpath), target)
    os.makedirs(os.path.join(guest_modules, "extra"), exist_ok=True)
    for path in host_kos:
        shutil.copyfile(path, os.path.join(guest_modules, "extra", os.path.basename(path)))
    for index in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if os.path.exists(os.path.join(kit.modules_dir, index)):
            shutil.copyfile(
                os.path.join(kit.modules_dir, index), os.path.join(guest_modules, index)
            )
    run([find_tool("depmod", "kmod"), "-b", stage, kit.abi], timeout=120)


def _file_source(value):
    """(host path or bytes, mode or None) from a ``files`` value: path, bytes or (src, mode)."""
    if isinstance(value, tuple):
        return value
    return value, None


def _stage_files(stage, files):
    for guest_path, value in sorted(files.items()):
        if not guest_path.startswith("/"):
            raise MiniVMError(f"guest path {guest_path!r} must be absolute")
        source, mode = _file_source(value)
        target = os.path.join(stage, guest_path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if isinstance(source, bytes):
            with open(target, "wb") as handle:
                handle.write(source)
            os.chmod(target, 0o644 if mode is None else mode)
        elif os.path.isfile(source):
            shutil.copyfile(source, target)
            host_mode = stat.S_IMODE(os.stat(source).st_mode)
            os.chmod(target, host_mode if mode is None else mode)
        else:
            raise MiniVMError(f"file for {guest_path} not found on the host: {source}")


def build_initramfs(path, kit, init_text, script, modules=(), files=None):
    """Write an uncompressed initramfs to ``path`` (no gzip: TCG would spend time inflating)."""
    stage = tempfile.mkdtemp(prefix="stage-", dir=os.path.dirname(path))
    try:
        for directory in (
            "bin",
            "dev",
            "etc",
            "proc",
            "sys",
            "tmp",
            "root",
            "run",
            "minivm",
        ):
            os.makedirs(os.path.join(stage, directory))
        os.symlink("bin", os.path.join(stage, "sbin"))
        os.makedirs(os.path.join(stage, "usr"))
        os.symlink("../bin", os.path.join(stage, "usr", "bin"))
        os.symlink("../bin", os.path.join(stage, "usr", "sbin"))
        _stage_busybox(stage)
        _stage_modules(stage, kit, modules)
        _stage_files(stage, files or {})
        _stage_files(stage, {GUEST_SCRIPT: (script.encode(), 0o755), "/init": (init_text, 0o755)})
        with open(path, "wb") as handle:
            cpio = CpioWriter(handle)
            cpio.add_tree(stage)
            # The kernel opens /dev/console for init's stdio before /init mounts devtmpfs.
            cpio.add_chardev("dev/console", 5, 1)
            cpio.finish()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# --- /init -------------------------------------------------------------------------------------


def _net_plan(net):
    """(guest cidr, gateway or None) for a ``net`` argument; None when there is no network."""
    if net is None:
        return None
    if net == "user":
        return USER_NET_GUEST_CIDR, USER_NET_HOST_IP
    if isinstance(net, NetTap):
        try:  # a typo fails here, not silently in the guest
            ipaddress.ip_interface(net.guest_cidr)
        except ValueError:
            raise MiniVMError(
                f"NetTap guest_cidr {net.guest_cidr!r} is not ADDRESS/PREFIX"
            ) from None
        return net.guest_cidr, net.gateway
    raise MiniVMError(f"net must be None, 'user' or NetTap(...), not {net!r}")


def init_script(marker, net_plan=None, disk_count=0, env=None):
    """Text of /init.  ``marker`` is random per run so that no script output can fake it."""
    lines = [
        "#!/bin/sh",
        "# /init of the nswap mini VM (generated by minivm.py)",
        "export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "mount -t devtmpfs devtmpfs /dev",
        "mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts",
        "mount -t tmpfs tmpfs /tmp",
        "mount -t tmpfs tmpfs /run",
        "modprobe configfs && mount -t configfs configfs /sys/kernel/config",
        'echo "MINIVM: init at uptime $(cut -d" " -f1 /proc/uptime)"',
        # Boot ran at loglevel 5 (warnings and worse) for speed; from now on show everything,
        # so module messages land in the console log.
        "echo 8 > /proc/sys/kernel/printk",
        "ip link set lo up",
    ]
    lines += _init_disk_lines(disk_count)
    lines += _init_net_lines(net_plan)
    for key, value in sorted((env or {}).items()):
        lines.append(f"export {key}={shlex.quote(str(value))}")
    lines += [
        # Raw mode: no \n -> \r\n translation of the script's bytes.
        "stty -F /dev/ttyS1 raw -echo",
        'echo "MINIVM: script start"',
        f"(cd /root && /bin/sh {GUEST_SCRIPT}) </dev/null >/dev/ttyS1 2>&1",
        "rc=$?",
        # Leftover background jobs could keep writing after the marker.
        "kill -9 -1 2>/dev/null",
        f"printf '\\n{marker} %d\\n' \"$rc\" >/dev/ttyS1",
        f'echo "{marker} $rc"',
        "sync",
        # The last close of a serial port waits until its buffer is sent: no lost tail.
        ": >/dev/ttyS1",
        "poweroff -f",
    ]
    return "\n".join(lines) + "\n"


def _wait_loop(condition, what):
    """Shell lines waiting up to 10 s for a device that a just-loaded driver creates."""
    return [
        f"n=0; while ! {condition} && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done",
        f'{condition} || echo "MINIVM: {what} did not appear"',
    ]


def _init_disk_lines(disk_count):
    if not disk_count:
        return []
    last = "/dev/vd" + "abcdefghijklmnopqrstuvwxyz"[disk_count - 1]
    modprobe = " && ".join(f"modprobe {m}" for m in DISK_MODULES)
    return [modprobe] + _wait_loop(f"[ -b {last} ]", last)


def _init_net_lines(net_plan):
    if net_plan is None:
        return []
    cidr, gateway = net_plan
    modprobe = " && ".join(f"modprobe {m}" for m in NET_MODULES)
    lines = [modprobe] + _wait_loop("[ -e /sys/class/net/eth0 ]", "eth0")
    lines += [f"ip addr add {cidr} dev eth0", "ip link set eth0 up"]
    if gateway:
        lines.append(f"ip route add default via {gateway}")
    return lines


# --- qemu --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultyDisk:
    """A raw image behind QEMU's blkdebug driver: `rules` is blkdebug's config text
    (docs/devel/blkdebug in QEMU), e.g. an [inject-error] of write_aio at a sector, so
    that the guest sees I/O errors where the rules say."""

    image: str
    rules: str


def _disk_args(disks, workdir=None):
    args = []
    for index, disk in enumerate(disks):
        if isinstance(disk, FaultyDisk):
            if not os.path.exists(disk.image):
                raise MiniVMError(f"disk image {disk.image} does not exist")
            conf = os.path.join(workdir or tempfile.gettempdir(), f"blkdebug-{index}.conf")
            with open(conf, "w", encoding="utf-8") as handle:
                handle.write(disk.rules)
            args += ["-drive", f"file=blkdebug:{conf}:{disk.image},format=raw,if=virtio"]
            continue
        path, fmt = (disk, "raw") if isinstance(disk, (str, os.PathLike)) else disk
        if not os.path.exists(path):
            raise MiniVMError(f"disk image {path} does not exist (qemu-img create it first)")
        args += ["-drive", f"file={os.fspath(path)},format={fmt},if=virtio"]
    return args


def _net_args(net):
    if net is None:
        return []
    if net == "user":
        # Not restrict=on: that also blocks guest connections to 10.0.2.2 (the host), which
        # is what the tests need.  Scripts are ours and only talk to 10.0.2.2.
        netdev = "user,id=n0"
        mac = DEFAULT_MAC
    else:
        netdev = f"tap,id=n0,ifname={net.tap},script=no,downscript=no"
        mac = net.mac
    return ["-netdev", netdev, "-device", f"virtio-net-pci,netdev=n0,mac={mac}"]


def qemu_argv(
    kit,
    initrd,
    console_log,
    output_log,
    memory_mib=256,
    cpus=1,
    disks=(),
    net=None,
    append="",
    workdir=None,
):
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise MiniVMError(f"{QEMU} not found: apt-get install qemu-system-x86")
    cmdline = "console=ttyS0 loglevel=5 panic=-1 " + append
    options = [
        ("-accel", "tcg"),
        ("-cpu", "max"),
        ("-m", str(memory_mib)),
        ("-smp", str(cpus)),
        ("-display", "none"),
        ("-monitor", "none"),
        ("-kernel", kit.boot_image),
        ("-initrd", initrd),
        ("-append", cmdline.strip()),
        ("-serial", f"file:{console_log}"),  # ttyS0: kernel console
        ("-serial", f"file:{output_log}"),  # ttyS1: the script's output + end marker
    ]
    # -nodefaults: no VGA, and above all no implicit NIC with a user network.
    argv = [qemu, "-nodefaults", "-no-reboot"] + [word for pair in options for word in pair]
    argv += _disk_args(disks, workdir) + _net_args(net)
    if isinstance(net, NetTap):
        argv = [find_tool("ip", "iproute2"), "netns", "exec", net.netns] + argv
    return argv


def _stop(proc):
    """SIGTERM, then SIGKILL the qemu we started (its own session, see _launch)."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def parse_output(raw, marker):
    """(script output, exit status or None) from what ttyS1 received."""
    end = raw.rfind(f"\n{marker} ")
    if end < 0:
        return raw, None
    status_text = raw[end + len(marker) + 2 :].split("\n", 1)[0].strip()
    try:
        return raw[:end], int(status_text)
    except ValueError:
        return raw[:end], None


def _boot_seconds(console):
    match = _INIT_AT_RE.search(console)
    return float(match.group(1)) if match else None


def _run_qemu(argv, workdir, timeout_s):
    """(returncode or None on timeout, stderr text, wall seconds)."""
    stderr_path = os.path.join(workdir, "qemu.stderr")
    started = time.monotonic()
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _stop(proc)  # also on KeyboardInterrupt: never leave a qemu behind
    return returncode, _read_text(stderr_path), time.monotonic() - started


def _describe_failure(returncode, exit_status, console):
    if returncode is None:
        return "timed out: the VM was killed"
    if exit_status is not None:
        return None
    if "Kernel panic" in console:
        return "kernel panic (see console)"
    return f"qemu exited {returncode} before the script finished"


def _check_tap_exists(net):
    """Fail before booting, with the fix, rather than with a qemu error after it."""
    if net.netns not in list_netns():
        raise MiniVMError(
            f"network namespace {net.netns!r} does not exist: create it (and tap "
            f"{net.tap!r} in it) first, e.g. with minivm.netns_with_tap()"
        )
    ip = find_tool("ip", "iproute2")
    if run([ip, "-n", net.netns, "link", "show", net.tap], timeout=30, check=False).returncode:
        raise MiniVMError(
            f"tap {net.tap!r} not found in network namespace {net.netns!r}: "
            f"ip -n {net.netns} tuntap add dev {net.tap} mode tap"
        )


def _modules_for(modules, disks, net):
    """The caller's modules plus what /init itself loads (configfs, virtio drivers)."""
    wanted = list(BASE_MODULES)
    if disks:
        wanted += DISK_MODULES
    if net is not None:
        wanted += NET_MODULES
    return tuple(dict.fromkeys(wanted + list(modules)))


def run_script(
    kit,
    script,
    modules=(),
    files=None,
    memory_mib=256,
    cpus=1,
    disks=(),
    net=None,
    timeout_s=120,
    append="",
    env=None,
    keep=False,
):
    """Boot the mini VM, run ``script`` (shell text) in it, return a MiniVMResult.

    modules: kit module names (``zram``) or host paths of .ko files (``src/kmod/nswap.ko``),
      copied with their dependencies; load them in the script with modprobe.
    files: {guest_path: host_path | bytes | (host_path_or_bytes, mode)}.
    disks: host image paths (raw), (path, format) pairs or FaultyDisk (I/O errors where its
      rules say); the guest sees /dev/vda, vdb, ...
    net: None, "user" (guest 10.0.2.15, host loopback at 10.0.2.2) or NetTap(...).
    env: {NAME: value} exported to the script.
    keep: leave the work dir (initramfs, logs) in place and name it in result.workdir.
    """
    net_plan = _net_plan(net)
    if isinstance(net, NetTap):
        _check_tap_exists(net)
    workdir = tempfile.mkdtemp(prefix="nswap-minivm-")
    try:
        marker = "MINIVM-END-" + secrets.token_hex(8)
        initrd = os.path.join(workdir, "initramfs.cpio")
        console_log = os.path.join(workdir, "console.log")
        output_log = os.path.join(workdir, "output.log")
        init_text = init_script(marker, net_plan, len(disks), env).encode()
        all_modules = _modules_for(modules, disks, net)
        build_initramfs(initrd, kit, init_text, script, all_modules, files)
        argv = qemu_argv(
            kit, initrd, console_log, output_log, memory_mib, cpus, disks, net, append, workdir
        )
        returncode, stderr, wall_s = _run_qemu(argv, workdir, timeout_s)
        console = _read_text(console_log)
        output, exit_status = parse_output(_read_text(output_log), marker)
        return MiniVMResult(
            exit_status=exit_status,
            output=output,
            console=console,
            wall_s=wall_s,
            timed_out=returncode is None,
            boot_s=_boot_seconds(console),
            qemu_returncode=returncode,
            qemu_stderr=stderr,
            error=_describe_failure(returncode, exit_status, console),
            workdir=workdir if keep else None,
            kernel_problems=find_kernel_problems(console),
        )
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


# --- test network namespaces -------------------------------------------------------------------

NETNS_PREFIX = "nswapt-"
_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class TapNetwork:
    """A namespace with one tap: servers run in ``netns`` on ``host_ip``; the VM uses ``nettap``."""

    netns: str
    tap: str
    host_ip: str
    nettap: NetTap

    def command(self, argv):
        """argv prefixed so that it runs inside the namespace."""
        return [find_tool("ip", "iproute2"), "netns", "exec", self.netns] + list(argv)


def netns_name_for(label, pid=None):
    if not _LABEL_RE.match(label):
        raise MiniVMError(f"netns label {label!r} is invalid: use [a-z0-9_], at most 32 chars")
    return f"{NETNS_PREFIX}{label}-{os.getpid() if pid is None else pid}"


def _ip(argv):
    return run([find_tool("ip", "iproute2")] + argv, timeout=IP_TIMEOUT_S)


def list_netns():
    out = _ip(["netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_netns(name):
    if name in list_netns():
        _ip(["netns", "delete", name])


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_netns(prefix=NETNS_PREFIX):
    """Delete test namespaces whose creating process is gone (runs that were killed)."""
    removed = []
    for name in list_netns():
        if not name.startswith(prefix):
            continue
        pid_text = name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        delete_netns(name)
        removed.append(name)
    return removed


@contextlib.contextmanager
def netns_with_tap(
    label,
    host_cidr="10.99.0.1/24",
    guest_cidr="10.99.0.2/24",
    tap="tap0",
    mac=DEFAULT_MAC,
):
    """A fresh namespace ``nswapt-<label>-<pid>`` holding tap ``tap`` with ``host_cidr``.

    The simplest topology where a server process and the VM can talk: the server runs in the
    namespace (``TapNetwork.command``) and owns ``host_cidr`` on the tap; qemu, started in the
    same namespace, is the tap's other end and the guest takes ``guest_cidr``.  Nothing is
    routed anywhere else.  The namespace (and with it the tap) is deleted on exit, exceptions
    included.
    """
    if os.geteuid() != 0:
        raise MiniVMError("network namespaces need root: run the tests as root")
    name = netns_name_for(label)
    delete_netns(name)  # a leftover of an earlier run with a recycled pid
    _ip(["netns", "add", name])
    try:
        _ip(["-n", name, "link", "set", "lo", "up"])
        _ip(["-n", name, "tuntap", "add", "dev", tap, "mode", "tap"])
        _ip(["-n", name, "addr", "add", host_cidr, "dev", tap])
        _ip(["-n", name, "link", "set", tap, "up"])
        host_ip = str(ipaddress.ip_interface(host_cidr).ip)
        yield TapNetwork(name, tap, host_ip, NetTap(name, tap, guest_cidr, mac))
    finally:
        delete_netns(name)
