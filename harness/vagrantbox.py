# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A vagrant-libvirt box made from the lab image, added under the project's VAGRANT_HOME.

The lab image (image.py) has no bootloader, so the box carries the kernel and initrd and
its embedded Vagrantfile boots them directly.  The box file is cached per image key
(<data_dir>/boxes/<image key>-b<BOX_VERSION>.box); the box added to Vagrant is recorded
in <vagrant_home>/nswap-box.json, and replaced when the image changes.

Everything lives under data_dir (default /var/lib/nswap/vagrant), not under ~root:
QEMU runs as libvirt-qemu and must reach the kernel, initrd and pool volumes.
"""

import json
import os

from ansible_collections.nswap.cluster.plugins.module_utils.lab import guestfiles
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    read_json,
    remove_tree,
    require_commands,
    run,
    write_json_atomic,
)

DEFAULT_DATA_DIR = "/var/lib/nswap/vagrant"
BOX_NAME = "nswap/lab"
# Bump when the box layout below changes: it is part of the cache key.
BOX_VERSION = 1
BOX_STAMP = "nswap-box.json"
HOST_COMMANDS = {"vagrant": "vagrant", "tar": "tar"}

# The image's guest files must give each clone its own DHCP lease: dnsmasq on the
# management network tells clients apart by their DHCP client id, which systemd-networkd
# derives from /etc/machine-id unless ClientIdentifier=mac.
MACHINE_ID = "/etc/machine-id"
ETH0_NETWORK = "/etc/systemd/network/10-slirp.network"

BOX_VAGRANTFILE = """# Embedded in the nswap lab box: boot the lab kernel directly (the image has
# no bootloader), log in as root with the image's key, run under TCG.
Vagrant.configure("2") do |config|
  config.ssh.username = "root"
  config.ssh.private_key_path = File.expand_path("sshkey", __dir__)
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "qemu"
    libvirt.kernel = File.expand_path("vmlinuz", __dir__)
    libvirt.initrd = File.expand_path("initrd.img", __dir__)
    libvirt.cmd_line = "root=LABEL=root rw console=ttyS0 net.ifnames=0 panic=-1"
    libvirt.cpu_mode = "custom"
    libvirt.cpu_model = "qemu64"
    libvirt.disk_bus = "virtio"
    libvirt.graphics_type = "none"
  end
