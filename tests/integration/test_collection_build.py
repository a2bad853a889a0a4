"""`ansible-galaxy collection build` makes a tarball that installs and whose content
works by FQCN outside this checkout."""

import os
import subprocess
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".venv", "bin")


def run(argv, cwd, env=None):
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("galaxy")
    run(
        [
            os.path.join(BIN, "ansible-galaxy"),
            "collection",
            "build",
            "--output-path",
            str(work),
            REPO,
        ],
        cwd=str(work),
    )
    tarball = work / "nswap-cluster-0.1.0.tar.gz"
    assert tarball.exists()
    target = work / "collections"
    run(
        [
            os.path.join(BIN, "ansible-galaxy"),
            "collection",
            "install",
            # a copy elsewhere (e.g. one molecule installed in ~/.ansible) must not
            # make ansible-galaxy skip this install as "already installed"
            "--force",
            "-p",
            str(target),
            str(tarball),
        ],
        cwd=str(work),
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(target),
        PATH="%s:%s" % (BIN, os.environ["PATH"]),
    )
    return tarball, work, env


def test_tarball_has_the_collection_and_no_build_outputs(installed):
    tarball, _work, _env = installed
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    for wanted in (
        "MANIFEST.json",
        "plugins/modules/lab_vm.py",
        "roles/lab/tasks/main.yml",
        "src/include/nswap_proto.h",
    ):
        assert wanted in names or any(n.endswith("/" + wanted) for n in names), wanted
    assert not [n for n in names if n.startswith((".venv", "build/", ".git/"))]
    assert not [n for n in names if n.endswith((".ko", ".o", ".qcow2"))]


def test_modules_document_themselves_by_fqcn(installed):
    _tarball, work, env = installed
    out = run([os.path.join(BIN, "ansible-doc"), "nswap.cluster.lab_vm"], cwd=str(work), env=env)
    assert "Starts a Debian VM from the lab image" in " ".join(out.split())


def test_filter_works_by_fqcn(installed):
    _tarball, work, env = installed
    play = work / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.assert:\n"
        "        that: \"('10.1.0.0/24' | nswap.cluster.lab_layout(1, 1))[1].ip == '10.1.0.12'\"\n"
    )
    out = run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)],
        cwd=str(work),
        env=env,
    )
    assert "failed=0" in out
