# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lifecycle of one lab VM: a QEMU process on a qcow2 overlay of the lab image.

Each VM has two NICs: a user-mode NIC whose only job is to forward SSH from a
free port on 127.0.0.1 (restrict=on: the guest cannot open connections through
it), and a tap on the lab's private segment (see net.py).  The VM's state file
records the hash of its configuration; `present` with the same configuration
and a live process changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import signal
import socket
import subprocess
import time

from ansible_collections.nswap.cluster.plugins.module_utils.lab import net
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LABEL_PREFIX,
    LabError,
    read_json,
    require_commands,
    run,
    tail_file,
    vm_label,
    write_json_atomic,
)

HOST_COMMANDS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils"}
MIN_MEMORY_MIB = 256
PORT_ATTEMPTS = 5


def mac_address(index):
    return "52:54:00:4e:53:%02x" % (index + 1)


def hardware_virtualization():
    """True only where KVM really works: /dev/kvm usable and vmx/svm in the CPU flags.

    (A /dev/kvm without vmx/svm, e.g. a PVM host, cannot run stock kernels.)"""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" in flags or "svm" in flags
    except OSError:
        pass
    return False


class VMSpec:
    """Everything that defines a VM; its hash decides whether a running VM is kept."""

    FIELDS = (
        "lab",
        "name",
        "index",
        "memory_mib",
        "cpus",
        "swap_disk_mib",
        "address",
        "image_key",
        "base",
        "kernel",
        "initrd",
        "workdir",
        "accel",
    )

    def __init__(self, **kwargs):
        for field in self.FIELDS:
            setattr(self, field, kwargs[field])
        if self.memory_mib < MIN_MEMORY_MIB:
            raise LabError(
                "VM %s: memory_mib=%d is too small; give each lab VM at least %d MiB "
                "(Debian with sshd and python3 needs it)"
                % (self.name, self.memory_mib, MIN_MEMORY_MIB)
            )
        if self.cpus < 1:
            raise LabError("VM %s: cpus=%d; use 1 or more" % (self.name, self.cpus))
        if self.swap_disk_mib < 0:
            raise LabError("VM %s: swap_disk_mib must be 0 (none) or a size in MiB" % self.name)

    def as_dict(self):
        return {field: getattr(self, field) for field in self.FIELDS}

    def config_hash(self):
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def path(self, suffix):
        return os.path.join(self.workdir, self.name + suffix)

    @property
    def label(self):
        return vm_label(self.lab, self.name)


def processes_with_label(prefix):
    """PIDs of QEMU processes whose -name starts with `prefix`."""
    wanted = prefix.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(args[:-1]):
            if arg == b"-name" and args[i + 1].startswith(wanted):
                pids.append(int(entry))
                break
    return pids


def lab_processes(lab):
    return processes_with_label(vm_label(lab, ""))


def all_lab_processes():
    return processes_with_label(LABEL_PREFIX + ".")


def kill_processes(pids, grace_s=10):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace_s
    alive = list(pids)
    while alive and time.time() < deadline:
        alive = [p for p in alive if os.path.exists("/proc/%d" % p) and not _is_zombie(p)]
        time.sleep(0.2)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return bool(pids)


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status(spec):
    """Return the recorded state if the VM runs with this exact configuration, else None."""
    state = read_json(spec.path(".json"))
    if not state or state.get("config_hash") != spec.config_hash():
        return None
    if state.get("pid") not in processes_with_label(spec.label):
        return None
    return state


