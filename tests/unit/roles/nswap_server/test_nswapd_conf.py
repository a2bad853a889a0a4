"""The role's nswapd.conf template, rendered by ansible with the role's defaults (and with
other values), is a file the nswapd of this checkout accepts and reads back as meant."""

import json
import os
import subprocess

import pytest
import yaml

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
)
ROLE = os.path.join(REPO, "roles", "nswap_server")
ANSIBLE = os.path.join(REPO, ".venv", "bin", "ansible")


def render(tmp_path, **overrides):
    """templates/nswapd.conf.j2 with defaults/main.yml plus overrides, via ansible."""
    variables = {}
    for part in ("defaults", "vars"):
        with open(os.path.join(ROLE, part, "main.yml")) as handle:
            variables.update(yaml.safe_load(handle))
    variables.update(nswap_server_address="127.0.0.1", nswap_server_name="node1")
    variables.update(overrides)
    extra = tmp_path / "vars.yml"
    extra.write_text(yaml.safe_dump(variables))
    dest = tmp_path / "nswapd.conf"
    src = os.path.join(ROLE, "templates", "nswapd.conf.j2")
    subprocess.run(
        [ANSIBLE, "localhost", "-m", "ansible.builtin.template", "-a", f"src={src} dest={dest}"]
        + ["-e", "@%s" % extra],
        check=True,
        capture_output=True,
        env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false"),
    )
    return dest


