"""The changelog (changelogs/, CHANGELOG.rst) lists every module, filter, role and playbook.

antsibull-changelog lists a new module, filter or role by itself at release time when its
version_added (DOCUMENTATION, roles/*/meta/argument_specs.yml) is the released version;
playbooks come from "add object.playbook" fragments.  So a module that is already in a
release must be listed there under its version_added, a module added since the last
release must carry a newer version_added, and a playbook must be listed or have a
fragment.  A new module without version_added, or one that copied an old release's, fails
here instead of silently missing from CHANGELOG.rst.
"""

import ast
import glob
import os
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.compat.version import LooseVersion

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHANGELOGS = os.path.join(REPO, "changelogs")
TOOL = os.path.join(os.path.dirname(sys.executable), "antsibull-changelog")


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def documentation(path):
    """The DOCUMENTATION of a module or filter file, parsed."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets
        ):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError("%s has no DOCUMENTATION" % os.path.relpath(path, REPO))


def content():
    """(kind, name, version_added) of everything the changelog must list."""
    items = []
    for path in sorted(glob.glob(os.path.join(REPO, "plugins", "modules", "*.py"))):
        if os.path.basename(path) != "__init__.py":
            items.append(("module", os.path.basename(path)[:-3], documentation(path)))
    for path in sorted(glob.glob(os.path.join(REPO, "plugins", "filter", "*.py"))):
        if os.path.basename(path) != "__init__.py":
            doc = documentation(path)
            items.append(("filter", doc["name"], doc))
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "meta", "argument_specs.yml"))):
        role = path.split(os.sep)[-3]
        items.append(("role", role, load_yaml(path)["argument_specs"]["main"]))
    for path in sorted(glob.glob(os.path.join(REPO, "playbooks", "*.yml"))):
        items.append(("playbook", os.path.basename(path)[:-4], {}))
    return [(kind, name, doc.get("version_added")) for kind, name, doc in items]


def releases():
    """{version: release} of changelogs/changelog.yaml."""
    return load_yaml(os.path.join(CHANGELOGS, "changelog.yaml"))["releases"] or {}


def released():
    """{(kind, name): version} of everything changelog.yaml lists."""
    listed = {}
    for version, release in releases().items():
        for entry in release.get("modules", []):
            listed[("module", entry["name"])] = str(version)
        for kind, entries in (release.get("plugins") or {}).items():
            for entry in entries:
                listed[(kind, entry["name"])] = str(version)
        for kind, entries in (release.get("objects") or {}).items():
            for entry in entries:
                listed[(kind, entry["name"])] = str(version)
    return listed


def pending_playbooks():
    names = set()
    for path in glob.glob(os.path.join(CHANGELOGS, "fragments", "*.y*ml")):
        for entry in (load_yaml(path) or {}).get("add object.playbook", []):
            names.add(entry["name"])
    return names


def latest_release():
    versions = [str(v) for v in releases()]
    return max(versions, key=LooseVersion) if versions else None


def test_antsibull_changelog_lint_passes():
    for args in (["lint"], ["lint-changelog-yaml", os.path.join(CHANGELOGS, "changelog.yaml")]):
        proc = subprocess.run(
            [TOOL, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
        )
        assert proc.returncode == 0 and not proc.stdout.strip(), (
            "antsibull-changelog %s found problems:\n%s%s" % (args[0], proc.stdout, proc.stderr)
        )


@pytest.mark.parametrize(("kind", "name", "version_added"), content())
def test_listed_in_the_changelog(kind, name, version_added):
    listed = released()
    latest = latest_release()
    if kind == "playbook":
        assert (kind, name) in listed or name in pending_playbooks(), (
            "playbooks/%s.yml is in no release of changelogs/changelog.yaml and in no fragment: "
            "add it to a changelogs/fragments/*.yml under 'add object.playbook:' "
            "(name and description)" % name
        )
        return
    assert version_added, (
        "%s %s has no version_added: set it to the next release's version so that "
        "antsibull-changelog lists it" % (kind, name)
    )
    if (kind, name) in listed:
        assert listed[(kind, name)] == str(version_added), (
            "%s %s says version_added %s but changelogs/changelog.yaml lists it in %s"
            % (kind, name, version_added, listed[(kind, name)])
        )
    else:
        assert latest is None or LooseVersion(str(version_added)) > LooseVersion(latest), (
            "%s %s (version_added %s) is in no release of changelogs/changelog.yaml: a new one "
            "needs a version_added after the latest release %s, so that the next "
            "'antsibull-changelog release' lists it" % (kind, name, version_added, latest)
        )


def test_changelog_rst_has_every_release():
    with open(os.path.join(REPO, "CHANGELOG.rst"), encoding="utf-8") as f:
        text = f.read()
    missing = [str(v) for v in releases() if "v%s\n" % v not in text]
    assert not missing, (
        "CHANGELOG.rst lacks release(s) %s: regenerate it with "
        "'.venv/bin/antsibull-changelog generate'" % ", ".join(missing)
    )
