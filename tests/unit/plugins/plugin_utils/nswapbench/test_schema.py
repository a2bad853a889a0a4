"""plugins/plugin_utils/nswapbench/schema.py: valid records load, bad ones name the line and field.

The record builders here are also the fixture of test_report.py and of tests/unit/plugins/action/.
"""

import json

import pytest
from ansible_collections.nswap.cluster.plugins.plugin_utils.nswapbench import schema

NODE = {"name": "client1", "cpus": 1, "mem_mib": 1024}


def run(workload="W1", procs=1, backend="disk", repetition=0, wall_s=10.0, **extra):
    """A valid run record; keyword arguments override or add fields."""
    record = {
        "kind": "run",
        "workload": workload,
        "procs": procs,
        "backend": backend,
        "repetition": repetition,
        "wall_s": wall_s,
        "pswpin": 1000,
        "pswpout": 2000,
        "bytes_verified": 1 << 30,
        "mismatches": 0,
        "status": "ok",
        "kernel": "6.1.0-28-amd64",
        "commit": "abc1234",
        "node": NODE,
        "disk_profile": "ssd",
        "link_profile": "unlimited",
        "link_rate_mbit": None,
    }
    record.update(extra)
    return record


def cell(workload, procs, backend, times, **extra):
    """The runs of one cell with these wall times, repetitions 0..n-1."""
    return [run(workload, procs, backend, i, t, **extra) for i, t in enumerate(times)]


def link(profile="unlimited", rate=None, stream_mbs=125.0, rtt_4k_us=400.0):
    return {
        "kind": "link",
        "link_profile": profile,
        "link_rate_mbit": rate,
        "stream_mbs": stream_mbs,
        "rtt_4k_us": rtt_4k_us,
    }


def disk(profile="ssd", seq_mbs=250.0, rand_4k_iops=20000.0):
    return {
        "kind": "disk",
        "disk_profile": profile,
        "seq_mbs": seq_mbs,
        "rand_4k_iops": rand_4k_iops,
    }


def lines(records):
    return [json.dumps(record) for record in records]


def write_jsonl(path, records):
    path.write_text("".join(line + "\n" for line in lines(records)), encoding="utf-8")
    return path


def test_three_kinds_load_with_their_line_numbers():
    text = lines([run(), link(), disk()])
    text.insert(1, "")  # blank lines are skipped but still counted
    results = schema.parse_lines(text, "r.jsonl")
    (only,) = results.runs
    assert (only.line, only.workload, only.wall_s, only.node) == (1, "W1", 10.0, NODE)
    assert only.timed and not only.corrupt and not only.projection
    assert results.link_rates == (schema.LinkRate(3, "unlimited", None, 125.0, 400.0),)
    assert results.disk_rates == (schema.DiskRate(4, "ssd", 250.0, 20000.0),)


def test_kind_absent_means_run_and_extra_keys_are_kept_out():
    record = run(started_at="2026-11-22T00:00:00", workload_result={"seconds": 9.9})
    del record["kind"]
    (only,) = schema.parse_lines(lines([record])).runs
    assert only.backend == "disk"


def test_projection_defaults_to_whether_the_link_is_limited():
    limited = run(link_profile="100mbit", link_rate_mbit=100)
    lab_rate = run(link_profile="1gbit", link_rate_mbit=1000, projection=False, repetition=1)
    runs = schema.parse_lines(lines([limited, lab_rate, run(repetition=2)])).runs
    assert [r.projection for r in runs] == [True, False, False]


def test_failed_run_may_lack_time_and_mismatches():
    record = run(wall_s=None, mismatches=None, status="timeout", pswpin=None, pswpout=None)
    (only,) = schema.parse_lines(lines([record])).runs
    assert not only.timed and not only.corrupt


def test_corrupt_run_is_not_timed_whatever_its_status():
    (only,) = schema.parse_lines(lines([run(mismatches=3)])).runs
    assert only.corrupt and not only.timed


@pytest.mark.parametrize(
    "field, value, wanted",
    [
        ("workload", "W5", 'one of "W1", "W2", "W3", "W4"'),
        ("procs", 0, "an integer >= 1 and <= 64"),
        ("procs", True, "an integer >= 1"),
        ("procs", 2.0, "an integer >= 1"),
        ("backend", "", "a name of letters"),
        ("backend", "nswap 3", "a name of letters"),
        ("repetition", -1, "an integer >= 0"),
        ("wall_s", "12", "a number >= 0, or null"),
        ("wall_s", -1, "a number >= 0, or null"),
        ("pswpin", 1.5, "an integer >= 0, or null"),
        ("mismatches", -2, "an integer >= 0, or null"),
        ("status", "OK", 'one of "ok", "failed", "timeout"'),
        ("kernel", "", "a non-empty string"),
        ("node", "client1", "a JSON object of node facts"),
        ("disk_profile", None, "a name of letters"),
        ("link_rate_mbit", 0, "a number > 0, or null"),
        ("projection", "yes", "true or false"),
        ("swap_io", {"reads": 1}, "null or an object with exactly reads, read_sectors"),
        ("swap_io", [1, 2], "null or an object with exactly"),
    ],
)
def test_bad_run_field_is_named_with_its_line(field, value, wanted):
    text = lines([disk(), run(**{field: value})])
    with pytest.raises(schema.SchemaError) as caught:
        schema.parse_lines(text, "r.jsonl")
    message = str(caught.value)
    assert message.startswith("r.jsonl:2: field '%s' is %s;" % (field, json.dumps(value)))
    assert wanted in message


def test_missing_field_is_named():
    record = run()
    del record["bytes_verified"]
    with pytest.raises(schema.SchemaError, match=r"^r:1: field 'bytes_verified' is missing"):
        schema.parse_lines(lines([record]), "r")


