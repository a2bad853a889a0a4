# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the nswap.cluster.swap module: parsing, rendering, arithmetic.

Nothing here touches the system, so all of it is unit tested directly:
``swapon --show`` and ``/proc/swaps`` tables, ``blkid -o export`` output,
``/proc/meminfo``, sizes, priorities, ``/etc/fstab`` swap lines, and the
check that a swap area can be swapped off without running out of memory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.common.text.formatters import human_to_bytes

MIN_PRIORITY = -1
MAX_PRIORITY = 32767
DISCARD_CHOICES = ("none", "once", "pages", "both")
# blkid TYPE values of a swap area (swsuspend: a swap area holding a hibernation image)
SWAP_TYPES = ("swap", "swsuspend")
# tags accepted instead of a path (resolved with blkid -t / findfs)
TAGS = ("LABEL", "UUID", "PARTLABEL", "PARTUUID")
MAX_LABEL_BYTES = 16
KIB = 1024
MIB = 1024 * KIB
# swapoff must leave this much headroom: 10% of the pages to move plus 64 MiB
SWAPOFF_MARGIN_RATIO = 0.10
SWAPOFF_MARGIN_BYTES = 64 * MIB

# "2GiB" -> "2GB": human_to_bytes knows K and KB (both powers of 1024), not KiB
_IEC_SUFFIX_RE = re.compile(r"([KMGTPEZY])IB$")


# --- input validation -----------------------------------------------------------


def parse_size(value):
    """Bytes of a size: an int, or a number with an optional suffix K, M, G or T.

    The suffixes are powers of 1024 (512M is 512 MiB), with or without B or iB
    (512MB, 512MiB); the number may have a fraction (1.5G).  The one size parser of
    the collection; ansible-core's human_to_bytes does the arithmetic.
    """
    text = "" if value is None or isinstance(value, bool) else str(value).strip().upper()
    try:
        size = human_to_bytes(_IEC_SUFFIX_RE.sub(r"\1B", text))
    except ValueError:
        raise ValueError(
            "size=%r is not a size; use bytes (1073741824) or a number with a K, M, G "
            "or T suffix, powers of 1024 (1G, 512M)" % (value,)
        )
    if size <= 0:
        raise ValueError("size=%r must be more than 0 bytes" % (value,))
    return size


def check_priority(priority):
    """Raise ValueError unless priority is None or in -1..32767."""
    if priority is None:
        return None
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(
            "priority=%d is out of range; the valid range is %d..%d "
            "(-1 lets the kernel pick a negative priority, higher is used first)"
            % (priority, MIN_PRIORITY, MAX_PRIORITY)
        )
    return priority


def tag_spec(path):
    """("LABEL", "x") for "LABEL=x" (also UUID, PARTLABEL, PARTUUID); None for a path."""
    name, sep, value = (path or "").partition("=")
    if sep and name.upper() in TAGS and not name.startswith("/"):
        return name.upper(), value.strip("\"'")
    return None


def priority_matches(wanted, current):
    """Whether an area active with priority `current` satisfies the wanted priority."""
    if wanted is None:
        return True
    if wanted == -1:  # automatic priorities are the negative ones
        return current < 0
    return current == wanted


# --- escapes --------------------------------------------------------------------


def unescape_hex(value):
    r"""Undo the \xHH escapes of ``swapon --raw`` (a space is \x20, a backslash \x5c)."""
    raw = value.encode("utf-8", "surrogateescape")
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return raw.decode("utf-8", "surrogateescape")


def unescape_octal(value):
    r"""Undo the \ooo escapes of /proc/swaps and /etc/fstab (a space is \040)."""
    raw = value.encode("utf-8", "surrogateescape")
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8) & 0xFF]), raw)
    return raw.decode("utf-8", "surrogateescape")


def escape_fstab(value):
    """Escape a path for an /etc/fstab field (backslash, space, tab, newline as octal)."""
    for char, code in (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011"), ("\n", "\\012")):
        value = value.replace(char, code)
    return value


# --- tables ---------------------------------------------------------------------


def _swap(name, kind, size, used, priority):
    return dict(name=name, type=kind, size=size, used=used, priority=priority)


def parse_swapon_show(text):
    """Parse ``swapon --show=NAME,TYPE,SIZE,USED,PRIO --bytes --noheadings --raw``."""
    swaps = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 5 or not fields[2].isdigit():
            continue  # blank, a heading, or not --bytes
        name, kind, size, used, prio = fields
        swaps.append(_swap(unescape_hex(name), kind, int(size), int(used), int(prio)))
    return swaps


def parse_proc_swaps(text):
    """Parse /proc/swaps (sizes in KiB there, in bytes here)."""
    swaps = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) != 5:
            continue
        name, kind, size, used, prio = fields
        swaps.append(_swap(unescape_octal(name), kind, int(size) * KIB, int(used) * KIB, int(prio)))
    return swaps