def check_config(nswapd_bin, conf):
    proc = subprocess.run(
        [nswapd_bin, "--config", str(conf), "--check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("loops, shown", [("auto", "auto"), (3, "3"), (1, "1")])
def test_the_rendered_file_is_what_nswapd_reads(tmp_path, nswapd_bin, loops, shown):
    conf = render(
        tmp_path,
        nswap_server_loops=loops,
        nswap_server_max_clients=128,
        nswap_server_hello_timeout_ms=2500,
        nswap_server_max_pending_per_address=4,
    )
    rc, out = check_config(nswapd_bin, conf)
    assert rc == 0, out
    assert "loops = %s\n" % shown in out
    assert "max_clients = 128\n" in out
    assert "hello_timeout = 2500\nmax_pending = auto\nmax_pending_per_address = 4\n" in out
    assert "listen = 127.0.0.1:7405\n" in out


GOSSIP_KEYS = ("gossip", "node_id")


def test_gossip_off_renders_the_file_as_before(tmp_path, nswapd_bin):
    """The defaults (gossip off) give the same file as before gossip existed: no gossip key,
    and nswapd prints none back."""
    text = render(tmp_path).read_text()
    assert text.splitlines()[1:] == [
        "# nswapd settings (src/nswapd/nswapd.conf.example explains every key).",
        "listen = 127.0.0.1:7405",
        "cache_size = 256M",
        "name = node1",
        "max_clients = 256",
        "hello_timeout = 10000",
        "max_pending_per_address = 32",
        "loops = auto",
        "log_level = info",
        "lock_memory = no",
    ]
    assert text.endswith("lock_memory = no\n")
    rc, out = check_config(nswapd_bin, tmp_path / "nswapd.conf")
    assert rc == 0, out
    assert not [line for line in out.splitlines() if line.startswith(GOSSIP_KEYS)], out


def test_gossip_on_is_what_nswapd_reads(tmp_path, nswapd_bin):
    conf = render(
        tmp_path,
        nswap_server_gossip=True,
        nswap_server_gossip_port=7411,
        nswap_server_gossip_interval_ms=250,
        nswap_server_gossip_fanout=2,
        nswap_server_gossip_seeds=["127.0.0.2", "127.0.0.3"],
        nswap_server_gossip_subnet="127.0.0.0/8",
    )
    rc, out = check_config(nswapd_bin, conf)
    assert rc == 0, out
    gossip = [line for line in out.splitlines() if line.startswith(GOSSIP_KEYS)]
    assert gossip == [
        "gossip = on",
        "gossip_port = 7411",
        "gossip_interval = 250",
        "gossip_fanout = 2",
        "gossip_address = 127.0.0.1",  # nswap_server_address
        "node_id = auto",
        "gossip_seeds = 127.0.0.2,127.0.0.3",
        "gossip_subnet = 127.0.0.0/8",
        "gossip_table_file = /run/nswap/gossip.json",
    ]
    assert "listen = 127.0.0.1:7405\n" in out


def test_gossip_on_with_the_defaults(tmp_path, nswapd_bin):
    """No seeds, no subnet: only the keys with values; gossip_address given explicitly."""
    conf = render(
        tmp_path,
        nswap_server_gossip=True,
        nswap_server_address="0.0.0.0",
        nswap_server_gossip_address="10.0.0.5",
    )
    text = conf.read_text()
    assert "gossip_seeds" not in text and "gossip_subnet" not in text
    rc, out = check_config(nswapd_bin, conf)
    assert rc == 0, out
    assert "gossip_address = 10.0.0.5\n" in out and "gossip_port = 7405\n" in out
    assert "gossip_interval = 1000\n" in out and "gossip_fanout = 3\n" in out


def run_playbook(tmp_path, tasks, **overrides):
    """A play on localhost with overrides as extra vars (an included role adds its defaults)."""
    variables = dict(nswap_server_address="127.0.0.1", nswap_server_name="node1")
    variables.update(overrides)
    extra = tmp_path / "vars.yml"
    extra.write_text(yaml.safe_dump(variables))
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([dict(hosts="localhost", gather_facts=False, tasks=tasks)]))
    proc = subprocess.run(
        [ANSIBLE + "-playbook", "-i", "localhost,", "-c", "local", str(play)]
        + ["-e", "@%s" % extra],
        capture_output=True,
        text=True,
        check=False,
        env=dict(
            os.environ,
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_ROLES_PATH=os.path.dirname(ROLE),
        ),
    )
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


VALIDATE = [
    {
        "name": "Gossip checks",
        "ansible.builtin.include_role": {"name": "nswap_server", "tasks_from": "validate_gossip"},
    }
]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(nswap_server_gossip_seeds=["10.0.0.1", "10.0.0.300"]),
            "nswap_server_gossip_seeds=['10.0.0.1', '10.0.0.300'] must be a list of at most 16 "
            "IPv4 addresses of nodes",
        ),
        (dict(nswap_server_gossip_seeds=["0.0.0.0"]), "not an IPv4 address of a node: 0.0.0.0"),
        (dict(nswap_server_gossip_seeds="10.0.0.1,10.0.0.2"), "must be a list of at most 16"),
        (
            dict(nswap_server_gossip_port=70000),
            "nswap_server_gossip_port=70000 is not a UDP port; use an integer 1-65535",
        ),
        (dict(nswap_server_gossip_interval_ms=5), "nswap_server_gossip_interval_ms=5 must be"),
        (dict(nswap_server_gossip_fanout=0), "nswap_server_gossip_fanout=0 must be"),
        (
            dict(nswap_server_address="::1"),
            "nswap_server_gossip_address=::1 is not an IPv4 address of this node",
        ),
        (dict(nswap_server_gossip_subnet="10.0.0.0"), "nswap_server_gossip_subnet=10.0.0.0 is not"),
    ],
)
def test_bad_gossip_settings_fail_naming_the_variable(tmp_path, overrides, message):
    rc, out = run_playbook(tmp_path, VALIDATE, nswap_server_gossip=True, **overrides)
    assert rc != 0, out
    assert message in out, out
    assert "Nothing was changed." in out


def test_good_gossip_settings_pass(tmp_path):
    rc, out = run_playbook(
        tmp_path,
        VALIDATE,
        nswap_server_gossip=True,
        nswap_server_gossip_seeds=["10.0.0.1", "10.0.0.2"],
        nswap_server_gossip_subnet="10.0.0.0/24",
    )
    assert rc == 0, out


