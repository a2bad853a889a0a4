# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Save a node's swap state before the benchmark and put it back afterwards.

    python3 nswap_bench_swapstate.py begin   --state /var/lib/nswap-benchmark/saved-swap.json
    python3 nswap_bench_swapstate.py restore --state /var/lib/nswap-benchmark/saved-swap.json

The state is what the benchmark changes: the active swap areas (/proc/swaps: name,
type, priority, in activation order), nswap.ko's configfs devices (size, servers,
connection settings, power), whether nswap.ko is loaded, and the boot unit
nswap-client.service (enabled, active).

``begin`` first restores a state file left by an interrupted run (and checks it),
then saves the current state anew.  ``restore`` puts the saved state back, reads the
state again and compares: on success it removes the file and exits 0; on a difference
it keeps the file (the next ``begin`` tries again) and exits 1 naming every
difference.  Each prints one JSON line: {"changed": bool, "actions": [...],
"differences": [...], "state": {...}}.

Restoring: areas that were not saved are swapped off (and nswap devices that were not
saved removed); the saved areas that are not on are swapped on with their saved
priorities in their saved order (areas already on after the first difference are
swapped off first, so the order comes out the same).  An nswap device that is missing
is recreated by restarting nswap-client.service when that unit manages it, else from the
saved attributes; an nswap device whose swap header the servers no longer hold gets a
fresh one (mkswap: the area is off and holds no pages).  Python 3 standard library
only: it runs on bare nodes.
"""

import argparse
import json
import os
import subprocess
import sys

STATE_VERSION = 1
PROC_SWAPS = "/proc/swaps"
CONFIGFS = "/sys/kernel/config/nswap"
MODULE = "/sys/module/nswap"
UNIT = "nswap-client.service"
UNIT_CONF = "/etc/nswap/client.conf"
# configfs attributes saved and written back (docs/kmod.md); servers and power apart.
DEVICE_SETTINGS = ("size", "connections_per_server", "timeout_ms", "retries")


class RestoreError(Exception):
    """A step of the restore failed; the message names it."""


def parse_proc_swaps(text):
    """/proc/swaps -> [{"name", "type", "priority"}] in its (activation) order."""
    areas = []
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Filename"):
        raise ValueError("not /proc/swaps: the first line should be its header, got %r" % text[:80])
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 5:
            raise ValueError("bad /proc/swaps line %r: expected 5 fields" % line)
        # a file's name may contain spaces: the last four fields are type, size, used, prio
        name = " ".join(fields[:-4]).replace("\\040", " ")
        areas.append({"name": name, "type": fields[-4], "priority": int(fields[-1])})
    return areas


def parse_servers(text):
    """configfs `servers` ("ADDR:PORT STATE" lines) -> [ADDR:PORT]."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def parse_unit_conf(text):
    """/etc/nswap/client.conf (shell assignments) -> {KEY: value}."""
    values = {}
    for line in text.splitlines():
        line = line.strip()  # noqa: PLW2901
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"')
    return values


def _area_key(area):
    return (area["name"], area["type"], area["priority"])


def differences(saved, current):
    """What differs between two states, as sentences; [] when they are the same."""
    found = []
    if [_area_key(a) for a in saved["swaps"]] != [_area_key(a) for a in current["swaps"]]:
        found.append(
            "swap areas (name type priority, in order): saved %s, now %s"
            % (_areas_text(saved["swaps"]), _areas_text(current["swaps"]))
        )
    saved_devices, current_devices = saved["nswap_devices"], current["nswap_devices"]
    if sorted(saved_devices) != sorted(current_devices):
        found.append(
            "nswap devices: saved %s, now %s"
            % (sorted(saved_devices) or "none", sorted(current_devices) or "none")
        )
    for name in sorted(set(saved_devices) & set(current_devices)):
        for key in ("power", "servers") + DEVICE_SETTINGS:
            if saved_devices[name].get(key) != current_devices[name].get(key):
                found.append(
                    "nswap device %s %s: saved %r, now %r"
                    % (name, key, saved_devices[name].get(key), current_devices[name].get(key))
                )
    if saved["nswap_module"] != current["nswap_module"]:
        found.append(
            "nswap.ko: saved %s, now %s"
            % (_loaded(saved["nswap_module"]), _loaded(current["nswap_module"]))
        )
    for key in ("enabled", "active"):
        if saved["unit"][key] != current["unit"][key]:
            found.append(
                "%s %s: saved %r, now %r" % (UNIT, key, saved["unit"][key], current["unit"][key])
            )
    return found


