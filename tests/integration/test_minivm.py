"""Boot the mini VM (Debian kernel + busybox initramfs, TCG) and check what kernel tests need.

Each boot takes ~3-6 s here.  Needs: apt access to the Debian archive for the kernel kit
(cached in ~/.cache/nswap/kernel), qemu-system-x86, busybox-static, kmod; root for the netns
test.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from harness import kernel, minivm

BOOT_TIMEOUT_S = 90  # generous: a loaded 2-core host has taken 10 s to boot one VM
SERVER_TIMEOUT_S = 60

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or not os.path.exists("/bin/busybox"),
    reason="needs qemu-system-x86 and busybox-static (apt-get install them)",
)


@pytest.fixture(scope="session")
def kit():
    return kernel.ensure_kernel_kit()


def run(kit, script, **kwargs):
    kwargs.setdefault("timeout_s", BOOT_TIMEOUT_S)
    return minivm.run_script(kit, script, **kwargs)


@pytest.mark.parametrize("status", [0, 7, 77])
def test_exit_status_comes_back_exactly(kit, status):
    result = run(kit, f"echo on-stdout; echo on-stderr >&2; exit {status}\n")
    assert result.exit_status == status, result.console_tail()
    assert result.output == "on-stdout\non-stderr\n"
    assert not result.timed_out
    assert result.kernel_problems == []
    assert "MINIVM: init at uptime" in result.console
    assert result.boot_s is not None and result.wall_s < BOOT_TIMEOUT_S


def test_output_is_not_mixed_with_kernel_messages(kit):
    # Kernel messages printed while the script runs go to the console, not to the output.
    script = "echo before; echo '<0>minivm-kmsg-test' > /dev/kmsg; sleep 0.5; echo after\n"
    result = run(kit, script)
    result.check()
    assert result.output == "before\nafter\n"
    assert "minivm-kmsg-test" in result.console


def test_files_are_copied_with_modes(kit, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("payload-123\n")
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool-ran\n")
    tool.chmod(0o755)
    files = {
        "/root/data.txt": str(data),
        "/usr/local/bin/tool": str(tool),
        "/etc/inline.conf": (b"inline\n", 0o600),
    }
    script = (
        "cat /root/data.txt; /usr/local/bin/tool\n"
        "stat -c '%a %n' /usr/local/bin/tool /etc/inline.conf /root/data.txt\n"
    )
    result = run(kit, script, files=files)
    result.check()
    assert result.output.splitlines() == [
        "payload-123",
        "tool-ran",
        "755 /usr/local/bin/tool",
        "600 /etc/inline.conf",
        "644 /root/data.txt",
    ]


def test_pseudo_filesystems_are_mounted(kit):
    result = run(kit, "cut -d' ' -f2,3 /proc/mounts; ip -o link show lo\n")
    result.check()
    for mount in ("/proc proc", "/sys sysfs", "/dev devtmpfs", "/sys/kernel/config configfs"):
        assert mount in result.output
    assert "/tmp tmpfs" in result.output
    assert "state UNKNOWN" in result.output or "LOOPBACK,UP" in result.output


def test_zram_module_loads_with_deps_and_swaps(kit):
    script = (
        "set -e\n"
        "modprobe zram num_devices=1\n"
        "grep -E '^(zram|zsmalloc) ' /proc/modules | cut -d' ' -f1 | sort\n"
        "echo 64M > /sys/block/zram0/disksize\n"
        "mkswap /dev/zram0 >/dev/null\n"
        "swapon /dev/zram0\n"
        "cat /proc/swaps\n"
    )
    result = run(kit, script, modules=("zram",))
    result.check()
    lines = result.output.splitlines()
    assert lines[:2] == ["zram", "zsmalloc"]
    assert any(line.startswith("/dev/zram0") for line in lines[2:]), result.output


def test_disk_is_attached(kit, tmp_path):
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as handle:
        handle.truncate(16 * 1024 * 1024)
    result = run(kit, "cat /sys/block/vda/size\n", disks=[(str(disk), "raw")])
    result.check()
    assert result.output.strip() == str(16 * 1024 * 1024 // 512)


def _serve_token_once(server, token, received):
    try:
        conn, _peer = server.accept()
        with conn:
            conn.settimeout(10)
            conn.sendall(token + b"\n")
            received.append(conn.recv(100))
    except OSError:
        pass  # the test fails on what the guest printed; this thread only has to end


def test_user_net_reaches_host_loopback(kit):
    token = b"TOKEN-%d" % os.getpid()
    received = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(SERVER_TIMEOUT_S)
        port = server.getsockname()[1]
        thread = threading.Thread(target=_serve_token_once, args=(server, token, received))
        thread.start()
        try:
            result = run(kit, f"echo from-guest | nc -w 10 10.0.2.2 {port}\n", net="user")
        finally:
            thread.join(SERVER_TIMEOUT_S + 15)
    result.check()
    assert result.output.strip() == token.decode()
    assert received == [b"from-guest\n"]


# Runs inside the test namespace: accept one connection, send a token, print what came back.
NETNS_SERVER = (
    """
import socket, sys
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
with socket.create_server((host, port)) as server:
    server.settimeout(%d)
    print("listening", flush=True)
    conn, _peer = server.accept()
    with conn:
        conn.settimeout(10)
        conn.sendall(token + b"\\n")
        print(conn.recv(100).decode().strip(), flush=True)
"""
    % SERVER_TIMEOUT_S
)


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_tap_net_reaches_server_in_netns(kit):
    minivm.sweep_stale_netns()
    token = "TAPTOKEN-%d" % os.getpid()
    with minivm.netns_with_tap("minivm") as tapnet:
        port = 5555
        argv = [sys.executable, "-c", NETNS_SERVER, tapnet.host_ip, str(port), token]
        server = subprocess.Popen(
            tapnet.command(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout.readline().strip() == "listening"
            script = (
                f"ip -o addr show eth0\necho from-tap-guest | nc -w 10 {tapnet.host_ip} {port}\n"
            )
            result = run(kit, script, net=tapnet.nettap)
            server_out, server_err = server.communicate(timeout=SERVER_TIMEOUT_S + 15)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(10)
        netns = tapnet.netns
    assert netns not in minivm.list_netns()
    result.check()
    assert "10.99.0.2/24" in result.output
    assert result.output.splitlines()[-1] == token
    assert server_out.splitlines()[-1] == "from-tap-guest", server_err


# Long enough for the script to start even on a busy host (boots have taken 19 s at load 9).
HANG_TIMEOUT_S = 20


def test_hang_is_killed_at_timeout(kit):
    started = time.monotonic()
    result = run(kit, "echo going-to-hang; sleep 1000\n", timeout_s=HANG_TIMEOUT_S)
    elapsed = time.monotonic() - started
    assert result.exit_status is None
    assert result.timed_out
    assert "timed out" in result.error
    assert elapsed < HANG_TIMEOUT_S + 2 * minivm.KILL_GRACE_S + 5
    assert "going-to-hang" in result.output
    assert "MINIVM: script start" in result.console_tail()


def test_kernel_panic_ends_the_vm_and_is_reported(kit):
    result = run(kit, "echo c > /proc/sysrq-trigger; sleep 60\n")
    assert result.exit_status is None
    assert not result.timed_out  # panic=-1 + -no-reboot: qemu exits by itself
    assert any("Kernel panic" in line for line in result.kernel_problems)
    assert "panic" in result.error
    with pytest.raises(minivm.MiniVMError, match="Kernel panic"):
        result.check()
