"""Pure logic of the kernel kit and the mini VM, on fixed inputs (no apt, no qemu)."""

import io
import lzma
import os
import struct

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import kernel, minivm

APT_CACHE_DEPENDS = """\
linux-image-amd64
  Depends: linux-image-6.1.0-56-amd64
"""

APT_CACHE_DEPENDS_UNSIGNED = """\
linux-image-amd64
 |Depends: linux-image-6.1.0-9-amd64-unsigned
  Recommends: firmware-linux-free
"""

MODULES_DEP = """\
kernel/mm/zsmalloc.ko:
kernel/drivers/block/zram/zram.ko: kernel/mm/zsmalloc.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko \
kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/configfs/configfs.ko:
kernel/drivers/some-dashed_mod.ko.xz:
""".replace("\\\n", "")

MODULES_BUILTIN = "kernel/fs/ext4/ext4.ko\nkernel/drivers/tty/serial/8250/8250.ko\n"


# --- apt-cache parsing


def test_parse_image_depends_signed():
    assert kernel.parse_image_depends(APT_CACHE_DEPENDS) == (
        "linux-image-6.1.0-56-amd64",
        "6.1.0-56-amd64",
    )


def test_parse_image_depends_unsigned_keeps_package_name_but_not_in_abi():
    assert kernel.parse_image_depends(APT_CACHE_DEPENDS_UNSIGNED) == (
        "linux-image-6.1.0-9-amd64-unsigned",
        "6.1.0-9-amd64",
    )


@pytest.mark.parametrize(
    "text",
    ["", "linux-image-amd64\n", "linux-image-amd64\n  Depends: linux-base\n"],
)
def test_parse_image_depends_none(text):
    assert kernel.parse_image_depends(text) is None


def test_resolve_image_package_error_names_the_fix(monkeypatch):
    monkeypatch.setattr(kernel, "_run", lambda argv, timeout_s, cwd=None: "linux-image-amd64\n")
    with pytest.raises(kernel.KernelKitError, match="apt-get update"):
        kernel.resolve_image_package()


# --- modules.dep


@pytest.mark.parametrize(
    "path,name",
    [
        ("kernel/mm/zsmalloc.ko", "zsmalloc"),
        ("kernel/drivers/some-dashed_mod.ko.xz", "some_dashed_mod"),
        ("/abs/src/kmod/nswap.ko", "nswap"),
        ("virtio-net", "virtio_net"),
    ],
)
def test_module_name(path, name):
    assert kernel.module_name(path) == name


def test_parse_modules_dep():
    index = kernel.parse_modules_dep(MODULES_DEP)
    assert index["zram"] == ("kernel/drivers/block/zram/zram.ko", ["kernel/mm/zsmalloc.ko"])
    assert index["zsmalloc"] == ("kernel/mm/zsmalloc.ko", [])
    assert index["some_dashed_mod"][0] == "kernel/drivers/some-dashed_mod.ko.xz"


def test_module_closure_puts_dependencies_first_without_repeats():
    index = kernel.parse_modules_dep(MODULES_DEP)
    paths = kernel.module_closure(["zram", "virtio_pci", "virtio-net", "zram"], index)
    names = [kernel.module_name(p) for p in paths]
    assert len(names) == len(set(names))
    assert set(names) == {
        "zsmalloc",
        "zram",
        "virtio_ring",
        "virtio",
        "virtio_pci_legacy_dev",
        "virtio_pci_modern_dev",
        "virtio_pci",
        "failover",
        "net_failover",
        "virtio_net",
    }
    for module, dep in [
        ("zram", "zsmalloc"),
        ("virtio", "virtio_ring"),
        ("virtio_pci", "virtio"),
        ("virtio_net", "net_failover"),
        ("net_failover", "failover"),
    ]:
        assert names.index(dep) < names.index(module)


def test_module_closure_skips_builtin_and_rejects_unknown():
    index = kernel.parse_modules_dep(MODULES_DEP)
    builtin = kernel.parse_modules_builtin(MODULES_BUILTIN)
    assert builtin == {"ext4", "8250"}
    assert kernel.module_closure(["ext4"], index, builtin) == []
    with pytest.raises(kernel.KernelKitError, match="nosuchmod"):
        kernel.module_closure(["nosuchmod"], index, builtin)


# --- vmlinux extraction


def _fake_bzimage(payload, setup_sects=3, offset=0x40):
    """Just enough of the x86 boot header for _bzimage_payload, plus the payload."""
    header = bytearray((setup_sects + 1) * 512 + offset)
    header[0x1F1] = setup_sects
    header[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", header, 0x248, offset, len(payload))
    return bytes(header) + payload + b"trailing-bytes"


def test_extract_vmlinux_from_xz_bzimage(tmp_path):
    elf = b"\x7fELF" + bytes(range(256)) * 40
    vmlinuz = tmp_path / "vmlinuz"
    vmlinuz.write_bytes(_fake_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ)))
    target = tmp_path / "vmlinux"
    assert kernel.extract_vmlinux(str(vmlinuz), str(target))
    assert target.read_bytes() == elf