def test_argument_specs_refuse_a_port_that_is_no_number(tmp_path):
    spec = os.path.join(ROLE, "meta", "argument_specs.yml")
    tasks = [
        {
            "name": "Validate against the role's argument_specs",
            "ansible.builtin.validate_argument_spec": {
                "argument_spec": "{{ (lookup('ansible.builtin.file', '%s') | from_yaml)"
                ".argument_specs.main.options }}" % spec,
                "provided_arguments": {
                    "nswap_server_gossip_port": "{{ nswap_server_gossip_port }}"
                },
            },
        }
    ]
    rc, out = run_playbook(tmp_path, tasks, nswap_server_gossip_port="x")
    assert rc != 0, out
    assert "nswap_server_gossip_port" in out and "int" in out, out


def test_elastic_on_is_what_nswapd_reads(tmp_path, nswapd_bin):
    conf = render(
        tmp_path,
        nswap_server_elastic=True,
        nswap_server_elastic_reserve="1G",
        nswap_server_elastic_step="32M",
        nswap_server_elastic_psi=12.5,
    )
    rc, out = check_config(nswapd_bin, conf)
    assert rc == 0, out
    assert [line for line in out.splitlines() if line.startswith("elastic")] == [
        "elastic = on",
        "elastic_reserve = 1G",
        "elastic_step = 32M",
        "elastic_psi = 12.5",
        "elastic_interval = 1000",
    ]


VALIDATE_ELASTIC = [
    {
        "name": "Elastic checks",
        "ansible.builtin.include_role": {"name": "nswap_server", "tasks_from": "validate_elastic"},
    }
]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(nswap_server_elastic_reserve="lots"), "nswap_server_elastic_reserve=lots is not a"),
        (dict(nswap_server_elastic_step="1K"), "nswap_server_elastic_step=1K must be a size of"),
        (dict(nswap_server_elastic_step="-5"), "nswap_server_elastic_step=-5 must be a size of"),
        (dict(nswap_server_elastic_psi=0), "nswap_server_elastic_psi=0 must be a percentage"),
        (dict(nswap_server_elastic_psi=150), "nswap_server_elastic_psi=150 must be a percentage"),
        (dict(nswap_server_lock_memory=True), "with nswap_server_lock_memory=true: a locked"),
    ],
)
def test_bad_elastic_settings_fail_naming_the_variable(tmp_path, overrides, message):
    defaults = dict(
        nswap_server_lock_memory=False,
        nswap_server_elastic_reserve="256M",
        nswap_server_elastic_step="64M",
        nswap_server_elastic_psi=10,
    )
    defaults.update(overrides)
    rc, out = run_playbook(tmp_path, VALIDATE_ELASTIC, nswap_server_elastic=True, **defaults)
    assert rc != 0, out
    assert message in out and "Nothing was changed." in out, out


def test_good_elastic_settings_pass(tmp_path):
    rc, out = run_playbook(
        tmp_path,
        VALIDATE_ELASTIC,
        nswap_server_elastic=True,
        nswap_server_lock_memory=False,
        nswap_server_elastic_reserve="512M",
        nswap_server_elastic_step="4K",
        nswap_server_elastic_psi=7.5,
    )
    assert rc == 0, out


def test_overflow_is_rendered_for_a_lender_with_gossip_and_read_back(tmp_path, nswapd_bin):
    conf = render(tmp_path, nswap_server_gossip=True, nswap_server_overflow="16M")
    rc, out = check_config(nswapd_bin, conf)
    assert rc == 0, out
    assert out.splitlines()[-1] == "overflow = 16M"
    # the default, and a node that lends nothing: no key (nswapd's default, none)
    for overrides in (dict(), dict(nswap_server_lend=False, nswap_server_overflow="16M")):
        conf = render(tmp_path, nswap_server_gossip=True, **overrides)
        assert "overflow" not in conf.read_text()
        assert check_config(nswapd_bin, conf)[0] == 0