@pytest.mark.parametrize("field", ["wall_s", "mismatches"])
def test_ok_run_needs_time_and_mismatches(field):
    with pytest.raises(schema.SchemaError, match=r"r:1: field '%s' is null but status" % field):
        schema.parse_lines(lines([run(**{field: None})]), "r")


@pytest.mark.parametrize(
    "record, message",
    [
        (link(stream_mbs=0), "r:1: field 'stream_mbs' is 0; it must be a number > 0"),
        (disk(rand_4k_iops=None), "r:1: field 'rand_4k_iops' is null; it must be a number > 0"),
        ({"kind": "cpu"}, "r:1: field 'kind': 'cpu' is not a record kind"),
    ],
)
def test_bad_rate_records(record, message):
    with pytest.raises(schema.SchemaError) as caught:
        schema.parse_lines(lines([record]), "r")
    assert str(caught.value).startswith(message)


def test_bad_json_and_non_objects():
    with pytest.raises(schema.SchemaError, match=r"^r:2: not valid JSON"):
        schema.parse_lines([json.dumps(run()), "{oops"], "r")
    with pytest.raises(schema.SchemaError, match=r"^r:1: a record must be a JSON object, got list"):
        schema.parse_lines(["[1, 2]"], "r")


def test_nan_is_not_a_time():
    with pytest.raises(schema.SchemaError, match="field 'wall_s' is NaN"):
        schema.parse_lines([json.dumps(run(wall_s=float("nan")))], "r")


def test_the_same_run_twice_is_refused():
    text = lines([run(), disk(), run(wall_s=11.0)])
    with pytest.raises(schema.SchemaError, match=r"^r:3: repeats the run of line 1 \(disk ssd"):
        schema.parse_lines(text, "r")


def test_a_link_profile_has_one_rate():
    text = lines([run(link_profile="slow", link_rate_mbit=100), link("slow", 10)])
    with pytest.raises(schema.SchemaError, match=r"^r:2: field 'link_rate_mbit' is 10 but line 1"):
        schema.parse_lines(text, "r")


def test_load_names_the_file(tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", [run(), run(procs=65)])
    with pytest.raises(schema.SchemaError, match=r"results.jsonl:2: field 'procs' is 65"):
        schema.load(path)


def test_lines_shaped_like_the_runners_load():
    # roles/nswap_benchmark writes its common facts into every record, node facts as strings
    common = {
        "kernel": "6.1.0-28-amd64",
        "commit": "0123abc-dirty",
        "node": {"name": "client1", "mem_mib": "1024", "cpus": "1", "os": "Debian 12"},
        "disk_profile": "hdd",
        "quick": True,
        "run_id": "2026-11-22T01-00-00",
    }
    failed = dict(
        common,
        kind="run",
        workload="W3",
        procs=4,
        backend="nswap-3",
        repetition=0,
        link_profile="100mbit",
        link_rate_mbit=100,
        projection=True,
        started_at="2026-11-22T01:02:03+00:00",
        status="failed",
        error="Run the workload: non-zero return code",
        wall_s=None,
        pswpin=None,
        pswpout=None,
        bytes_verified=0,
        mismatches=None,
        workload_result=None,
    )
    link_line = dict(common, **link("100mbit", 100, 11.8, 812.5), server="server1", stream={})
    disk_line = dict(common, **disk("hdd", 80.2, 150), device="/dev/vdb1", seq_write_mbs=75.0)
    results = schema.parse_lines(lines([failed, link_line, disk_line]), "r")
    (only,) = results.runs
    assert (only.status, only.projection, only.timed, only.corrupt) == (
        "failed",
        True,
        False,
        False,
    )
    assert results.link_rates[0].stream_mbs == 11.8
    assert results.disk_rates[0].rand_4k_iops == 150.0


def test_projection_run_needs_its_rate():
    with pytest.raises(schema.SchemaError, match=r"^r:1: field 'projection' is true but link_rate"):
        schema.parse_lines(lines([run(projection=True)]), "r")


IO = dict(reads=10, read_sectors=80, read_ms=5, writes=4, write_sectors=64, write_ms=2)


def test_migrations_and_shrink_are_optional_and_checked():
    shrunk = {"shrunk": True, "at_s": 2.5, "used_pages": 800, "limit_pages": 400, "error": None}
    results = schema.parse_lines(
        lines([run(migrations=12, shrink=shrunk), run(repetition=1), run(repetition=2)])
    )
    assert [(r.migrations, r.shrink) for r in results.runs] == [
        (12, shrunk),
        (None, None),
        (None, None),
    ]
    for field, value, wanted in (
        ("migrations", -1, "an integer >= 0, or null (or absent)"),
        ("migrations", 1.5, "an integer >= 0, or null (or absent)"),
        ("shrink", {"at_s": 1}, 'an object with "shrunk": true or false, or null (or absent)'),
    ):
        with pytest.raises(schema.SchemaError) as caught:
            schema.parse_lines(lines([run(**{field: value})]), "r.jsonl")
        assert str(caught.value) == "r.jsonl:1: field '%s' is %s; it must be %s" % (
            field,
            json.dumps(value),
            wanted,
        )


def test_swap_io_is_optional_and_checked_per_counter():
    results = schema.parse_lines(
        lines([run(swap_io=IO), run(repetition=1), run(repetition=2, swap_io=None)])
    )
    assert [r.swap_io for r in results.runs] == [IO, None, None]
    with pytest.raises(schema.SchemaError) as caught:
        schema.parse_lines(lines([run(swap_io=dict(IO, read_ms=-1))]), "r.jsonl")
    assert str(caught.value) == (
        "r.jsonl:1: field 'swap_io.read_ms' is -1; it must be an integer >= 0"
    )