def qemu_argv(spec, port, tap_fd):
    append = " ".join(
        [
            "root=LABEL=root rw console=ttyS0 net.ifnames=0 panic=-1",
            "systemd.hostname=%s" % spec.name,
            "nswaplab.addr=%s" % spec.address,
            "nswaplab.mac=%s" % mac_address(spec.index),
        ]
    )
    argv = [
        "qemu-system-x86_64",
        "-name",
        "%s,process=nswap-%s" % (spec.label, spec.name),
        "-machine",
        "q35",
        "-accel",
        spec.accel,
        "-cpu",
        "host" if spec.accel == "kvm" else "max",
        "-smp",
        str(spec.cpus),
        "-m",
        str(spec.memory_mib),
        "-display",
        "none",
        "-no-reboot",
        "-daemonize",
        "-pidfile",
        spec.path(".pid"),
        "-kernel",
        spec.kernel,
        "-initrd",
        spec.initrd,
        "-append",
        append,
        # The overlay is thrown away with the VM, so host flushes buy nothing.
        "-drive",
        "file=%s,format=qcow2,if=virtio,cache=unsafe" % spec.path(".qcow2"),
        "-netdev",
        "user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22" % port,
        "-device",
        "virtio-net-pci,netdev=mgmt",
        "-netdev",
        "tap,id=lab,fd=%d" % tap_fd,
        "-device",
        "virtio-net-pci,netdev=lab,mac=%s" % mac_address(spec.index),
        "-serial",
        "file:%s" % spec.path(".serial"),
        "-monitor",
        "unix:%s,server,nowait" % spec.path(".monitor"),
    ]
    if spec.swap_disk_mib:
        # cache=none: disk-swap benchmarks must measure the disk, not the host's page cache.
        argv += [
            "-drive",
            "file=%s,format=raw,if=none,id=swap,cache=none,aio=threads" % spec.path("-swap.raw"),
            "-device",
            "virtio-blk-pci,drive=swap,serial=nswap-swap",
        ]
    return argv


def prepare_disks(spec):
    for suffix in (".qcow2", "-swap.raw", ".serial"):
        if os.path.exists(spec.path(suffix)):
            os.unlink(spec.path(suffix))
    run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            spec.base,
            "-F",
            "qcow2",
            spec.path(".qcow2"),
        ]
    )
    if spec.swap_disk_mib:
        run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "raw",
                spec.path("-swap.raw"),
                "%dM" % spec.swap_disk_mib,
            ]
        )


def launch(spec, tap_fd):
    """Start QEMU (it daemonizes once running); return the SSH port it forwards."""
    error = ""
    for _attempt in range(PORT_ATTEMPTS):
        # A port found free can be taken before QEMU binds it: then QEMU
        # fails to start and we try the next one.
        port = free_port()
        proc = subprocess.run(
            qemu_argv(spec, port, tap_fd),
            pass_fds=(tap_fd,),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode == 0:
            return port
        error = (proc.stderr or proc.stdout).strip()
        if "hostfwd" not in error and "forwarding" not in error:
            break
    raise LabError("VM %s: QEMU failed to start: %s" % (spec.name, error))


def start(spec):
    """(Re)create the VM from scratch and start it; return its state dict."""
    require_commands(HOST_COMMANDS)
    os.makedirs(spec.workdir, exist_ok=True)
    stop(spec)
    prepare_disks(spec)
    tap_fd = net.open_tap(spec.lab, net.tap_name(spec.index))
    try:
        port = launch(spec, tap_fd)
    except LabError:
        stop(spec)  # leave no half-made VM behind
        raise
    finally:
        os.close(tap_fd)
    with open(spec.path(".pid")) as handle:
        pid = int(handle.read().strip())
    state = {
        "config_hash": spec.config_hash(),
        "pid": pid,
        "ssh_port": port,
        "serial_log": spec.path(".serial"),
        "spec": spec.as_dict(),
    }
    write_json_atomic(spec.path(".json"), state)
    return state


def stop(spec):
    """Stop the VM (any process carrying its label) and delete its files."""
    killed = kill_processes(processes_with_label(spec.label))
    removed = False
    for suffix in (".qcow2", "-swap.raw", ".pid", ".monitor", ".json"):
        if os.path.lexists(spec.path(suffix)):
            os.unlink(spec.path(suffix))
            removed = True
    return killed or removed


def console_tail(workdir, name, lines=30):
    return tail_file(os.path.join(workdir, name + ".serial"), lines)
