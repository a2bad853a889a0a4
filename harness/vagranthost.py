# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prepare this host for vagrant-libvirt for the length of one session, then put it back.

What a session changes, and how it is undone on leaving (also after an exception):
- /dev/kvm 0600 root:root -> 0660 root:kvm.  VMs still run under TCG (driver qemu), but
  with 0600 libvirt finds KVM "unusable" for its qemu user and re-probes QEMU's
  capabilities (~44 s) at every domain start.  Mode and group are restored.
- virtlogd and libvirtd are started (no systemd on the project's hosts) unless a libvirtd
  already answers; only daemons this session started are stopped.
- A dir storage pool for the box volume and the VM disks; deleted with its volumes.
- A route guard `unreachable GUARD_CIDR`: once vagrant-libvirt removes its management
  network, that range would be routed out of the default route, so a stale SSH client
  could send packets off the machine.  The network's own /24 route is more specific and
  wins while the network is up.
- Leftovers of the VMs: domains named PREFIX*, the management network, SSH connection
  masters to the management range, and the empty LIBVIRT_* iptables chains that libvirtd
  creates (removed only when they did not exist before the session).
What was changed is written to STATE_FILE first, so `restore()` can undo a killed session.
"""

import contextlib
import fcntl
import grp
import ipaddress
import os
import re
import shutil
import time

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    read_json,
    require_commands,
    run,
    write_json_atomic,
)
from ansible_collections.nswap.cluster.plugins.module_utils.lab.vm import kill_processes

LIBVIRT_URI = "qemu:///system"
# Names of everything libvirt holds for these VMs; the scenario's molecule.yml gets them
# through session_env() so that they are written down only here.
PREFIX = "nswap-vagrant-"
POOL = "nswap-vagrant"
NETWORK = "nswap-vagrant-mgmt"
NETWORK_CIDR = "192.168.121.0/24"
# Each VM's serial console (kernel and systemd messages, also at shutdown) goes to
# <CONSOLE_DIR>/<name>.log; a session empties it first, so what is there after a failed
# run is that run's.
CONSOLE_DIR = "/var/log/nswap-vagrant"
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # systemd's colours on the console
GUARD_CIDR = "192.168.120.0/22"
KVM_DEVICE = "/dev/kvm"
KVM_MODE = 0o660
KVM_GROUP = "kvm"
DAEMON_WAIT_S = 30
IPTABLES = ("iptables", "ip6tables")
LIBVIRT_FILTER_JUMPS = (
    ("INPUT", "LIBVIRT_INP"),
    ("OUTPUT", "LIBVIRT_OUT"),
    ("FORWARD", "LIBVIRT_FWX"),
    ("FORWARD", "LIBVIRT_FWI"),
    ("FORWARD", "LIBVIRT_FWO"),
)
HOST_COMMANDS = {
    "virsh": "libvirt-clients",
    "libvirtd": "libvirt-daemon",
    "virtlogd": "libvirt-daemon",
    "dnsmasq": "dnsmasq-base",
    "vagrant": "vagrant",
    "ip": "iproute2",
    "iptables": "iptables",
}


def virsh(*args, check=True, timeout=120):
    return run(["virsh", "-q", "-c", LIBVIRT_URI] + list(args), check=check, timeout=timeout)


def paths(data_dir):
    return {
        "state": os.path.join(data_dir, "host-state.json"),
        "pool": os.path.join(data_dir, "pool"),
        "run": os.path.join(data_dir, "run"),
    }


def libvirtd_answers():
    return virsh("uri", check=False, timeout=20).returncode == 0


def _pid_alive(pid):
    return bool(pid) and os.path.exists("/proc/%d" % pid)


def _read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def start_daemons(run_dir, started):
    """Start virtlogd + libvirtd unless libvirtd answers; record their PIDs in `started`
    as soon as each runs (so that a failure later still stops them)."""
    if libvirtd_answers():
        return
    os.makedirs(run_dir, exist_ok=True)
    for daemon in ("virtlogd", "libvirtd"):
        pidfile = os.path.join(run_dir, daemon + ".pid")
        run([shutil.which(daemon) or daemon, "-d", "--pid-file", pidfile], timeout=60)
        deadline = time.time() + DAEMON_WAIT_S
        while not _pid_alive(_read_pid(pidfile)) and time.time() < deadline:
            time.sleep(0.2)
        started[daemon] = _read_pid(pidfile)
        if not _pid_alive(started[daemon]):
            raise LabError("%s did not start; see /var/log/libvirt/" % daemon)
    deadline = time.time() + DAEMON_WAIT_S
    while not libvirtd_answers():
        if time.time() > deadline:
            raise LabError(
                "libvirtd started but %s does not answer after %ss; see "
                "/var/log/libvirt/libvirtd.log" % (LIBVIRT_URI, DAEMON_WAIT_S)
            )
        time.sleep(0.5)


def stop_daemons(started):
    # libvirtd first: it holds a connection to virtlogd.
    for daemon in ("libvirtd", "virtlogd"):
        pid = started.get(daemon)
        if pid and _pid_alive(pid) and _is_daemon(pid, daemon):
            kill_processes([pid], grace_s=20)


def _is_daemon(pid, name):
    try:
        with open("/proc/%d/comm" % pid) as handle:
            return handle.read().strip() == name
    except OSError:
        return False


def kvm_state():
    if not os.path.exists(KVM_DEVICE):
        return None
    st = os.stat(KVM_DEVICE)
    return {"mode": st.st_mode & 0o7777, "gid": st.st_gid}


def open_kvm():
    before = kvm_state()
    if before is not None:
        os.chown(KVM_DEVICE, -1, grp.getgrnam(KVM_GROUP).gr_gid)
        os.chmod(KVM_DEVICE, KVM_MODE)
    return before


def restore_kvm(before):
    if before is not None and os.path.exists(KVM_DEVICE):
        os.chown(KVM_DEVICE, -1, before["gid"])
        os.chmod(KVM_DEVICE, before["mode"])


def route_guard_present():
    out = run(["ip", "route", "show", "type", "unreachable", GUARD_CIDR], check=False).stdout
    return bool(out.strip())


def add_route_guard():
    """Add the guard; True if this call added it."""
    if route_guard_present():
        return False
    run(["ip", "route", "add", "unreachable", GUARD_CIDR])
    return True


def remove_route_guard():
    if route_guard_present():
        run(["ip", "route", "del", "unreachable", GUARD_CIDR])


def libvirt_chains_exist():
    return run(["iptables", "-S", "LIBVIRT_INP"], check=False).returncode == 0


def remove_libvirt_chains():
    """Drop the (empty once no network runs) chains libvirtd adds; missing ones are fine."""
    for ipt in IPTABLES:
        if shutil.which(ipt) is None:
            continue
        for parent, chain in LIBVIRT_FILTER_JUMPS:
            run([ipt, "-D", parent, "-j", chain], check=False)
        for _parent, chain in LIBVIRT_FILTER_JUMPS:
            run([ipt, "-F", chain], check=False)
            run([ipt, "-X", chain], check=False)
        for table in ("nat", "mangle"):
            run([ipt, "-t", table, "-D", "POSTROUTING", "-j", "LIBVIRT_PRT"], check=False)
            run([ipt, "-t", table, "-F", "LIBVIRT_PRT"], check=False)
            run([ipt, "-t", table, "-X", "LIBVIRT_PRT"], check=False)


def ensure_pool(pool_dir):
    # also when the pool is still defined: its directory may be gone (a killed session)
    os.makedirs(pool_dir, mode=0o755, exist_ok=True)
    if virsh("pool-info", POOL, check=False).returncode != 0:
        virsh("pool-define-as", POOL, "dir", "--target", pool_dir)
    if "running" not in virsh("pool-info", POOL).stdout.split("State:", 1)[-1].split("\n")[0]:
        virsh("pool-start", POOL)


def remove_pool(pool_dir):
    if virsh("pool-info", POOL, check=False).returncode == 0:
        virsh("pool-refresh", POOL, check=False)
        for line in virsh("vol-list", POOL, check=False).stdout.splitlines():
            if line.split():
                virsh("vol-delete", "--pool", POOL, line.split()[0], check=False)
        virsh("pool-destroy", POOL, check=False)
        virsh("pool-undefine", POOL, check=False)
    if os.path.isdir(pool_dir):
        shutil.rmtree(pool_dir)


def domains():
    names = virsh("list", "--all", "--name", check=False).stdout.split()
    return [name for name in names if name.startswith(PREFIX)]


def networks():
    names = virsh("net-list", "--all", "--name", check=False).stdout.split()
    return [name for name in names if name == NETWORK]


def remove_domains():
    for name in domains():
        virsh("destroy", name, check=False)
        virsh("undefine", name, "--nvram", check=False)
        with contextlib.suppress(OSError):
            os.unlink("/var/log/libvirt/qemu/%s.log" % name)


def remove_networks():
    for name in networks():
        virsh("net-destroy", name, check=False)
        virsh("net-undefine", name, check=False)


IPV4_RE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def ssh_to_vms():
    """PIDs of ssh clients talking to the management range (see mentions_vm_address)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as handle:
                if handle.read().strip() != "ssh":
                    continue
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        if mentions_vm_address(cmdline):
            pids.append(int(entry))
    return pids


def mentions_vm_address(cmdline):
    """True if an IPv4 address of the management range appears anywhere in cmdline.
    A ControlPersist master rewrites its command line to "ssh: <ControlPath> [mux]", and
    Ansible's ControlPath names the address (.../cp/192.168.121.9-22-root)."""
    net = ipaddress.ip_network(NETWORK_CIDR)
    for address in IPV4_RE.findall(cmdline):
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(address) in net:
                return True
    return False


def leftovers(data_dir):
    """What a finished session must not leave behind, by kind (empty dict: clean)."""
    found = {}
    state = read_json(paths(data_dir)["state"])
    if state is not None:
        found["state_file"] = paths(data_dir)["state"]
    if libvirtd_answers():
        found["libvirtd"] = "answers on %s" % LIBVIRT_URI
        if domains():
            found["domains"] = domains()
        if networks():
            found["networks"] = networks()
        if virsh("pool-info", POOL, check=False).returncode == 0:
            found["pool"] = POOL
    if os.path.isdir(paths(data_dir)["pool"]):
        found["pool_dir"] = paths(data_dir)["pool"]
    if route_guard_present():
        found["route_guard"] = GUARD_CIDR
    if ssh_to_vms():
        found["ssh"] = ssh_to_vms()
    return found


@contextlib.contextmanager
def session_lock(data_dir):
    """One session (or cleanup) at a time per data_dir; a second one fails at once."""
    os.makedirs(data_dir, mode=0o755, exist_ok=True)
    path = os.path.join(data_dir, "lock")
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise LabError(
                "another vagrant-lab session (pid %s) uses %s; wait for it to end"
                % (handle.read().strip() or "?", data_dir)
            )
        handle.seek(0)
        handle.truncate()
        handle.write("%d\n" % os.getpid())
        handle.flush()
        yield


def restore(data_dir):
    """Undo what the recorded session changed; a no-op without a state file.
    Call it holding session_lock()."""
    files = paths(data_dir)
    state = read_json(files["state"])
    if state is None:
        return False
    errors = []
    started = dict(state.get("started") or {})
    if not libvirtd_answers():
        # A killed session's libvirtd may be gone while its persistent definitions
        # (domains, network, pool) are not: without a libvirtd to undefine them, the pool
        # would stay defined over a deleted directory and the next pool-start fail.  Start
        # one for the purpose; it is stopped below with the session's own.
        try:
            start_daemons(files["run"], started)
        except (LabError, OSError) as exc:
            errors.append("libvirtd: %s" % exc)
        state["started"] = started
        write_json_atomic(files["state"], state)
    steps = (
        ("ssh masters", lambda: kill_processes(ssh_to_vms(), grace_s=5)),
        ("domains", remove_domains),
        ("networks", remove_networks),
        ("pool", lambda: remove_pool(files["pool"])),
        ("daemons", lambda: stop_daemons(started)),
        (
            "iptables chains",
            lambda: (
                remove_libvirt_chains()
                if state.get("started") and not state.get("chains_existed")
                else None
            ),
        ),
        ("route guard", lambda: remove_route_guard() if state.get("route_added") else None),
        ("/dev/kvm", lambda: restore_kvm(state.get("kvm"))),
    )
    for what, step in steps:
        try:
            step()
        except (LabError, OSError) as exc:
            errors.append("%s: %s" % (what, exc))
    if errors:
        raise LabError(
            "could not restore the host completely (%s); fix that and run "
            "`scripts/vagrant-lab cleanup` again" % "; ".join(errors)
        )
    os.unlink(files["state"])
    return True


def session_env(box, base=None):
    """Environment for vagrant and molecule inside a session; box: vagrantbox.ensure_box()."""
    env = dict(os.environ if base is None else base)
    env.update(
        VAGRANT_HOME=box["vagrant_home"],
        VAGRANT_DEFAULT_PROVIDER="libvirt",
        # No update checks: traffic goes only to this machine.
        VAGRANT_CHECKPOINT_DISABLE="1",
        VAGRANT_BOX_UPDATE_CHECK_DISABLE="1",
        LIBVIRT_DEFAULT_URI=LIBVIRT_URI,
        NSWAP_VAGRANT_BOX=box["name"],
        NSWAP_VAGRANT_BOX_FILE=box["box"],
        NSWAP_VAGRANT_PREFIX=PREFIX,
        NSWAP_VAGRANT_POOL=POOL,
        NSWAP_VAGRANT_NETWORK=NETWORK,
        NSWAP_VAGRANT_NETWORK_CIDR=NETWORK_CIDR,
        NSWAP_VAGRANT_CONSOLE_DIR=CONSOLE_DIR,
    )
    return env


def reset_consoles():
    os.makedirs(CONSOLE_DIR, mode=0o755, exist_ok=True)
    for name in os.listdir(CONSOLE_DIR):
        if name.endswith(".log"):
            os.unlink(os.path.join(CONSOLE_DIR, name))


def console_tails(lines=40):
    """{VM name: the last lines of its console} of the last session's VMs."""
    tails = {}
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(CONSOLE_DIR)):
            if name.endswith(".log"):
                with open(os.path.join(CONSOLE_DIR, name), errors="replace") as handle:
                    text = ANSI_RE.sub("", handle.read().replace("\r", ""))
                tails[name[: -len(".log")]] = "\n".join(text.splitlines()[-lines:])
    return tails


@contextlib.contextmanager
def session(data_dir):
    """Host ready for vagrant-libvirt inside the block; put back as it was on leaving."""
    require_commands(HOST_COMMANDS)
    files = paths(data_dir)
    with session_lock(data_dir):
        restore(data_dir)  # what a killed earlier session left
        reset_consoles()
        state = {"kvm": kvm_state(), "chains_existed": libvirt_chains_exist(), "started": {}}
        write_json_atomic(files["state"], state)
        try:
            open_kvm()
            state["route_added"] = add_route_guard()
            write_json_atomic(files["state"], state)
            try:
                start_daemons(files["run"], state["started"])
            finally:
                write_json_atomic(files["state"], state)
            ensure_pool(files["pool"])
            yield files
        finally:
            restore(data_dir)
