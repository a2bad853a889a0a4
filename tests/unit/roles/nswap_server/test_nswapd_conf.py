"""The role's nswapd.conf template, rendered by ansible with the role's defaults (and with
other values), is a file the nswapd of this checkout accepts and reads back as meant."""

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
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        variables = yaml.safe_load(handle)
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
    conf = render(tmp_path, nswap_server_loops=loops, nswap_server_max_clients=128)
    rc, out = check_config(nswapd_bin, conf)
    assert rc == 0, out
    assert "loops = %s\n" % shown in out
    assert "max_clients = 128\n" in out
    assert "listen = 127.0.0.1:7405\n" in out
