"""Which nodes playbooks/deploy.yml runs the nswap_server role on: its first play's hosts
and pre_tasks themselves, run by ansible-playbook on local hosts with a stand-in for the
role (a task that records the state it would be given); the nodes' nswapd.conf is a file
of the test's (or none)."""

import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEPLOY = os.path.join(REPO, "playbooks", "deploy.yml")
PLAYBOOK = os.path.join(REPO, ".venv", "bin", "ansible-playbook")


def first_play():
    with open(DEPLOY) as handle:
        return yaml.safe_load(handle)[0]


def run(tmp_path, gossip, conf=None):
    """{host: the nswap_server_state the role would get} for hosts the play reaches."""
    play = first_play()
    role = play.pop("roles")[0]
    state = role["vars"]["nswap_server_state"]
    play["tasks"] = [
        {
            "ansible.builtin.copy": {
                "content": state,
                "dest": "%s/{{ inventory_hostname }}.state" % tmp_path,
                "mode": "0644",
            },
            "delegate_to": "localhost",
        }
    ]
    play["become"] = False
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play]))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "children": {
                "nswap_servers": {"hosts": {"s1": local, "both": local}},
                "nswap_clients": {"hosts": {"c1": local, "both": local}},
            }
        }
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    if conf is not None:
        (tmp_path / "nswapd.conf").write_text(conf)
    proc = subprocess.run(
        [PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")]
        + ["-e", "nswap_gossip=%s" % gossip]
        + ["-e", "__deploy_nswapd_conf=%s" % (tmp_path / "nswapd.conf")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {p.stem: p.read_text() for p in tmp_path.glob("*.state")}


LENDS_NOTHING = "listen = 10.0.0.2:7405\ncache_size = 0\ngossip = on\n"
LENDS = "listen = 10.0.0.2:7405\ncache_size = 256M\n"


@pytest.mark.parametrize(
    ("gossip", "conf", "reached"),
    [
        # gossip off: the servers only; a client without nswapd is left out
        ("false", None, {"s1": "present", "both": "present"}),
        # gossip on: every node, each with nswapd present (c1's lends nothing)
        ("true", None, {"s1": "present", "both": "present", "c1": "present"}),
        ("true", LENDS_NOTHING, {"s1": "present", "both": "present", "c1": "present"}),
        # gossip off again: the nswapd that lends nothing goes from the client
        ("false", LENDS_NOTHING, {"s1": "present", "both": "present", "c1": "absent"}),
        # one that lends (a node taken out of nswap_servers) is left alone
        ("false", LENDS, {"s1": "present", "both": "present"}),
    ],
)
def test_the_server_play_reaches_the_servers_and_with_gossip_every_node(
    tmp_path, gossip, conf, reached
):
    assert run(tmp_path, gossip, conf) == reached
