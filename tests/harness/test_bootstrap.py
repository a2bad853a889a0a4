"""The one bootstrap that makes a checkout the collection (harness/bootstrap.py), on a
fake checkout in tmp_path."""

import os
import sys

import pytest

from harness import bootstrap


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    repo = tmp_path / "checkout"
    (repo / "plugins").mkdir(parents=True)
    collections = repo / "build" / "collections"
    link = collections / "ansible_collections" / "nswap" / "cluster"
    monkeypatch.setattr(bootstrap, "REPO", str(repo))
    monkeypatch.setattr(bootstrap, "COLLECTIONS", str(collections))
    monkeypatch.setattr(bootstrap, "LINK", str(link))
    monkeypatch.setattr(bootstrap, "TARGET", os.path.relpath(repo, link.parent))
    return repo, collections, link


def test_makes_a_relative_link_that_survives_a_move(checkout, tmp_path):
    repo, collections, link = checkout
    assert bootstrap.link_collection() == str(collections)
    assert os.readlink(link) == "../../../.."
    assert (link / "plugins").is_dir()
    moved = tmp_path / "moved"
    os.rename(repo, moved)
    assert (moved / "build/collections/ansible_collections/nswap/cluster/plugins").is_dir()


def test_repairs_a_link_to_another_checkout(checkout, tmp_path):
    repo, _collections, link = checkout
    link.parent.mkdir(parents=True)
    os.symlink(str(tmp_path / "gone"), link)
    bootstrap.link_collection()
    assert os.path.realpath(link) == os.path.realpath(repo)
    assert [p.name for p in link.parent.iterdir()] == ["cluster"]  # no temporary left


def test_a_real_directory_in_the_way_is_named(checkout):
    _repo, _collections, link = checkout
    link.mkdir(parents=True)
    with pytest.raises(RuntimeError, match="is a real directory, not a link"):
        bootstrap.link_collection()


def test_ensure_puts_the_collections_path_first_once(checkout, monkeypatch):
    _repo, collections, _link = checkout
    monkeypatch.setattr(sys, "path", ["/elsewhere"])
    assert bootstrap.ensure() == str(collections)
    bootstrap.ensure()
    assert sys.path == [str(collections), "/elsewhere"]
