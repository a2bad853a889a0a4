"""The benchmark's JSON-lines records: the one definition of their fields, and validation.

A results file holds one JSON object per line, of three kinds (``kind``):

``run`` (also when ``kind`` is absent): one timed run of a workload on one swap backend.

    workload        "W1".."W4"                the paper's workloads (src/workloads)
    procs           int 1..64                 worker processes (the paper: 1 and 4)
    backend         str                       "disk" (the reference), "nswap-1", "nswap-3",
                                              "nbd", "zram", ...: an open set of names
    repetition      int >= 0                  index of the run within its cell
    wall_s          number >= 0 | null        wall time; null only when status is not "ok"
    pswpin          int >= 0 | null           pages swapped in during the run (delta)
    pswpout         int >= 0 | null           pages swapped out during the run (delta)
    bytes_verified  int >= 0                  bytes the workload read back and compared
    mismatches      int >= 0 | null           wrong pages found (anything above 0 is corruption);
                                              null (not known) only when status is not "ok"
    status          "ok" | "failed" | "timeout"
    kernel          str                       client kernel release
    commit          str                       git commit of the code under test
    node            object                    facts of the client node (free-form)
    disk_profile    str                       "hdd", "ssd", "nvme", ...: what the swap disk was
    link_profile    str                       "unlimited", "100mbit", ...: what the link was
    link_rate_mbit  number > 0 | null         the tc rate limit; null = not limited
    projection      bool, optional            a run at a rate chosen for Table 2's fit; absent:
                                              true when link_rate_mbit is set
    swap_io         object | null, optional   the swap device's /sys/block/<dev>/stat deltas:
                                              reads, read_sectors, read_ms, writes,
                                              write_sectors, write_ms (ints >= 0); null/absent:
                                              not measured
    migrations      int >= 0 | null, optional pages whose move to another server the client
                                              followed during the run (nswap.ko's counter);
                                              null/absent: not an nswap device
    shrink          object | null, optional   a shrink run's shrink (nswap_bench_shrink.py):
                                              shrunk (bool), at_s, used_pages, limit_pages,
                                              error; kept as is

``link``: a raw rate measured on a link profile (what the paper quotes beside its tables).

    link_profile    str
    link_rate_mbit  number > 0 | null         as in run records
    stream_mbs      number > 0                TCP stream throughput, MB/s (10^6 bytes)
    rtt_4k_us       number > 0                4 KiB ping-pong round trip, microseconds

``disk``: a raw rate measured on a disk profile.

    disk_profile    str
    seq_mbs         number > 0                sequential throughput, MB/s (10^6 bytes)
    rand_4k_iops    number > 0                random 4 KiB I/O operations per second

Other keys are allowed (kept in the raw copy, ignored here).  A bad line raises
SchemaError naming the file, the line, the field and what a valid value looks like.
"""

import dataclasses
import json
import math
import re

