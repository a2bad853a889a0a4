"""What ships apart from what develops: `ansible-galaxy collection build` makes a tarball
that holds the collection and nothing of its development (the harness, tests, CI, scripts,
benchmark tooling, dev configuration, build products), installs, and works by FQCN outside
this checkout; and plugins/ holds only code that a plugin uses."""

import ast
import glob
import os
import subprocess
import sys
import tarfile

import pytest

from harness import collection
from tests.unit.plugins.plugin_utils.nswapbench.test_schema import cell, link, write_jsonl

REPO = collection.REPO
BIN = collection.VENV_BIN
COLLECTION = "ansible_collections.nswap.cluster"
# The checkout's development side (galaxy.yml build_ignore): none of it ships.
DEVELOPS = (
    "harness/",
    "tests/",
    "molecule/",
    "scripts/",
    "benchmarks/",
    "src/sim/",
    ".ci/",
    "changelogs/fragments/",
    ".gitignore",
    ".ansible-lint",
    "ansible.cfg",
    "pyproject.toml",
    "requirements.txt",
)
# Consumed by the build (it becomes MANIFEST.json), not copied.
BUILD_INPUT = ("galaxy.yml",)
WRITTEN_BY_THE_BUILD = {"MANIFEST.json", "FILES.json"}


def run(argv, cwd, env=None):
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def checkout_files():
    """Files of the checkout as git sees them: tracked or new, never ignored ones (build
    products, caches, .venv), and only those still in the working tree."""
    out = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO)
    return {path for path in out.splitlines() if os.path.isfile(os.path.join(REPO, path))}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The tarball installed into a fresh collections path of this test's own."""
    work = tmp_path_factory.mktemp("galaxy")
    path, tarball = collection.install(str(work / "installed"))
    with tarfile.open(tarball) as tar:
        files = {member.name for member in tar.getmembers() if member.isfile()}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=path, PATH="%s:%s" % (BIN, os.environ["PATH"]))
    return files, path, work, env


def test_tarball_holds_exactly_the_checkout_less_what_develops(installed):
    files, _path, _work, _env = installed
    shipped = {path for path in checkout_files() if not path.startswith(DEVELOPS + BUILD_INPUT)}
    assert not sorted(name for name in files if name.startswith(DEVELOPS)), "dev files ship"
    missing = sorted(shipped - files)
    assert not missing, "left out of the tarball: %s" % missing
    # Anything else is a build product or an ignored file that build_ignore lets through.
    extra = sorted(files - shipped - WRITTEN_BY_THE_BUILD)
    assert not extra, "not part of the checkout (build products?): %s" % extra


def test_tarball_has_every_plugin_role_playbook_and_source_tree(installed):
    files, _path, _work, _env = installed
    wanted = set(WRITTEN_BY_THE_BUILD) | {"README.md"}
    wanted |= {os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "plugins/*/*.py"))}
    wanted |= {os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "playbooks/*.yml"))}
    assert not sorted(wanted - files)
    for tree in [
        *(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "roles", "*", ""))),
        "src/kmod/",
        "src/nswapd/",
        "src/include/",
        "src/workloads/",
    ]:
        assert any(name.startswith(tree.rstrip("/") + "/") for name in files), tree
    assert len([n for n in files if n.startswith("plugins/modules/")]) >= 8


def test_installed_plugins_import_without_the_checkout(installed):
    """Every module, filter and module_utils file imports from the installed copy alone:
    none of them needs the harness, tests or anything else left out of the tarball."""
    _files, path, work, _env = installed
    root = os.path.join(path, *COLLECTION.split("."))
    names = [
        COLLECTION + "." + os.path.relpath(p, root)[:-3].replace(os.sep, ".")
        for p in glob.glob(os.path.join(root, "plugins", "**", "*.py"), recursive=True)
    ]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    # -I: no user site, no PYTHONPATH, no cwd; the installed collection path only.
    env = dict(os.environ, PYTHONPATH="")
    proc = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, %r)\n%s" % (path, code)]
        + names,
        cwd=str(work),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(names) > 10