def parse_blkid_export(text):
    r"""Parse ``blkid -o export`` (KEY=value lines; special characters are \-escaped)."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            result[key] = re.sub(r"\\(.)", r"\1", value)
    return result


def parse_meminfo(text):
    """Parse /proc/meminfo into bytes per field."""
    result = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if sep and fields and fields[0].isdigit():
            factor = KIB if len(fields) > 1 and fields[1] == "kB" else 1
            result[key.strip()] = int(fields[0]) * factor
    return result


def mem_available(meminfo):
    """MemAvailable in bytes, estimated from free memory and caches on kernels before 3.14."""
    if "MemAvailable" in meminfo:
        return meminfo["MemAvailable"]
    return sum(meminfo.get(key, 0) for key in ("MemFree", "Buffers", "Cached"))


# --- swapoff feasibility --------------------------------------------------------


def swapoff_need(used, margin_ratio=SWAPOFF_MARGIN_RATIO, margin_bytes=SWAPOFF_MARGIN_BYTES):
    """Bytes that must be available to swap off an area with `used` bytes in use."""
    if used <= 0:
        return 0
    return used + int(used * margin_ratio) + margin_bytes


def swapoff_check(area, swaps, available_memory):
    """(ok, needed, available) for swapping off `area`, one of the active `swaps`.

    Its pages go back to RAM or to the other active swap areas, so they must fit in
    MemAvailable plus the free space of the other areas, with a safety margin.
    """
    others_free = sum(
        max(0, swap["size"] - swap["used"]) for swap in swaps if swap["name"] != area["name"]
    )
    needed = swapoff_need(area["used"])
    available = available_memory + others_free
    return needed <= available, needed, available


def swapoff_refusal(name, needed, available):
    return (
        "swapoff %s would need %d MiB but only %d MiB are available (MemAvailable + free "
        "space on other swap areas); free memory or add swap first"
        % (name, -(-needed // MIB), available // MIB)
    )


# --- /etc/fstab -----------------------------------------------------------------


def _lines(text):
    """Lines of text with their newline; splits on \\n only, so joining gives text back."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _fields(line):
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    return stripped.split()


def swap_options(options):
    """(priority, discard, other options) of an fstab swap line's options field."""
    priority, discard, others = None, "none", []
    for option in (options or "").split(","):
        name, sep, value = option.partition("=")
        if name == "pri" and sep and re.match(r"^-?\d+$", value):
            priority = int(value)
        elif name == "discard":
            discard = value if sep and value in ("once", "pages") else "both"
        elif option and option not in ("sw", "defaults"):
            others.append(option)
    return priority, discard, others


def render_swap_line(spec, priority=None, discard=None, extra_options=()):
    """An fstab line ``<spec> none swap sw[,pri=N][,discard[=once|pages]] 0 0``."""
    options = ["sw"]
    if priority is not None and priority >= 0:
        options.append("pri=%d" % priority)
    if discard == "both":
        options.append("discard")
    elif discard in ("once", "pages"):
        options.append("discard=" + discard)
    options.extend(extra_options)
    return "%s none swap %s 0 0" % (escape_fstab(spec), ",".join(options))


def _is_swap_line(fields, matches):
    return (
        fields is not None
        and len(fields) >= 3
        and fields[2] == "swap"
        and (matches(unescape_octal(fields[0])))
    )


def find_swap_line(text, matches):
    """The first fstab swap line whose spec satisfies matches(spec), without newline."""
    for line in _lines(text or ""):
        if _is_swap_line(_fields(line), matches):
            return line.rstrip("\r\n")
    return None


def update_fstab(text, matches, new_line):
    """fstab text with the swap lines whose spec satisfies matches(spec) updated.

    The first such line becomes new_line (kept as it is when it has the same fields),
    further ones (duplicates) are dropped; with new_line None all are dropped.  Without
    a match, new_line is appended.  Every other byte of text stays as it was.
    """
    out, placed = [], False
    for line in _lines(text):
        fields = _fields(line)
        if not _is_swap_line(fields, matches):
            out.append(line)
            continue
        if new_line is not None and not placed:
            placed = True
            if fields == new_line.split():
                out.append(line)
            else:
                ending = line[len(line.rstrip("\r\n")) :]
                out.append(new_line + (ending or "\n"))
    if new_line is not None and not placed:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(new_line + "\n")
    return "".join(out)
