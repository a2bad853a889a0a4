"""Make this checkout importable as the collection ``ansible_collections.nswap.cluster``.

Modules and module_utils import each other by their collection name, and Ansible finds the
collection under ``<collections path>/ansible_collections/nswap/cluster``.  A checkout is not
laid out like that, so ``build/collections/ansible_collections/nswap/cluster`` is made a
symlink to it (ansible.cfg's collections_path is ./build/collections), and that collections
path goes on ``sys.path`` for Python code (tests, scripts/minivm, benchmarks/datapath.py).
Importing the package ``harness`` does both (harness/__init__.py).
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, "build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "nswap", "cluster")
# Relative, so that the link still names the checkout after it is moved or copied
# (the device machine gets a copy of the working tree at another path).
TARGET = os.path.relpath(REPO, os.path.dirname(LINK))


def link_collection():
    """Create (or repair) the link; return the collections path."""
    if os.path.realpath(LINK) == os.path.realpath(REPO):
        return COLLECTIONS
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    if os.path.exists(LINK) and not os.path.islink(LINK):
        raise RuntimeError(
            "%s is a real directory, not a link to this checkout: remove it (it is a build "
            "product) and run again" % LINK
        )
    # A link made next to it and renamed over it: parallel callers (pytest workers, a
    # script started while tests run) never see a missing or half-made link.
    tmp = "%s.%d.tmp" % (LINK, os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(TARGET, tmp)
    os.replace(tmp, LINK)
    return COLLECTIONS


def ensure():
    """Make the link and put the collections path first on sys.path; return that path."""
    link_collection()
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    return COLLECTIONS
