"""harness/swapfill.py, the molecule verifiers' memory filler, on the host: it stops at its
cap when nothing is swapped, and its check finds a page that changed."""

import subprocess
import sys

from harness import swapfill


def test_without_swap_it_stops_at_the_cap_and_says_so():
    chunks, state, swapped = swapfill.fill("no-such-device", 1024, 8 * 1024, seed=None)
    assert (len(chunks), state, swapped) == (2, "cap", 0)


def test_the_check_finds_every_changed_page():
    chunks, _state, _swapped = swapfill.fill("no-such-device", 1024, 8 * 1024, seed=77)
    assert swapfill.verify(chunks, 77) == (2048, 0, [])
    chunks[1][5 * swapfill.PAGE + 4000] ^= 1  # page 1024 + 5, past its pattern
    chunks[0][0] ^= 1
    assert swapfill.verify(chunks, 77) == (2048, 2, [0, 1029])
    assert swapfill.verify(chunks, 78)[1] == 2048  # another run's seed: no page matches


def test_command_line_writes_ready_and_result(tmp_path):
    go = tmp_path / "go"
    go.write_text("")
    ready, result = tmp_path / "ready", tmp_path / "result"
    subprocess.run(
        [sys.executable, swapfill.__file__, "--device", "none", "--swapped-kib", "1024"]
        + ["--cap-kib", "4096", "--ready", str(ready), "--verify-on", str(go)]
        + ["--result", str(result), "--hold-s", "600"],  # ends once it checked
        check=True,
        timeout=60,
    )
    assert ready.read_text() == "cap 0 KiB swapped, 4 MiB held"
    assert result.read_text() == "1024 pages checked, 0 differ []"
