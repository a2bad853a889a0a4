"""The role's refusal to drain several servers of one deploy batch at once (each would wait
for the others to take its pages): the task from tasks/present.yml itself, run by
ansible-playbook on three local hosts with the fact the plan sets, in one batch and in
batches of one (nswap_deploy_server_batch=1, as playbooks/deploy.yml passes it)."""

import os
import re
import subprocess

import pytest
import yaml

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
)
PRESENT = os.path.join(REPO, "roles", "nswap_server", "tasks", "present.yml")
PLAYBOOK = os.path.join(REPO, ".venv", "bin", "ansible-playbook")
GUARD = "Refuse to drain several servers at once"


def guard_task():
    with open(PRESENT) as handle:
        (block,) = [t for t in yaml.safe_load(handle) if "block" in t]
    (task,) = [t for t in block["block"] if t.get("name") == GUARD]
    return task


def run(tmp_path, drains, batch):
    """Failed hosts of a play over a, b, c where `drains` hold pages to be drained."""
    hosts = {h: dict(ansible_connection="local") for h in "abc"}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    play = dict(
        hosts="all",
        gather_facts=False,
        serial=batch,
        tasks=[
            {"ansible.builtin.set_fact": {"__nswap_server_drains": "{{ inventory_hostname in %r }}"
                                          % list(drains)}},
            guard_task(),
        ],
    )  # fmt: skip
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play]))
    proc = subprocess.run(
        [PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_PYTHON_INTERPRETER="auto_silent"),
        timeout=300,
        check=False,
    )
    failed = set(re.findall(r"^fatal: \[(\w)\]", proc.stdout, re.M))
    return failed, proc.stdout


@pytest.mark.parametrize(
    ("drains", "batch", "refused"),
    [
        ("ab", "100%", {"a", "b"}),  # two in one batch: both refused, nothing changed
        ("ab", 1, set()),  # one at a time: each drains into the others
        ("a", "100%", set()),  # one drains, the others take its pages
        ("", "100%", set()),
    ],
)
def test_several_drains_in_one_batch_are_refused(tmp_path, drains, batch, refused):
    failed, out = run(tmp_path, drains, batch)
    assert failed == refused, out[-3000:]
    if refused:
        assert "2 servers of this run hold pages and would be drained at once" in out
        assert "-e nswap_deploy_server_batch=1" in out