def test_modules_document_themselves_by_fqcn(installed):
    _files, _path, work, env = installed
    out = run([os.path.join(BIN, "ansible-doc"), "nswap.cluster.lab_vm"], cwd=str(work), env=env)
    assert "Starts a Debian VM from the lab image" in " ".join(out.split())


def test_filter_works_by_fqcn(installed):
    _files, _path, work, env = installed
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


def test_benchmark_report_renders_from_the_installed_collection(installed):
    """The report's renderer ships (plugin_utils) and its module runs by FQCN: a user of the
    installed collection gets the report without a checkout."""
    _files, _path, work, env = installed
    results = work / "results"
    results.mkdir()
    write_jsonl(results / "runs.jsonl", cell("W1", 1, "disk", [10.0, 12.0]) + [link()])
    out = run(
        [os.path.join(BIN, "ansible"), "localhost", "-m", "nswap.cluster.nswap_bench_report"]
        + ["-a", "src=results/runs.jsonl"],
        cwd=str(work),
        env=dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal"),
    )
    assert "localhost | CHANGED" in out, out[-3000:]
    assert "## Table 1" in (results / "report" / "report.md").read_text()


# --- plugins/ holds only what plugins use --------------------------------------------------

PLUGINS = os.path.join(REPO, "plugins")
SHARED = ("plugins/module_utils/", "plugins/plugin_utils/")  # code only other plugins import


def _module_path(dotted):
    """plugins/... path of a collection module name, or None if it is not a file here."""
    prefix = COLLECTION + "."
    if not dotted.startswith(prefix):
        return None
    path = dotted[len(prefix) :].replace(".", "/") + ".py"
    return path if os.path.isfile(os.path.join(REPO, path)) else None


def collection_imports(path):
    """plugins/ files that ``path`` imports by collection name, and any other top-level
    package it imports (to catch the harness or tests)."""
    with open(os.path.join(REPO, path)) as handle:
        tree = ast.parse(handle.read(), path)
    files, packages = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or node.level):
            # `from pkg import name`: name is a module of pkg, or something defined in pkg;
            # `from . import name` / `from .mod import name`: pkg is relative to this file's.
            module = node.module or ""
            if node.level:
                package = (COLLECTION + "." + path[:-3].replace("/", ".")).split(".")
                base = ".".join(package[: -node.level])
                module = base + ("." + module if module else "")
            dotted = [module] + [module + "." + a.name for a in node.names]
        else:
            continue
        for name in dotted:
            packages.add(name.split(".")[0])
            found = _module_path(name)
            if found:
                files.add(found)
    return files, packages


def test_every_module_utils_and_plugin_utils_file_is_used_by_a_plugin():
    """Test tooling (the mini VM, kernel kits, Vagrant host set-up...) lives in harness/:
    a module_utils file that no module or filter reaches, directly or through other
    module_utils, is code that ships for nothing."""
    sources = sorted(
        os.path.relpath(p, REPO)
        for p in glob.glob(os.path.join(PLUGINS, "**", "*.py"), recursive=True)
    )
    graph = {path: collection_imports(path) for path in sources}
    reached = set()
    todo = [p for p in sources if not p.startswith(SHARED)]
    assert todo, "no modules or filters found under plugins/"
    while todo:
        path = todo.pop()
        for dep in graph[path][0] - reached:
            reached.add(dep)
            todo.append(dep)
    unused = [p for p in sources if p.startswith(SHARED) and p not in reached]
    unused = [p for p in unused if not p.endswith("__init__.py")]
    assert not unused, "module_utils no plugin imports (move test tooling to harness/): %s" % unused
    for path, (_files, packages) in graph.items():
        assert not packages & {"harness", "tests", "benchmarks"}, (path, packages)
