"""The Vagrant box, the community.vagrant stand-in and the host session's bookkeeping,
without Vagrant, libvirt or VMs (those run in tests/integration/test_molecule_vagrant.py)."""

import hashlib
import json
import os
import re
import subprocess
import tarfile
import zipfile

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import common, guestfiles
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import LabError

from harness import vagrantbox, vagrantcollection, vagranthost


@pytest.fixture(autouse=True)
def no_real_libvirt(monkeypatch):
    """These tests fake the host: a real virsh or libvirtd here would change this machine
    (and the e2e vagrant test that runs beside them).  A test fakes what it uses."""

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test reached the real libvirt: %r" % (args,))

    monkeypatch.setattr(vagranthost, "virsh", refuse)
    monkeypatch.setattr(vagranthost, "start_daemons", refuse)


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOLECULE_YML = os.path.join(REPO, "molecule", "vagrant", "molecule.yml")

# --- the image recipe ------------------------------------------------------------------


def test_lab_image_recipe_gives_each_clone_its_own_lease():
    vagrantbox.check_image_recipe()


@pytest.mark.parametrize(
    "path, content, problem",
    [
        ("/etc/machine-id", "0123456789abcdef0123456789abcdef\n", "/etc/machine-id must be empty"),
        (vagrantbox.ETH0_NETWORK, "[Match]\nName=eth0\n[Network]\nDHCP=ipv4\n", "ClientIdentifier"),
    ],
)
def test_recipe_that_would_share_a_lease_is_refused(path, content, problem):
    files = dict(guestfiles.GUEST_FILES)
    files[path] = (0o644, content)
    with pytest.raises(LabError) as err:
        vagrantbox.check_image_recipe(files)
    assert problem in str(err.value)
    assert "guestfiles.py" in str(err.value)


# --- building and adding the box ---------------------------------------------------------


class FakeVagrant:
    """Stands in for `vagrant` (box list/add/remove) and qemu-img; runs tar for real."""

    def __init__(self):
        self.boxes = set()
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        if argv[0] == "tar":
            return common.run(argv, **kwargs)
        out = ""
        if argv[:3] == ["qemu-img", "info", "--output=json"]:
            out = json.dumps({"virtual-size": 6 * (1 << 30)})
        elif argv[:3] == ["vagrant", "box", "list"]:
            out = "".join("1,,box-name,%s\n1,,box-provider,libvirt\n" % b for b in self.boxes)
        elif argv[:3] == ["vagrant", "box", "add"]:
            self.boxes.add(argv[argv.index("--name") + 1])
        elif argv[:3] == ["vagrant", "box", "remove"]:
            self.boxes.discard(argv[-1])
        return subprocess.CompletedProcess(argv, 0, out, "")

    def commands(self, *prefix):
        return [c for c in self.calls if c[: len(prefix)] == list(prefix)]


@pytest.fixture
def fake_vagrant(monkeypatch):
    fake = FakeVagrant()
    monkeypatch.setattr(vagrantbox, "run", fake)
    monkeypatch.setattr(vagrantbox, "require_commands", lambda commands: None)
    return fake


def make_image(tmp_path, key):
    image_dir = tmp_path / "images" / key
    image_dir.mkdir(parents=True)
    info = {"key": key}
    for field, name in (
        ("base", "base.qcow2"),
        ("kernel", "vmlinuz"),
        ("initrd", "initrd.img"),
        ("sshkey", "sshkey"),
    ):
        (image_dir / name).write_text("%s of %s\n" % (name, key))
        info[field] = str(image_dir / name)
    return info


def test_box_is_built_added_and_then_reused(tmp_path, fake_vagrant):
    data = tmp_path / "data"
    image_info = make_image(tmp_path, "bookworm-aaaa")
    changed, info = vagrantbox.ensure_box(str(data), image_info)
    assert changed
    assert info["key"] == "bookworm-aaaa-b%d" % vagrantbox.BOX_VERSION
    with tarfile.open(info["box"]) as box:
        names = sorted(box.getnames())
        assert names == sorted(
            ["metadata.json", "Vagrantfile", "box.img", "vmlinuz", "initrd.img", "sshkey"]
        )
        meta = json.load(box.extractfile("metadata.json"))
        assert box.extractfile("box.img").read() == b"base.qcow2 of bookworm-aaaa\n"
        vagrantfile = box.extractfile("Vagrantfile").read().decode()
    assert meta == {"provider": "libvirt", "format": "qcow2", "virtual_size": 6}
    assert 'libvirt.driver = "qemu"' in vagrantfile
    assert "root=LABEL=root" in vagrantfile
    add = fake_vagrant.commands("vagrant", "box", "add")
    assert add == [["vagrant", "box", "add", "--force", "--name", "nswap/lab", info["box"]]]

    fake_vagrant.calls.clear()
    changed, _info = vagrantbox.ensure_box(str(data), image_info)
    assert not changed
    assert not fake_vagrant.commands("vagrant", "box", "add")
    assert not fake_vagrant.commands("tar")


