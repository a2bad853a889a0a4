"""nswapd.service confines nswapd; what nswapd's code needs must stay allowed.

The drain of a rolling re-deploy failed on the lab when nswapd started asking the kernel's
socket table who sent a control request (src/nswapd/peercred.c, an AF_NETLINK socket) and
the unit's RestrictAddressFamilies did not list AF_NETLINK: every SET_CACHE_LIMIT was
refused.  This reads each socket() call of src/nswapd and checks its family is allowed.
"""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "nswapd"


def allowed_families():
    lines = [
        line.split("=", 1)[1].split()
        for line in (SRC / "nswapd.service").read_text().splitlines()
        if line.startswith("RestrictAddressFamilies=")
    ]
    assert len(lines) == 1, lines
    return set(lines[0])


def families_opened():
    found = {}
    for path in sorted(SRC.glob("*.c")):
        if path.name == "nswap-bench.c":  # the load generator, not run by the unit
            continue
        for family in re.findall(r"\bsocket\(\s*(AF_\w+|\w+->ss_family|\w+)", path.read_text()):
            found.setdefault(family, []).append(path.name)
    return found


def test_every_family_nswapd_opens_is_allowed_by_its_unit():
    opened = families_opened()
    literal = {f for f in opened if f.startswith("AF_")}
    assert "AF_NETLINK" in literal, opened  # the parser sees peercred.c's socket
    missing = literal - allowed_families()
    assert not missing, "nswapd.service does not allow %s, opened in %s" % (
        sorted(missing),
        {f: opened[f] for f in missing},
    )
    # a family chosen at run time (the listen address's) is one of IPv4 and IPv6
    assert {"AF_INET", "AF_INET6"} <= allowed_families()
