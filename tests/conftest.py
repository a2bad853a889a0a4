"""Make the collection importable as ``ansible_collections.nswap.cluster``.

Ansible modules import shared code by its collection path.  Tests run from a
plain checkout, so a symlink farm under build/ gives the checkout that name.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, "build", "collections")


def _link_collection():
    ns_dir = os.path.join(COLLECTIONS, "ansible_collections", "nswap")
    link = os.path.join(ns_dir, "cluster")
    os.makedirs(ns_dir, exist_ok=True)
    if not os.path.islink(link):
        os.symlink(REPO, link)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


_link_collection()