def test_new_image_replaces_the_box_and_drops_the_old_file(tmp_path, fake_vagrant):
    data = tmp_path / "data"
    _changed, old = vagrantbox.ensure_box(str(data), make_image(tmp_path, "bookworm-aaaa"))
    fake_vagrant.calls.clear()
    changed, new = vagrantbox.ensure_box(str(data), make_image(tmp_path, "bookworm-bbbb"))
    assert changed
    assert not os.path.exists(old["box"]) and os.path.exists(new["box"])
    assert fake_vagrant.commands("vagrant", "box", "remove")
    assert fake_vagrant.commands("vagrant", "box", "add")
    stamp = json.loads((data / "vagrant.d" / vagrantbox.BOX_STAMP).read_text())
    assert stamp == {"key": new["key"]}


def test_box_missing_from_vagrant_is_added_again(tmp_path, fake_vagrant):
    data = tmp_path / "data"
    image_info = make_image(tmp_path, "bookworm-aaaa")
    vagrantbox.ensure_box(str(data), image_info)
    fake_vagrant.boxes.clear()  # e.g. someone ran `vagrant box remove`
    changed, _info = vagrantbox.ensure_box(str(data), image_info)
    assert changed
    assert len(fake_vagrant.commands("vagrant", "box", "add")) == 2


def test_check_mode_reports_the_change_and_does_nothing(tmp_path, fake_vagrant):
    data = tmp_path / "data"
    changed, info = vagrantbox.ensure_box(str(data), make_image(tmp_path, "k-1"), check_mode=True)
    assert changed
    assert not os.path.exists(info["box"])
    assert not fake_vagrant.commands("vagrant", "box", "add")
    assert not fake_vagrant.commands("tar")


def test_vagrant_never_checks_for_updates_off_the_machine(tmp_path):
    env = vagrantbox.vagrant_env(str(tmp_path), base={})
    assert env["VAGRANT_CHECKPOINT_DISABLE"] == "1"
    assert env["VAGRANT_BOX_UPDATE_CHECK_DISABLE"] == "1"
    assert env["VAGRANT_HOME"] == str(tmp_path)


# --- the community.vagrant stand-in --------------------------------------------------------


def fake_wheel(tmp_path, module_code=b"# the vagrant module\n"):
    wheel = tmp_path / vagrantcollection.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(vagrantcollection.MODULE_MEMBER, module_code)
        archive.writestr(vagrantcollection.LICENSE_MEMBER, "MIT License\n")
    return str(wheel)


def test_collection_is_laid_out_as_installed_and_idempotent(tmp_path, monkeypatch):
    wheel = fake_wheel(tmp_path)
    monkeypatch.setattr(
        vagrantcollection, "WHEEL_SHA256", hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    )
    dest = tmp_path / "collections"
    assert vagrantcollection.ensure_collection(wheel, str(dest))
    coll = dest / "ansible_collections" / "community" / "vagrant"
    assert (coll / "plugins" / "modules" / "vagrant.py").read_bytes() == b"# the vagrant module\n"
    manifest = json.loads((coll / "MANIFEST.json").read_text())
    # what ansible-compat's require_collection() reads, against molecule-plugins' >=1.0.1
    assert manifest["collection_info"]["version"] == "1.0.1"
    assert manifest["collection_info"]["namespace"] == "community"
    files = json.loads((coll / "FILES.json").read_text())["files"]
    assert {f["name"] for f in files} >= {"plugins/modules/vagrant.py", "LICENSE"}
    assert not vagrantcollection.ensure_collection(wheel, str(dest))
    assert not [p for p in os.listdir(coll.parent) if ".partial-" in p]


def test_collection_refuses_a_wheel_with_another_checksum(tmp_path):
    wheel = fake_wheel(tmp_path)
    with pytest.raises(LabError) as err:
        vagrantcollection.ensure_collection(wheel, str(tmp_path / "collections"))
    assert "expected %s" % vagrantcollection.WHEEL_SHA256 in str(err.value)
    assert not (tmp_path / "collections" / "ansible_collections").exists()


def test_collection_names_the_download_when_the_wheel_is_missing(tmp_path):
    with pytest.raises(LabError) as err:
        vagrantcollection.ensure_collection(str(tmp_path / "nope.whl"), str(tmp_path))
    assert "pip download --no-deps" in str(err.value)
    assert "molecule-vagrant==2.0.0" in str(err.value)


# --- the host session ------------------------------------------------------------------------