def test_extract_vmlinux_unknown_compression_is_not_an_error(tmp_path):
    vmlinuz = tmp_path / "vmlinuz"
    vmlinuz.write_bytes(_fake_bzimage(b"\x28\xb5\x2f\xfd" + b"zstd-ish" * 10))
    assert not kernel.extract_vmlinux(str(vmlinuz), str(tmp_path / "vmlinux"))
    assert not (tmp_path / "vmlinux").exists()


def test_bzimage_payload_rejects_non_bzimage():
    with pytest.raises(kernel.KernelKitError, match="bzImage"):
        kernel._bzimage_payload(bytes(4096))


# --- kit cache (atomic build)


def _fake_builder(calls):
    def build(package, abi, tree):
        calls.append(package)
        os.makedirs(os.path.join(tree, "boot"))
        os.makedirs(os.path.join(tree, "lib", "modules", abi))
        open(os.path.join(tree, "boot", "vmlinuz-" + abi), "w").close()
        with open(os.path.join(tree, kernel.COMPLETE_MARKER), "w") as marker:
            marker.write(f"{abi} format={kernel.KIT_FORMAT}\n")

    return build


def test_ensure_kernel_kit_builds_once_and_replaces_leftovers(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(kernel, "_build_kit_tree", _fake_builder(calls))
    abi = "6.1.0-99-amd64"
    # Leftovers of a killed run: a partial tree and a final dir without the marker.
    (tmp_path / f".{abi}.partial-dead").mkdir()
    (tmp_path / abi / "junk").mkdir(parents=True)

    kit = kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi=abi)
    assert calls == ["linux-image-" + abi]
    assert kit.abi == abi
    assert kit.vmlinuz == str(tmp_path / abi / "boot" / f"vmlinuz-{abi}")
    assert kit.modules_dir == str(tmp_path / abi / "lib" / "modules" / abi)
    assert kit.boot_image == kit.vmlinuz  # no vmlinux in the fake kit
    assert sorted(os.listdir(tmp_path)) == [f".{abi}.lock", abi]

    assert kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi=abi) == kit
    assert len(calls) == 1


def test_failed_build_leaves_no_partial_tree(tmp_path, monkeypatch):
    def broken(package, abi, tree):
        os.makedirs(os.path.join(tree, "boot"))
        raise kernel.KernelKitError("download failed")

    monkeypatch.setattr(kernel, "_build_kit_tree", broken)
    with pytest.raises(kernel.KernelKitError):
        kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi="6.1.0-99-amd64")
    assert os.listdir(tmp_path) == [".6.1.0-99-amd64.lock"]


def test_kit_of_an_older_format_is_not_complete(tmp_path):
    (tmp_path / kernel.COMPLETE_MARKER).write_text("6.1.0-56-amd64\n")
    assert not kernel.is_complete_kit(str(tmp_path))


def test_headers_error_names_the_package(monkeypatch):
    monkeypatch.setattr(kernel, "_package_installed", lambda package: False)
    with pytest.raises(kernel.KernelKitError, match="apt-get install linux-headers-6.1.0-99-amd64"):
        kernel.host_headers_build_dir(abi="6.1.0-99-amd64")


# --- mini VM pieces


def test_parse_output_splits_at_the_marker():
    marker = "MINIVM-END-0123"
    assert minivm.parse_output(f"a\nb\n\n{marker} 77\n", marker) == ("a\nb\n", 77)
    # Output without a final newline; a fake marker with another nonce is just output.
    raw = f"MINIVM-END-ffff 1\nno-newline\n{marker} 0\n"
    assert minivm.parse_output(raw, marker) == ("MINIVM-END-ffff 1\nno-newline", 0)
    assert minivm.parse_output("partial output", marker) == ("partial output", None)


def test_find_kernel_problems():
    console = "\n".join(
        [
            "[    1.0] zram: Added device: zram0",
            "[    2.0] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:1 foo+0x1/0x2",
            "[    3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "[    4.0] INFO: task swapon:99 blocked for more than 120 seconds.",
            "[    5.0] Kernel panic - not syncing: Fatal exception",
            "[    6.0] nswap: module verification failed: signature and/or required key missing",
        ]
    )
    problems = minivm.find_kernel_problems(console)
    assert len(problems) == 4
    assert problems[0].endswith("foo+0x1/0x2")


