# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written into the lab's Debian image.  Part of the image recipe: any
change here changes the recipe hash and so rebuilds the cached image."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Packages baked into the image.  Work inside a TCG VM is slow (an apt-get that
# rebuilds an initrd takes >13 min), so everything later issues need on the
# nodes is installed here once: build tools, headers and dkms for nswap.ko,
# and the benchmark baselines and measuring tools (fio, nbd, iperf3, sockperf).
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "kmod",
    "iputils-ping",
    "netcat-openbsd",
    "procps",
    "util-linux",
    "ca-certificates",
)
# Installed in a second step from <suite>, <suite>-updates and <suite>-security,
# with the kernel ABI the host resolves (so host-built modules load in guests).
EXTRA_PACKAGES = (
    "initramfs-tools",
    "build-essential",
    "dkms",
    "fio",
    "iperf3",
    "sockperf",
    "nbd-client",
    "nbd-server",
    "stress-ng",
    "cgroup-tools",
)

LAB_NET_SCRIPT = """#!/bin/sh
# Configure the lab's private segment from the kernel command line, so that one
# image serves every VM: nswaplab.addr=10.77.0.11/24 nswaplab.mac=52:54:00:..
set -eu
addr=""; mac=""
for word in $(cat /proc/cmdline); do
    case "$word" in
        nswaplab.addr=*) addr="${word#nswaplab.addr=}" ;;
        nswaplab.mac=*) mac="${word#nswaplab.mac=}" ;;
    esac
done
[ -n "$addr" ] && [ -n "$mac" ] || exit 0
for dev in /sys/class/net/*; do
    if [ "$(cat "$dev/address")" = "$mac" ]; then
        ifname="$(basename "$dev")"
        ip link set "$ifname" up
        ip addr replace "$addr" dev "$ifname"
        exit 0
    fi
done
echo "nswap-lab-net: no interface with MAC $mac" >&2
exit 1
"""

LAB_NET_UNIT = """[Unit]
Description=nswap lab private segment address (from the kernel command line)
After=systemd-udev-settle.service network-pre.target
Before=network.target ssh.service
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/nswap-lab-net

[Install]
WantedBy=multi-user.target
"""

# eth0 is QEMU's user-mode NIC (SSH from the controller through hostfwd).
# The private segment NIC is configured by nswap-lab-net, not networkd.
NETWORKD_SLIRP = """[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
ClientIdentifier=mac
"""

# By label: the extra swap disk may enumerate first and take the name vda.
FSTAB = "LABEL=root / ext4 defaults,errors=remount-ro 0 1\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
INITRAMFS_MODULES = "virtio_pci\nvirtio_blk\nvirtio_net\next4\n"
SSHD_LAB = "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"

# Units that cost tens of seconds per boot under TCG and do nothing useful in
# a throwaway lab VM.
MASKED_UNITS = (
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "man-db.timer",
    "fstrim.timer",
    "systemd-networkd-wait-online.service",
)
ENABLED_UNITS = ("systemd-networkd.service", "ssh.service", "nswap-lab-net.service")

GUEST_FILES = {
    "/etc/fstab": (0o644, FSTAB),
    "/etc/hosts": (0o644, HOSTS),
    "/etc/hostname": (0o644, "nswap-lab\n"),
    "/etc/machine-id": (0o444, ""),
    "/etc/initramfs-tools/conf.d/nswap-lab": (0o644, "MODULES=list\n"),
    "/etc/initramfs-tools/modules": (0o644, INITRAMFS_MODULES),
    "/etc/systemd/network/10-slirp.network": (0o644, NETWORKD_SLIRP),
    "/etc/ssh/sshd_config.d/nswap-lab.conf": (0o644, SSHD_LAB),
    "/usr/local/sbin/nswap-lab-net": (0o755, LAB_NET_SCRIPT),
    "/etc/systemd/system/nswap-lab-net.service": (0o644, LAB_NET_UNIT),
}