REFERENCE_BACKEND = "disk"
STATUSES = ("ok", "failed", "timeout")
WORKLOAD_RE = re.compile(r"^W[1-4]$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MAX_PROCS = 64  # the workload program's own limit
KINDS = ("run", "link", "disk")


class SchemaError(ValueError):
    """A results line that does not follow the schema; the message says where and how to fix."""


@dataclasses.dataclass(frozen=True)
class Run:
    line: int
    workload: str
    procs: int
    backend: str
    repetition: int
    wall_s: float | None
    pswpin: int | None
    pswpout: int | None
    bytes_verified: int
    mismatches: int
    status: str
    kernel: str
    commit: str
    node: dict
    disk_profile: str
    link_profile: str
    link_rate_mbit: float | None
    projection: bool
    swap_io: dict | None = None
    migrations: int | None = None
    shrink: dict | None = None

    @property
    def timed(self):
        """Whether the run's time counts: it finished and every byte read back was right."""
        return self.status == "ok" and self.mismatches == 0 and self.wall_s is not None

    @property
    def corrupt(self):
        """Whether the run read back wrong data (whatever its status)."""
        return self.mismatches is not None and self.mismatches > 0


@dataclasses.dataclass(frozen=True)
class LinkRate:
    line: int
    link_profile: str
    link_rate_mbit: float | None
    stream_mbs: float
    rtt_4k_us: float


@dataclasses.dataclass(frozen=True)
class DiskRate:
    line: int
    disk_profile: str
    seq_mbs: float
    rand_4k_iops: float


@dataclasses.dataclass(frozen=True)
class Results:
    runs: tuple
    link_rates: tuple
    disk_rates: tuple


# --- field checks: each returns the value or raises ValueError("<what is wanted>") -----


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(minimum, maximum=None):
    def check(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        if ok and (maximum is None or value <= maximum):
            return value
        upper = "" if maximum is None else " and <= %d" % maximum
        raise ValueError("an integer >= %d%s" % (minimum, upper))

    return check


def _number(minimum, strict):
    def check(value):
        if _is_number(value) and (value > minimum if strict else value >= minimum):
            return float(value)
        raise ValueError("a number %s %g" % (">" if strict else ">=", minimum))

    return check


def _nullable(check):
    def nullable(value):
        if value is None:
            return None
        try:
            return check(value)
        except ValueError as err:
            raise ValueError("%s, or null" % err)

    return nullable


def _name(value):
    if isinstance(value, str) and NAME_RE.match(value):
        return value
    raise ValueError('a name of letters, digits and . _ + - (e.g. "ssd", "nswap-3")')


def _text(value):
    if isinstance(value, str) and value:
        return value
    raise ValueError("a non-empty string")


def _workload(value):
    if isinstance(value, str) and WORKLOAD_RE.match(value):
        return value
    raise ValueError('one of "W1", "W2", "W3", "W4"')


def _status(value):
    if value in STATUSES:
        return value
    raise ValueError("one of %s" % ", ".join('"%s"' % s for s in STATUSES))


def _bool(value):
    if isinstance(value, bool):
        return value
    raise ValueError("true or false")


def _shrink(value):
    if isinstance(value, dict) and isinstance(value.get("shrunk"), bool):
        return dict(value)
    raise ValueError('an object with "shrunk": true or false')


def _object(value):
    if isinstance(value, dict):
        return value
    raise ValueError("a JSON object of node facts")


_RATE_MBIT = _nullable(_number(0, strict=True))

RUN_FIELDS = {
    "workload": _workload,
    "procs": _int(1, MAX_PROCS),
    "backend": _name,
    "repetition": _int(0),
    "wall_s": _nullable(_number(0, strict=False)),
    "pswpin": _nullable(_int(0)),
    "pswpout": _nullable(_int(0)),
    "bytes_verified": _int(0),
    "mismatches": _nullable(_int(0)),
    "status": _status,
    "kernel": _text,
    "commit": _text,
    "node": _object,
    "disk_profile": _name,
    "link_profile": _name,
    "link_rate_mbit": _RATE_MBIT,
}
LINK_FIELDS = {
    "link_profile": _name,
    "link_rate_mbit": _RATE_MBIT,
    "stream_mbs": _number(0, strict=True),
    "rtt_4k_us": _number(0, strict=True),
}
DISK_FIELDS = {
    "disk_profile": _name,
    "seq_mbs": _number(0, strict=True),
    "rand_4k_iops": _number(0, strict=True),
}
_TYPES = {
    "run": (Run, RUN_FIELDS),
    "link": (LinkRate, LINK_FIELDS),
    "disk": (DiskRate, DISK_FIELDS),
}


def parse_record(obj, where):
    """One decoded JSON line -> Run, LinkRate or DiskRate; `where` is "file:line"."""
    if not isinstance(obj, dict):
        raise SchemaError(
            "%s: a record must be a JSON object, got %s" % (where, type(obj).__name__)
        )
    kind = obj.get("kind", "run")
    if kind not in _TYPES:
        raise SchemaError(
            "%s: field 'kind': %r is not a record kind; use one of %s (absent means \"run\")"
            % (where, kind, ", ".join('"%s"' % k for k in KINDS))
        )
    cls, fields = _TYPES[kind]
    values = {}
    for field, check in fields.items():
        if field not in obj:
            raise SchemaError(
                "%s: field '%s' is missing from a %s record; add it (see "
                "plugins/plugin_utils/nswapbench/schema.py)" % (where, field, kind)
            )
        try:
            values[field] = check(obj[field])
        except ValueError as err:
            raise SchemaError(
                "%s: field '%s' is %s; it must be %s" % (where, field, json.dumps(obj[field]), err)
            )
    if kind == "run":
        _check_run(obj, values, where)
    return cls(line=int(where.rsplit(":", 1)[1]), **values)


def _check_run(obj, values, where):
    """The run fields that depend on each other; sets values["projection"]."""
    for field in ("wall_s", "mismatches"):
        if values["status"] == "ok" and values[field] is None:
            raise SchemaError(
                "%s: field '%s' is null but status is \"ok\"; an ok run needs it (or a status "
                'of "failed"/"timeout")' % (where, field)
            )
    values["projection"] = values["link_rate_mbit"] is not None
    if "projection" in obj:
        try:
            values["projection"] = _bool(obj["projection"])
        except ValueError as err:
            raise SchemaError(
                "%s: field 'projection' is %s; it must be %s (or absent)"
                % (where, json.dumps(obj["projection"]), err)
            )
    values["swap_io"] = _swap_io(obj.get("swap_io"), where)
    for field, check in (("migrations", _nullable(_int(0))), ("shrink", _nullable(_shrink))):
        try:
            values[field] = check(obj.get(field))
        except ValueError as err:
            raise SchemaError(
                "%s: field '%s' is %s; it must be %s (or absent)"
                % (where, field, json.dumps(obj.get(field)), err)
            )
    if values["projection"] and values["link_rate_mbit"] is None:
        raise SchemaError(
            "%s: field 'projection' is true but link_rate_mbit is null; a projection run needs "
            "the rate it ran at (or projection: false)" % where
        )


SWAP_IO_FIELDS = ("reads", "read_sectors", "read_ms", "writes", "write_sectors", "write_ms")


def _swap_io(value, where):
    if value is None:
        return None
    if not isinstance(value, dict) or sorted(value) != sorted(SWAP_IO_FIELDS):
        raise SchemaError(
            "%s: field 'swap_io' is %s; it must be null or an object with exactly %s"
            % (where, json.dumps(value), ", ".join(SWAP_IO_FIELDS))
        )
    for key in SWAP_IO_FIELDS:
        try:
            _int(0)(value[key])
        except ValueError as err:
            raise SchemaError(
                "%s: field 'swap_io.%s' is %s; it must be %s"
                % (where, key, json.dumps(value[key]), err)
            )
    return dict(value)


def _rate_text(rate_mbit):
    return "null" if rate_mbit is None else "%g" % rate_mbit


def run_key(run):
    """What makes a run unique: its cell (profiles, workload, procs, backend) and repetition."""
    return (
        run.disk_profile,
        run.link_profile,
        run.workload,
        run.procs,
        run.backend,
        run.repetition,
    )


def parse_lines(lines, name="<results>"):
    """Validate JSON lines (an iterable of str) into Results; blank lines are skipped."""
    runs, links, disks = [], [], []
    seen = {}
    link_rates = {}  # link_profile -> (link_rate_mbit, line): one profile, one tc limit
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        where = "%s:%d" % (name, number)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise SchemaError(
                "%s: not valid JSON (%s); each line must be one JSON object" % (where, err)
            )
        record = parse_record(obj, where)
        if isinstance(record, Run | LinkRate):
            rate, first = link_rates.setdefault(
                record.link_profile, (record.link_rate_mbit, number)
            )
            if rate != record.link_rate_mbit:
                raise SchemaError(
                    "%s: field 'link_rate_mbit' is %s but line %d gave link profile %r the rate "
                    "%s; one link profile has one rate (name the other rate's profile "
                    "differently)"
                    % (
                        where,
                        _rate_text(record.link_rate_mbit),
                        first,
                        record.link_profile,
                        _rate_text(rate),
                    )
                )
        if isinstance(record, Run):
            key = run_key(record)
            if key in seen:
                raise SchemaError(
                    "%s: repeats the run of line %d (disk %s, link %s, %s, %d procs, %s, "
                    "repetition %d); remove one or give it another repetition"
                    % ((where, seen[key]) + key)
                )
            seen[key] = number
            runs.append(record)
        elif isinstance(record, LinkRate):
            links.append(record)
        else:
            disks.append(record)
    return Results(runs=tuple(runs), link_rates=tuple(links), disk_rates=tuple(disks))


def load(path):
    """Read and validate a results file."""
    with open(path, encoding="utf-8") as handle:
        return parse_lines(handle, name=str(path))
