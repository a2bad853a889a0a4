# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build and cache the lab's Debian image (debootstrap), keyed by its recipe.

Layout of a finished image directory (~/.cache/nswap/images/<suite>-<hash>/):
    base.qcow2   root file system (ext4, no partition table, no bootloader)
    vmlinuz      kernel, booted directly by QEMU
    initrd.img   its initramfs
    sshkey       private key whose public half is root's authorized key
    recipe.json  what the hash covers
A directory is only ever renamed into place when complete, so a killed build
leaves a *.partial-* directory that the next build sweeps.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import time

from ansible_collections.nswap.cluster.plugins.module_utils.lab import guestfiles
from ansible_collections.nswap.cluster.plugins.module_utils.lab.aptsources import (
    host_sources,
    mirrors_for,
)
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    read_json,
    remove_tree,
    require_commands,
    run,
    write_json_atomic,
)
from ansible_collections.nswap.cluster.plugins.module_utils.lab.kernelabi import resolve_kernel_abi

# Bump when the build procedure below changes in a way the recipe cannot see.
RECIPE_VERSION = 3
IMAGE_SIZE = "6G"
HOST_COMMANDS = {
    "debootstrap": "debootstrap",
    "qemu-img": "qemu-utils",
    "mkfs.ext4": "e2fsprogs",
    "ssh-keygen": "openssh-client",
    "chroot": "coreutils",
}
CHROOT_MOUNTS = (("proc", "proc", "proc"), ("sysfs", "sys", "sys"))
CHROOT_BINDS = ("dev", "dev/pts")


def recipe(suite, abi, mirrors):
    return {
        "recipe_version": RECIPE_VERSION,
        "suite": suite,
        "kernel_abi": abi,
        "mirrors": mirrors,
        "base_packages": list(guestfiles.BASE_PACKAGES),
        "extra_packages": list(guestfiles.EXTRA_PACKAGES),
        "files": {k: [v[0], v[1]] for k, v in sorted(guestfiles.GUEST_FILES.items())},
        "masked_units": list(guestfiles.MASKED_UNITS),
        "enabled_units": list(guestfiles.ENABLED_UNITS),
        "image_size": IMAGE_SIZE,
    }


