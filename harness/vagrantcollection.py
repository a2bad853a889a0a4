# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local stand-in for the Galaxy-only collection community.vagrant.

molecule-plugins' vagrant driver runs the module `community.vagrant.vagrant` and asks for
community.vagrant>=1.0.1; ansible-compat would fetch it from Galaxy, which this project's
hosts cannot reach.  The same module (same argument spec) ships in the molecule-vagrant
2.0.0 wheel on PyPI (MIT).  That wheel cannot be pip-installed next to molecule-plugins
(both register the molecule driver `vagrant`), so scripts/setup-host downloads it and this
code lays the module out as an installed collection.
"""

import hashlib
import json
import os
import zipfile

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    read_json,
    remove_tree,
    write_json_atomic,
)

WHEEL_NAME = "molecule_vagrant-2.0.0-py3-none-any.whl"
WHEEL_SHA256 = "2fdd67228cd2926e07d6702e5534480f0ea1319ad1e1eaad0038240a1420039c"
MODULE_MEMBER = "molecule_vagrant/modules/vagrant.py"
LICENSE_MEMBER = "molecule_vagrant-2.0.0.dist-info/LICENSE"
# The version molecule-plugins asks for; the module is that release's code.
COLLECTION_VERSION = "1.0.1"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(wheel_sha):
    return {
        "collection_info": {
            "namespace": "community",
            "name": "vagrant",
            "version": COLLECTION_VERSION,
            "authors": ["nswap developers (local stand-in)"],
            "readme": "README.md",
            "license": ["MIT"],
            "description": "Local stand-in for community.vagrant: the vagrant module of the "
            "molecule-vagrant 2.0.0 wheel (PyPI, MIT), sha256 %s" % wheel_sha,
            "dependencies": {},
        },
        "file_manifest_file": {"name": "FILES.json", "ftype": "file", "format": 1},
        "format": 1,
    }


def collection_dir(collections_path):
    return os.path.join(collections_path, "ansible_collections", "community", "vagrant")


def ensure_collection(wheel, collections_path):
    """Install the stand-in from `wheel` under collections_path; return True if changed."""
    if not os.path.isfile(wheel):
        raise LabError(
            "%s not found; download it with: .venv/bin/pip download --no-deps -d %s "
            "molecule-vagrant==2.0.0" % (wheel, os.path.dirname(wheel) or ".")
        )
    got = sha256(wheel)
    if got != WHEEL_SHA256:
        raise LabError(
            "%s has sha256 %s, expected %s (molecule-vagrant 2.0.0); delete it and download "
            "it again" % (wheel, got, WHEEL_SHA256)
        )
    dest = collection_dir(collections_path)
    wanted = manifest(got)
    if read_json(os.path.join(dest, "MANIFEST.json")) == wanted:
        return False
    stage = dest + ".partial-%d" % os.getpid()
    remove_tree(stage)
    with zipfile.ZipFile(wheel) as archive:
        module_code = archive.read(MODULE_MEMBER)
        license_text = archive.read(LICENSE_MEMBER)
    os.makedirs(os.path.join(stage, "plugins", "modules"))
    os.makedirs(os.path.join(stage, "meta"))
    files = {
        "plugins/modules/vagrant.py": module_code,
        "LICENSE": license_text,
        "README.md": b"Local stand-in for community.vagrant (see MANIFEST.json).\n",
        "meta/runtime.yml": b'---\nrequires_ansible: ">=2.15.0"\n',
    }
    for name, data in files.items():
        with open(os.path.join(stage, name), "wb") as handle:
            handle.write(data)
    write_json_atomic(
        os.path.join(stage, "FILES.json"),
        {
            "files": [
                {
                    "name": name,
                    "ftype": "file",
                    "chksum_type": "sha256",
                    "chksum_sha256": hashlib.sha256(data).hexdigest(),
                    "format": 1,
                }
                for name, data in sorted(files.items())
            ],
            "format": 1,
        },
    )
    with open(os.path.join(stage, "MANIFEST.json"), "w") as handle:
        json.dump(wanted, handle, indent=2, sort_keys=True)
    remove_tree(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.rename(stage, dest)
    return True