def test_init_script_configures_what_was_asked():
    text = minivm.init_script(
        "MINIVM-END-x", ("10.99.0.2/24", None), disk_count=2, env={"SERVER": "10.99.0.1 5555"}
    )
    assert text.startswith("#!/bin/sh\n")
    assert "mount -t configfs configfs /sys/kernel/config" in text
    assert "[ -b /dev/vdb ]" in text
    assert "ip addr add 10.99.0.2/24 dev eth0" in text
    assert "ip route add default" not in text
    assert "export SERVER='10.99.0.1 5555'" in text
    assert text.rstrip().endswith("poweroff -f")
    user = minivm.init_script("M", ("10.0.2.15/24", "10.0.2.2"))
    assert "ip route add default via 10.0.2.2" in user
    assert "eth0" not in minivm.init_script("M")


def test_net_plan_rejects_bad_values():
    with pytest.raises(minivm.MiniVMError, match="net must be"):
        minivm._net_plan("bridge")
    with pytest.raises(minivm.MiniVMError, match="ADDRESS/PREFIX"):
        minivm._net_plan(minivm.NetTap("ns", "tap0", guest_cidr="10.99.0.300/24"))


def test_modules_for_adds_what_init_loads():
    assert minivm._modules_for(("zram",), [], None) == ("configfs", "zram")
    mods = minivm._modules_for(("virtio_pci",), ["d.img"], "user")
    assert mods == ("configfs", "virtio_pci", "virtio_blk", "virtio_net")


def _read_newc(blob):
    """Minimal newc reader: [(name, mode, data, rdevmajor, rdevminor)]."""
    entries, pos = [], 0
    while True:
        assert blob[pos : pos + 6] == b"070701"
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = blob[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        data = blob[data_start : data_start + filesize]
        pos = data_start + filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            return entries
        assert fields[2] == fields[3] == 0  # root-owned
        entries.append((name, fields[1], data, fields[9], fields[10]))


def test_cpio_writer_round_trip(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_bytes(b"abc")
    (tmp_path / "bin" / "tool").chmod(0o755)
    (tmp_path / "bin" / "ln").symlink_to("tool")
    out = io.BytesIO()
    writer = minivm.CpioWriter(out)
    writer.add_tree(str(tmp_path))
    writer.add_chardev("dev/console", 5, 1)
    writer.finish()
    entries = {name: rest for name, *rest in _read_newc(out.getvalue())}
    assert entries["bin"][0] == 0o40755
    assert entries["bin/tool"][:2] == [0o100755, b"abc"]
    assert entries["bin/ln"][:2] == [0o120777, b"tool"]
    assert entries["dev/console"] == [0o20600, b"", 5, 1]
    assert len(out.getvalue()) % 4 == 0


def test_netns_names_carry_prefix_and_pid():
    assert minivm.netns_name_for("minivm", pid=42) == "nswapt-minivm-42"
    with pytest.raises(minivm.MiniVMError, match="invalid"):
        minivm.netns_name_for("Bad Label")


def test_sweep_removes_only_dead_owners(monkeypatch):
    names = ["nswapt-a-1", "nswapt-b-2", "other-3", "nswapt-c-nopid"]
    deleted = []
    monkeypatch.setattr(minivm, "list_netns", lambda: list(names))
    monkeypatch.setattr(minivm, "delete_netns", deleted.append)
    monkeypatch.setattr(minivm, "_pid_alive", lambda pid: pid == 1)
    assert minivm.sweep_stale_netns() == ["nswapt-b-2", "nswapt-c-nopid"]
    assert deleted == ["nswapt-b-2", "nswapt-c-nopid"]


def _result(**overrides):
    fields = dict(exit_status=0, output="out\n", console="", wall_s=1.0)
    fields.update(overrides)
    return minivm.MiniVMResult(**fields)


def test_check_passes_clean_runs_and_names_problems_otherwise():
    assert _result().check().exit_status == 0
    with pytest.raises(minivm.MiniVMError, match="exited 3"):
        _result(exit_status=3).check()
    # The problem lines are in the message even when the console tail no longer shows them.
    console = "[ 1.0] Kernel panic - not syncing: x\n" + "[ 2.0]  ? frame\n" * 100
    panicked = _result(
        exit_status=None,
        console=console,
        error="kernel panic (see console)",
        kernel_problems=minivm.find_kernel_problems(console),
    )
    with pytest.raises(minivm.MiniVMError, match="Kernel panic - not syncing"):
        panicked.check()
    warned = _result(kernel_problems=["[ 1.0] WARNING: CPU: 0 PID: 1 at x"])
    with pytest.raises(minivm.MiniVMError, match="kernel reported problems"):
        warned.check()
    assert warned.check(allow_kernel_problems=True) is warned
