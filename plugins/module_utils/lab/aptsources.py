# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the host's apt mirrors, so that lab images never hard-code a mirror host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import LabError


def parse_deb822(text):
    """Yield (uris, suites, components) of each enabled 'Types: deb' stanza."""
    for stanza in text.split("\n\n"):
        fields = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _colon, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield (
            fields.get("uris", "").split(),
            fields.get("suites", "").split(),
            fields.get("components", "").split(),
        )


def parse_one_line(text):
    """Yield (uris, suites, components) from classic sources.list lines."""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            yield [words[0]], [words[1]], words[2:]


def host_sources(root="/"):
    entries = []
    etc = os.path.join(root, "etc/apt")
    for path in sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.sources"))):
        with open(path) as handle:
            entries.extend(parse_deb822(handle.read()))
    one_line = [os.path.join(etc, "sources.list")]
    one_line += sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.list")))
    for path in one_line:
        if os.path.exists(path):
            with open(path) as handle:
                entries.extend(parse_one_line(handle.read()))
    return entries


def mirrors_for(suite, entries):
    """Return {'main': uri, 'security': uri} serving `suite` and `suite`-security."""
    found = {}
    for uris, suites, _components in entries:
        for s in suites:
            if s == suite and "main" not in found:
                found["main"] = uris[0]
            if s == suite + "-security" and "security" not in found:
                found["security"] = uris[0]
    missing = [k for k in ("main", "security") if k not in found]
    if missing:
        raise LabError(
            "the host's apt sources have no %s mirror for suite %r: add "
            "'%s' and '%s-security' to /etc/apt/sources.list.d/ (the lab image is "
            "built from the same mirrors as the host)"
            % (" and ".join(missing), suite, suite, suite)
        )
    return found