def recipe_hash(rec):
    blob = json.dumps(rec, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def host_suite(root="/"):
    with open(os.path.join(root, "etc/os-release")) as handle:
        for line in handle:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise LabError("cannot read VERSION_CODENAME from /etc/os-release (is this Debian?)")


def describe(cache_dir, suite=None):
    """Work out the wanted recipe and where its image lives, without building."""
    suite = suite or host_suite()
    mirrors = mirrors_for(suite, host_sources())
    abi = resolve_kernel_abi()
    rec = recipe(suite, abi, mirrors)
    key = "%s-%s" % (suite, recipe_hash(rec))
    path = os.path.join(cache_dir, "images", key)
    return rec, key, path


def image_files(path):
    return {
        "dir": path,
        "base": os.path.join(path, "base.qcow2"),
        "kernel": os.path.join(path, "vmlinuz"),
        "initrd": os.path.join(path, "initrd.img"),
        "sshkey": os.path.join(path, "sshkey"),
    }


def is_complete(path):
    files = image_files(path)
    return read_json(os.path.join(path, "recipe.json")) is not None and all(
        os.path.exists(files[k]) for k in ("base", "kernel", "initrd", "sshkey")
    )


class Builder:
    """Runs the build steps, logging each to build.log (tail -f it to follow)."""

    def __init__(self, rec, final_path, log_path):
        self.rec = rec
        self.final_path = final_path
        self.work = "%s.partial-%d" % (final_path, os.getpid())
        self.rootfs = os.path.join(self.work, "rootfs")
        self.log_path = log_path
        self.mounted = []

    def log(self, message):
        with open(self.log_path, "a") as handle:
            handle.write("%s %s\n" % (time.strftime("%H:%M:%S"), message))

    def step(self, message, argv, timeout=1800, env=None):
        self.log(message)
        started = time.time()
        proc = run(argv, timeout=timeout, env=env)
        self.log("  done in %.0fs" % (time.time() - started))
        return proc

    def chroot(self, message, argv, timeout=1800):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
        return self.step(message, ["chroot", self.rootfs] + argv, timeout=timeout, env=env)

    def mount_chroot(self):
        for fstype, source, target in CHROOT_MOUNTS:
            where = os.path.join(self.rootfs, target)
            run(["mount", "-t", fstype, source, where])
            self.mounted.append(where)
        for target in CHROOT_BINDS:
            where = os.path.join(self.rootfs, target)
            run(["mount", "--bind", "/" + target, where])
            self.mounted.append(where)

    def umount_chroot(self):
        while self.mounted:
            run(["umount", "-l", self.mounted.pop()], check=False)

    def write_file(self, guest_path, mode, content):
        path = os.path.join(self.rootfs, guest_path.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "w") as handle:
            handle.write(content)
        os.chmod(path, mode)

    def build(self):
        os.makedirs(self.work)
        rec = self.rec
        mirrors = rec["mirrors"]
        suite = rec["suite"]
        self.step(
            "debootstrap %s from %s (about 3 minutes)" % (suite, mirrors["main"]),
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(rec["base_packages"]),
                suite,
                self.rootfs,
                mirrors["main"],
            ],
        )
        self.write_file(
            "/etc/apt/sources.list",
            0o644,
            "deb {m} {s} main\ndeb {m} {s}-updates main\ndeb {sec} {s}-security main\n".format(
                m=mirrors["main"], sec=mirrors["security"], s=suite
            ),
        )
        # Keep package maintainer scripts from starting daemons in the chroot.
        self.write_file("/usr/sbin/policy-rc.d", 0o755, "#!/bin/sh\nexit 101\n")
        for guest_path, (mode, content) in sorted(rec["files"].items()):
            self.write_file(guest_path, mode, content)
        self.mount_chroot()
        try:
            self.chroot("apt-get update", ["apt-get", "update"])
            abi = rec["kernel_abi"]
            packages = ["linux-image-" + abi, "linux-headers-" + abi] + rec["extra_packages"]
            self.chroot(
                "install kernel %s, headers and tools (about 3 minutes)" % abi,
                ["apt-get", "install", "-y", "--no-install-recommends"] + packages,
            )
            self.chroot("apt-get clean", ["apt-get", "clean"])
            self.chroot("generate ssh host keys", ["ssh-keygen", "-A"])
            self.chroot("mask slow units", ["systemctl", "mask"] + rec["masked_units"])
            self.chroot("enable units", ["systemctl", "enable"] + rec["enabled_units"])
        finally:
            self.umount_chroot()
        os.unlink(os.path.join(self.rootfs, "usr/sbin/policy-rc.d"))
        self.install_ssh_key()
        self.pack()
        write_json_atomic(os.path.join(self.work, "recipe.json"), rec)
        remove_tree(self.rootfs)
        os.rename(self.work, self.final_path)
        self.log("image ready: %s" % self.final_path)

    def install_ssh_key(self):
        key = os.path.join(self.work, "sshkey")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nswap-lab", "-f", key])
        with open(key + ".pub") as handle:
            pub = handle.read()
        ssh_dir = os.path.join(self.rootfs, "root/.ssh")
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        self.write_file("/root/.ssh/authorized_keys", 0o600, pub)

    def pack(self):
        boot = os.path.join(self.rootfs, "boot")
        abi = self.rec["kernel_abi"]
        for name, dest in (("vmlinuz-", "vmlinuz"), ("initrd.img-", "initrd.img")):
            src = os.path.join(boot, name + abi)
            if not os.path.exists(src):
                raise LabError("image build produced no %s; see %s" % (src, self.log_path))
            run(["cp", src, os.path.join(self.work, dest)])
        raw = os.path.join(self.work, "rootfs.raw")
        self.step("truncate", ["truncate", "-s", IMAGE_SIZE, raw])
        self.step(
            "mkfs.ext4 -d (pack the root file system)",
            ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", self.rootfs, raw],
        )
        self.step(
            "convert to qcow2",
            [
                "qemu-img",
                "convert",
                "-f",
                "raw",
                "-O",
                "qcow2",
                raw,
                os.path.join(self.work, "base.qcow2"),
            ],
        )
        os.unlink(raw)


def sweep_partial_builds(cache_dir):
    """Remove *.partial-* dirs of builds whose process is gone, unmounting first."""
    images = os.path.join(cache_dir, "images")
    if not os.path.isdir(images):
        return []
    removed = []
    for name in sorted(os.listdir(images)):
        if ".partial-" not in name:
            continue
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and os.path.exists("/proc/%s" % pid):
            continue
        path = os.path.join(images, name)
        unmount_below(path)
        remove_tree(path)
        removed.append(path)
    return removed


def unmount_below(path):
    prefix = os.path.realpath(path) + "/"
    with open("/proc/mounts") as handle:
        targets = [line.split()[1] for line in handle]
    for target in sorted((t for t in targets if t.startswith(prefix)), reverse=True):
        run(["umount", "-l", target], check=False)


def ensure_image(cache_dir, check_mode=False):
    """Return (changed, info) where info has the image files and its recipe key."""
    rec, key, path = describe(cache_dir)
    info = dict(image_files(path), key=key, kernel_abi=rec["kernel_abi"], suite=rec["suite"])
    info["log"] = os.path.join(cache_dir, "images", key + ".build.log")
    if is_complete(path):
        return False, info
    if check_mode:
        return True, info
    require_commands(HOST_COMMANDS)
    os.makedirs(os.path.join(cache_dir, "images"), exist_ok=True)
    sweep_partial_builds(cache_dir)
    if os.path.exists(path):  # an incomplete final dir: never trust it
        remove_tree(path)
    with open(info["log"], "w") as handle:
        handle.write("building lab image %s\n" % key)
    builder = Builder(rec, path, info["log"])
    try:
        builder.build()
    except BaseException:
        builder.umount_chroot()
        unmount_below(builder.work)
        remove_tree(builder.work)
        raise
    return True, info