def test_a_node_that_lends_nothing_renders_cache_0_and_its_device(tmp_path, nswapd_bin):
    """nswap_server_lend false (a client that only borrows): cache 0, the device its
    nswapd feeds, and no elastic keys even when elastic is on for the group."""
    conf = render(
        tmp_path,
        nswap_server_lend=False,
        nswap_server_gossip=True,
        nswap_server_client_device="nswap0",
        nswap_server_elastic=True,
    )
    text = conf.read_text()
    assert "cache_size = 0\n" in text and "elastic" not in text
    rc, out = check_config(nswapd_bin, conf)
    assert rc == 0, out
    assert "client_device = nswap0\n" in out and "client_servers = 16\n" in out


def test_nswap_gossip_runs_every_node_clients_lending_nothing(tmp_path):
    """The deploy's switch, through the role's defaults on an inventory of one server and
    one client: both gossip with the server as seed; the server lends and feeds no device,
    the client lends nothing and feeds its nswap_client_device."""
    inventory = {
        "all": {
            "children": {
                "nswap_servers": {"hosts": {"s1": {"nswap_address": "10.0.0.1"}}},
                "nswap_clients": {
                    "hosts": {"c1": {"nswap_address": "10.0.0.2", "nswap_client_device": "swp1"}}
                },
            },
            "vars": {"ansible_connection": "local", "nswap_gossip": True},
        }
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    wanted = (
        "nswap_server_gossip nswap_server_lend nswap_server_client_device "
        "__nswap_server_cache_size nswap_server_gossip_seeds"
    ).split()
    play = dict(
        hosts="all",
        gather_facts=False,
        tasks=[
            {"ansible.builtin.include_vars": os.path.join(ROLE, "defaults", "main.yml")},
            {"ansible.builtin.include_vars": os.path.join(ROLE, "vars", "main.yml")},
            {
                "ansible.builtin.copy": {
                    "content": "{{ [%s] | to_json }}" % ", ".join(wanted),
                    "dest": "%s/{{ inventory_hostname }}.json" % tmp_path,
                    "mode": "0644",
                }
            },
        ],
    )
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play]))
    proc = subprocess.run(
        [ANSIBLE + "-playbook", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = {host: json.loads((tmp_path / ("%s.json" % host)).read_text()) for host in ("s1", "c1")}
    assert seen == {
        "s1": [True, True, "", "256M", ["10.0.0.1"]],
        "c1": [True, False, "swp1", 0, ["10.0.0.1"]],
    }


VALIDATE_ALL = [
    {
        "name": "Settings checks",
        "ansible.builtin.include_role": {"name": "nswap_server", "tasks_from": "validate"},
    }
]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(nswap_server_lend=False),
            "nswap_server_lend is false on localhost with gossip off: a node that lends "
            "nothing runs nswapd only to hear the gossip",
        ),
        (
            dict(nswap_server_client_device="nswap0"),
            "nswap_server_client_device=nswap0 needs nswap_server_gossip (its servers come "
            "from the gossip table)",
        ),
        (
            dict(nswap_server_gossip=True, nswap_server_client_device="../nswap0"),
            "nswap_server_client_device=../nswap0 is not a device name; use the configfs name",
        ),
        (
            dict(nswap_server_gossip=True, nswap_server_client_servers=65),
            "nswap_server_client_servers=65 must be the most servers nswapd adds to the "
            "device, 1-64",
        ),
        (
            dict(nswap_server_overflow="16M"),
            "nswap_server_overflow=16M needs nswap_server_gossip: the pages a full cache takes "
            "move to a gossip member with room",
        ),
        (
            dict(nswap_server_gossip=True, nswap_server_overflow="lots"),
            "nswap_server_overflow=lots is not a size; use bytes with an optional K, M, G or T",
        ),
        (
            dict(nswap_server_gossip=True, nswap_server_overflow="100"),
            'nswap_server_overflow=100 is less than a page; use "0" for none, or at least 4K',
        ),
    ],
)
def test_bad_lend_and_feed_settings_fail_naming_the_variable(tmp_path, overrides, message):
    rc, out = run_playbook(tmp_path, VALIDATE_ALL, **overrides)
    assert rc != 0, out
    assert message in out, out
    assert "Nothing was changed." in out