end
"""


def check_image_recipe(files=None):
    """Raise unless the image recipe lets clones of one image get distinct leases."""
    files = guestfiles.GUEST_FILES if files is None else files
    problems = []
    if files.get(MACHINE_ID, (None, "x"))[1] != "":
        problems.append("%s must be empty in the image" % MACHINE_ID)
    network = files.get(ETH0_NETWORK, (None, ""))[1]
    if "Name=eth0" not in network or "ClientIdentifier=mac" not in network:
        problems.append("%s must configure eth0 with ClientIdentifier=mac" % ETH0_NETWORK)
    if problems:
        raise LabError(
            "the lab image recipe (plugins/module_utils/lab/guestfiles.py) cannot make a "
            "Vagrant box: %s; VMs cloned from it would share one DHCP lease" % "; ".join(problems)
        )


def box_key(image_key):
    return "%s-b%d" % (image_key, BOX_VERSION)


def box_paths(data_dir, image_key):
    boxes = os.path.join(data_dir, "boxes")
    return {
        "boxes": boxes,
        "box": os.path.join(boxes, box_key(image_key) + ".box"),
        "vagrant_home": os.path.join(data_dir, "vagrant.d"),
    }


def metadata(image_base):
    """metadata.json of a libvirt box (format v1); virtual size in GiB, rounded up."""
    info = json.loads(run(["qemu-img", "info", "--output=json", image_base]).stdout)
    gib = -(-int(info["virtual-size"]) // (1 << 30))
    return {"provider": "libvirt", "format": "qcow2", "virtual_size": gib}


def build_box_file(image_info, box_file):
    """Pack the image into an uncompressed box (gzip would cost ~30 s for nothing)."""
    stage = "%s.partial-%d" % (box_file, os.getpid())
    remove_tree(stage)
    os.makedirs(stage)
    try:
        for name, source in (
            ("box.img", image_info["base"]),
            ("vmlinuz", image_info["kernel"]),
            ("initrd.img", image_info["initrd"]),
            ("sshkey", image_info["sshkey"]),
        ):
            os.symlink(source, os.path.join(stage, name))
        write_json_atomic(os.path.join(stage, "metadata.json"), metadata(image_info["base"]))
        with open(os.path.join(stage, "Vagrantfile"), "w") as handle:
            handle.write(BOX_VAGRANTFILE)
        tmp_box = box_file + ".tmp"
        run(
            ["tar", "-chf", tmp_box, "-C", stage]
            + ["metadata.json", "Vagrantfile", "box.img", "vmlinuz", "initrd.img", "sshkey"],
            timeout=900,
        )
        os.replace(tmp_box, box_file)
    finally:
        remove_tree(stage)
        remove_tree(box_file + ".tmp")


def added_key(vagrant_home, env):
    """Key of the nswap box Vagrant holds, or None when it holds none."""
    stamp = read_json(os.path.join(vagrant_home, BOX_STAMP), {})
    listed = run(["vagrant", "box", "list", "--machine-readable"], env=env, timeout=120).stdout
    names = [line.split(",")[3] for line in listed.splitlines() if ",box-name," in line]
    return stamp.get("key") if BOX_NAME in names else None


def vagrant_env(vagrant_home, base=None):
    env = dict(os.environ if base is None else base)
    # No update checks: traffic goes only to this machine.
    env.update(
        VAGRANT_HOME=vagrant_home,
        VAGRANT_CHECKPOINT_DISABLE="1",
        VAGRANT_BOX_UPDATE_CHECK_DISABLE="1",
    )
    return env


def ensure_box(data_dir, image_info, check_mode=False):
    """Return (changed, info): the box of image_info built, cached and added to Vagrant."""
    check_image_recipe()
    key = box_key(image_info["key"])
    files = box_paths(data_dir, image_info["key"])
    info = dict(files, name=BOX_NAME, key=key)
    env = vagrant_env(files["vagrant_home"])
    os.makedirs(files["vagrant_home"], mode=0o755, exist_ok=True)
    require_commands(HOST_COMMANDS)
    have = added_key(files["vagrant_home"], env)
    if have == key and os.path.exists(files["box"]):
        return False, info
    if check_mode:
        return True, info
    os.makedirs(files["boxes"], mode=0o755, exist_ok=True)
    for name in os.listdir(files["boxes"]):  # boxes of older images
        if name != os.path.basename(files["box"]):
            remove_tree(os.path.join(files["boxes"], name))
    if not os.path.exists(files["box"]):
        build_box_file(image_info, files["box"])
    stamp = os.path.join(files["vagrant_home"], BOX_STAMP)
    if os.path.exists(stamp):
        os.unlink(stamp)
    run(["vagrant", "box", "remove", "--force", "--all", BOX_NAME], env=env, check=False)
    run(
        ["vagrant", "box", "add", "--force", "--name", BOX_NAME, files["box"]], env=env, timeout=900
    )
    write_json_atomic(stamp, {"key": key})
    return True, info


def remove_box(data_dir):
    """Drop the box from Vagrant and every cached box file; True if anything went."""
    vagrant_home = os.path.join(data_dir, "vagrant.d")
    changed = False
    if os.path.isdir(vagrant_home):
        env = vagrant_env(vagrant_home)
        proc = run(["vagrant", "box", "remove", "--force", "--all", BOX_NAME], env=env, check=False)
        changed = proc.returncode == 0
        remove_tree(vagrant_home)
    boxes = os.path.join(data_dir, "boxes")
    if os.path.isdir(boxes):
        remove_tree(boxes)
        changed = True
    return changed