def _loaded(flag):
    return "loaded" if flag else "not loaded"


def _areas_text(areas):
    return "[%s]" % ", ".join("%s %s %d" % _area_key(a) for a in areas) if areas else "none"


def _device_of(devices, area_name):
    """The saved configfs name of the nswap device behind /dev/nswapN, or None."""
    for name, device in devices.items():
        if device.get("index") is not None and area_name == "/dev/nswap%s" % device["index"]:
            return name
    return None


class System:
    """The node: reads the state and carries out the steps.  Tests replace it."""

    def __init__(self, proc_swaps=PROC_SWAPS, configfs=CONFIGFS, module=MODULE):
        self.proc_swaps, self.configfs, self.module = proc_swaps, configfs, module

    # reading
    def read_state(self):
        with open(self.proc_swaps) as handle:
            swaps = parse_proc_swaps(handle.read())
        return {
            "version": STATE_VERSION,
            "swaps": swaps,
            "nswap_devices": self.read_devices(),
            "nswap_module": os.path.isdir(self.module),
            "unit": self.read_unit(),
        }

    def read_devices(self):
        devices = {}
        if not os.path.isdir(self.configfs):
            return devices
        for name in sorted(os.listdir(self.configfs)):
            path = os.path.join(self.configfs, name)
            device = {"servers": parse_servers(_read(os.path.join(path, "servers")))}
            for key in DEVICE_SETTINGS + ("power", "index"):
                device[key] = _read(os.path.join(path, key)).strip()
            devices[name] = device
        return devices

    def read_unit(self):
        enabled = _run_out(["systemctl", "is-enabled", UNIT])
        active = _run_out(["systemctl", "is-active", UNIT])
        device = None
        if os.path.exists(UNIT_CONF):
            with open(UNIT_CONF) as handle:
                device = parse_unit_conf(handle.read()).get("NSWAP_DEVICE")
        return {"enabled": enabled or "not-found", "active": active or "unknown", "device": device}

    # steps
    def swapon(self, name, priority):
        argv = ["swapon", name] if priority < 0 else ["swapon", "--priority", str(priority), name]
        return _run(argv, check=False)

    def swapoff(self, name):
        _run(["swapoff", name])

    def mkswap(self, name):
        _run(["mkswap", name])

    def restart_unit(self):
        _run(["systemctl", "restart", UNIT])

    def set_unit_enabled(self, enabled):
        _run(["systemctl", "enable" if enabled else "disable", UNIT])

    def remove_device(self, name):
        path = os.path.join(self.configfs, name)
        if _read(os.path.join(path, "power")).strip() == "1":
            _write(os.path.join(path, "power"), "0")
        os.rmdir(path)

    def create_device(self, name, device):
        _run(["modprobe", "nswap"])
        path = os.path.join(self.configfs, name)
        os.mkdir(path)
        for key in DEVICE_SETTINGS:
            _write(os.path.join(path, key), device[key])
        for server in device["servers"]:
            _write(os.path.join(path, "servers"), "add %s" % server)
        if device["power"] == "1":
            _write(os.path.join(path, "power"), "1")
        _run(["udevadm", "settle", "--timeout=30"], check=False)

    def unload_module(self):
        _run(["modprobe", "-r", "nswap"])


def _read(path):
    with open(path) as handle:
        return handle.read()


def _write(path, text):
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError as err:
        raise RestoreError("writing %r to %s: %s" % (text, path, err)) from err