def test_scenario_uses_the_names_the_session_exports():
    """molecule.yml's ${NSWAP_VAGRANT_*:-default} defaults equal what the session exports,
    so the names are defined once (vagranthost.py) and a stray default cannot drift."""
    with open(MOLECULE_YML) as handle:
        text = handle.read()
    box = {"vagrant_home": "/d/vagrant.d", "name": vagrantbox.BOX_NAME, "box": "/d/b.box"}
    env = vagranthost.session_env(box, base={})
    used = dict(re.findall(r"\$\{(NSWAP_VAGRANT_[A-Z_]+):-([^}]*)\}", text))
    session_names = {k for k in env if k.startswith("NSWAP_VAGRANT_")} - {"NSWAP_VAGRANT_BOX_FILE"}
    assert session_names <= set(used)
    for name in session_names:
        assert used[name] == env[name], name
    # without a session the box file does not exist: Vagrant stops, downloads nothing
    assert not os.path.exists(used["NSWAP_VAGRANT_BOX_FILE"])
    assert env["VAGRANT_CHECKPOINT_DISABLE"] == "1"


def test_every_vm_logs_its_console_where_a_failed_run_reads_it(tmp_path, monkeypatch):
    import yaml  # noqa: PLC0415

    with open(MOLECULE_YML) as handle:
        platforms = yaml.safe_load(handle)["platforms"]
    for platform in platforms:
        (arg,) = platform["provider_raw_config_args"]
        path = "${NSWAP_VAGRANT_CONSOLE_DIR:-%s}/%s.log" % (
            vagranthost.CONSOLE_DIR,
            platform["name"],
        )
        assert arg == 'serial :type => "file", :source => {:path => "%s"}' % path
    # a session starts with no console of an older run; tails come without CRs and colours
    monkeypatch.setattr(vagranthost, "CONSOLE_DIR", str(tmp_path / "consoles"))
    os.makedirs(vagranthost.CONSOLE_DIR)
    (tmp_path / "consoles" / "old.log").write_text("older run\n")
    vagranthost.reset_consoles()
    assert vagranthost.console_tails() == {}
    lines = "".join("line %d\r\n" % i for i in range(99)) + "\x1b[0;32mline 99\x1b[0m\r\n"
    (tmp_path / "consoles" / "client1.log").write_text(lines)
    assert vagranthost.console_tails(3) == {"client1": "line 97\nline 98\nline 99"}


@pytest.mark.parametrize(
    "cmdline, wanted",
    [
        ("ssh: /root/.ansible/cp/192.168.121.209-22-root [mux]", True),
        ("ssh\0-o\0ControlMaster=auto\0root@192.168.121.7\0/bin/sh", True),
        ("ssh\0-o\0Port=50073\0127.0.0.1\0/bin/sh", False),
        ("ssh: /root/.cache/nswap/labs/bench/ssh-f2d4e3 [mux]", False),
        ("ssh\0192.168.1211.7", False),
    ],
)
def test_ssh_clients_to_the_vms_are_recognised(cmdline, wanted):
    assert vagranthost.mentions_vm_address(cmdline) is wanted


def test_guard_covers_the_management_network():
    import ipaddress  # noqa: PLC0415

    net = ipaddress.ip_network(vagranthost.NETWORK_CIDR)
    guard = ipaddress.ip_network(vagranthost.GUARD_CIDR)
    # less specific: libvirt's own route to the network wins while it is up
    assert net.subnet_of(guard) and guard.prefixlen < net.prefixlen


def test_second_session_on_the_same_data_dir_is_refused(tmp_path):
    with vagranthost.session_lock(str(tmp_path)):
        with pytest.raises(LabError) as err:
            with vagranthost.session_lock(str(tmp_path)):
                pass
    assert "pid %d" % os.getpid() in str(err.value)
    with vagranthost.session_lock(str(tmp_path)):  # free again
        pass


def test_restore_without_a_recorded_session_does_nothing(tmp_path):
    assert vagranthost.restore(str(tmp_path)) is False


def fake_restore_steps(monkeypatch, answers=True):
    """Every host-changing step of restore() replaced by a note in the returned list: the
    step's name, or what it was given (stop_daemons the PIDs, restore_kvm the old mode);
    libvirtd_answers() returns `answers`.  A test replaces a step again to make it fail."""
    done = []
    monkeypatch.setattr(vagranthost, "libvirtd_answers", lambda: answers)
    monkeypatch.setattr(vagranthost, "ssh_to_vms", lambda: [])
    for name in ("remove_domains", "remove_networks", "remove_libvirt_chains"):
        monkeypatch.setattr(vagranthost, name, lambda name=name: done.append(name))
    monkeypatch.setattr(vagranthost, "remove_pool", lambda path: done.append("remove_pool"))
    monkeypatch.setattr(vagranthost, "stop_daemons", lambda started: done.append(dict(started)))
    monkeypatch.setattr(vagranthost, "remove_route_guard", lambda: done.append("route"))
    monkeypatch.setattr(vagranthost, "restore_kvm", done.append)
    return done