def _run(argv, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RestoreError(
            "%s failed (exit %d): %s" % (" ".join(argv), proc.returncode, proc.stderr.strip())
        )
    return proc


def _run_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def restore(system, saved):
    """Bring the node back to `saved`; returns the steps taken, as strings."""
    actions = []
    current = system.read_state()
    saved_keys = [_area_key(a) for a in saved["swaps"]]
    # 1. keep the longest prefix that is already right; everything after it goes off, so
    #    that the saved areas come back in their saved order
    keep = 0
    for area in current["swaps"]:
        if keep < len(saved_keys) and _area_key(area) == saved_keys[keep]:
            keep += 1
        else:
            break
    for area in reversed(current["swaps"][keep:]):
        system.swapoff(area["name"])
        actions.append("swapoff %s" % area["name"])
    # 2. nswap devices the saved state does not have (a run's own, left by an interruption)
    for name in sorted(set(current["nswap_devices"]) - set(saved["nswap_devices"])):
        system.remove_device(name)
        actions.append("remove nswap device %s" % name)
    # 3. the boot unit's enablement (the benchmark never changes it; a user might have)
    unit = saved["unit"]
    if unit["enabled"] in ("enabled", "disabled") and current["unit"]["enabled"] != unit["enabled"]:
        system.set_unit_enabled(unit["enabled"] == "enabled")
        actions.append("systemctl %s %s" % (unit["enabled"][:-1], UNIT))
    unit_device = unit.get("device") if unit["active"] == "active" else None
    # 4. the saved areas after the prefix, in order
    for area in saved["swaps"][keep:]:
        device = _device_of(saved["nswap_devices"], area["name"])
        devices_now = system.read_devices()
        if device is not None and (
            device not in devices_now or devices_now[device]["power"] != "1"
        ):
            if device == unit_device:
                # its ExecStart recreates the device and swaps on it with NSWAP_PRIORITY
                system.restart_unit()
                actions.append("systemctl restart %s" % UNIT)
            else:
                if device in devices_now:
                    system.remove_device(device)
                system.create_device(device, saved["nswap_devices"][device])
                actions.append("create nswap device %s" % device)
        on = {a["name"]: a for a in system.read_state()["swaps"]}
        if area["name"] in on:
            if on[area["name"]]["priority"] == area["priority"]:
                continue
            system.swapoff(area["name"])
            actions.append(
                "swapoff %s (priority %d, saved %d)"
                % (area["name"], on[area["name"]]["priority"], area["priority"])
            )
        proc = system.swapon(area["name"], area["priority"])
        if proc.returncode != 0 and device is not None:
            # the servers no longer hold the header: a fresh area (it is off, holds no pages)
            system.mkswap(area["name"])
            actions.append("mkswap %s (swap header lost: %s)" % (area["name"], proc.stderr.strip()))
            proc = system.swapon(area["name"], area["priority"])
        if proc.returncode != 0:
            raise RestoreError(
                "swapon %s at priority %d failed: %s"
                % (area["name"], area["priority"], proc.stderr.strip())
            )
        actions.append("swapon %s priority %d" % (area["name"], area["priority"]))
    # 5. saved devices that are not swap areas (e.g. configured but not swapped on)
    devices_now = system.read_devices()
    for name, device in sorted(saved["nswap_devices"].items()):
        if name not in devices_now:
            system.create_device(name, device)
            actions.append("create nswap device %s" % name)
    # 6. the unit's active state, then nswap.ko if the benchmark loaded it
    if unit["active"] == "active" and system.read_unit()["active"] != "active":
        system.restart_unit()
        actions.append("systemctl restart %s" % UNIT)
    if (
        not saved["nswap_module"]
        and not system.read_devices()
        and system.read_state()["nswap_module"]
    ):
        system.unload_module()
        actions.append("modprobe -r nswap")
    return actions


def load(path):
    with open(path) as handle:
        state = json.load(handle)
    if state.get("version") != STATE_VERSION:
        raise RestoreError(
            "%s has state version %r, this script reads %d: check it by hand, then delete it"
            % (path, state.get("version"), STATE_VERSION)
        )
    return state


def save(path, state):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def restore_and_check(system, path):
    """Restore from `path`, compare; (actions, differences, state).  Removes `path` when
    the node matches it."""
    saved = load(path)
    actions = restore(system, saved)
    state = system.read_state()
    found = differences(saved, state)
    if not found:
        os.unlink(path)
    return actions, found, state


def main(argv=None, system=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=("begin", "restore"))
    parser.add_argument("--state", required=True, help="the saved state file")
    args = parser.parse_args(argv)
    system = system or System()
    actions, found = [], []
    try:
        if os.path.exists(args.state):
            # begin: an interrupted run left it; restore: the end of this run
            actions, found, state = restore_and_check(system, args.state)
        elif args.command == "restore":
            raise RestoreError(
                "%s does not exist: nothing was saved, so nothing can be restored" % args.state
            )
        if args.command == "begin" and not found:
            state = system.read_state()
            save(args.state, state)
    except (OSError, ValueError, RestoreError) as err:
        print(json.dumps({"changed": bool(actions), "actions": actions, "error": str(err)}))
        print("swap state: %s" % err, file=sys.stderr)
        return 1
    print(
        json.dumps(
            {"changed": bool(actions), "actions": actions, "differences": found, "state": state}
        )
    )
    if found:
        print(
            "swap state differs from the saved one (%s kept): %s" % (args.state, "; ".join(found)),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