def test_restore_undoes_the_recorded_changes_in_order(tmp_path, monkeypatch):
    done = fake_restore_steps(monkeypatch)
    state = {
        "kvm": {"mode": 0o600, "gid": 0},
        "chains_existed": False,
        "started": {"libvirtd": 12, "virtlogd": 11},
        "route_added": True,
    }
    common.write_json_atomic(vagranthost.paths(str(tmp_path))["state"], state)
    assert vagranthost.restore(str(tmp_path)) is True
    assert done == [
        "remove_domains",
        "remove_networks",
        "remove_pool",
        {"libvirtd": 12, "virtlogd": 11},
        "remove_libvirt_chains",
        "route",
        {"mode": 0o600, "gid": 0},
    ]
    assert not os.path.exists(vagranthost.paths(str(tmp_path))["state"])


def test_restore_leaves_what_it_did_not_create(tmp_path, monkeypatch):
    done = fake_restore_steps(monkeypatch)
    state = {"kvm": None, "chains_existed": True, "started": {}, "route_added": False}
    common.write_json_atomic(vagranthost.paths(str(tmp_path))["state"], state)
    vagranthost.restore(str(tmp_path))
    assert {} in done  # a libvirtd that was already running is not stopped
    assert "remove_libvirt_chains" not in done and "route" not in done


def test_restore_starts_a_libvirtd_to_undefine_what_a_killed_session_left(tmp_path, monkeypatch):
    """A session killed together with its libvirtd left persistent definitions that only a
    running libvirtd can remove: restore starts one first, and stops it at the end with
    what the session had started."""
    done = fake_restore_steps(monkeypatch, answers=False)

    def start_daemons(run_dir, started):
        done.append("start_daemons")
        started.update(libvirtd=22, virtlogd=21)

    monkeypatch.setattr(vagranthost, "start_daemons", start_daemons)
    state = {"kvm": None, "chains_existed": False, "started": {"libvirtd": 12, "virtlogd": 11}}
    common.write_json_atomic(vagranthost.paths(str(tmp_path))["state"], state)
    assert vagranthost.restore(str(tmp_path)) is True
    assert done == [
        "start_daemons",
        "remove_domains",
        "remove_networks",
        "remove_pool",
        {"libvirtd": 22, "virtlogd": 21},
        "remove_libvirt_chains",
        None,  # /dev/kvm as it was
    ]
    assert not os.path.exists(vagranthost.paths(str(tmp_path))["state"])


def test_restore_that_cannot_start_libvirtd_keeps_the_record(tmp_path, monkeypatch):
    def start_daemons(run_dir, started):
        raise LabError("libvirtd did not start")

    fake_restore_steps(monkeypatch, answers=False)
    monkeypatch.setattr(vagranthost, "start_daemons", start_daemons)
    state_file = vagranthost.paths(str(tmp_path))["state"]
    common.write_json_atomic(state_file, {"kvm": None, "started": {}})
    with pytest.raises(LabError) as err:
        vagranthost.restore(str(tmp_path))
    assert "libvirtd: libvirtd did not start" in str(err.value)
    assert "scripts/vagrant-lab cleanup" in str(err.value)
    assert os.path.exists(state_file)


def test_failed_restore_keeps_the_record_and_names_the_fix(tmp_path, monkeypatch):
    def broken():
        raise LabError("virsh hung")

    fake_restore_steps(monkeypatch)
    monkeypatch.setattr(vagranthost, "remove_domains", broken)
    state_file = vagranthost.paths(str(tmp_path))["state"]
    common.write_json_atomic(state_file, {"kvm": None, "started": {}})
    with pytest.raises(LabError) as err:
        vagranthost.restore(str(tmp_path))
    assert "domains: virsh hung" in str(err.value)
    assert "scripts/vagrant-lab cleanup" in str(err.value)
    assert os.path.exists(state_file)


def test_kvm_mode_is_restored(tmp_path, monkeypatch):
    device = tmp_path / "kvm"
    device.write_text("")
    os.chmod(device, 0o600)
    monkeypatch.setattr(vagranthost, "KVM_DEVICE", str(device))
    before = vagranthost.open_kvm()
    assert before["mode"] == 0o600
    assert os.stat(device).st_mode & 0o777 == 0o660
    vagranthost.restore_kvm(before)
    assert os.stat(device).st_mode & 0o777 == 0o600
    assert os.stat(device).st_gid == before["gid"]
