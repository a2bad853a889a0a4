"""nswapd's request path under the fuzz harness (tests/fuzz/nswapd_frames.c), built with
gcc, AddressSanitizer and UndefinedBehaviorSanitizer: the seed corpus (tests/fuzz/
corpus.py) replayed, then a fixed budget of seeded, structure-aware mutations of it.  Any
sanitizer report, crash or hang (a connection that neither ends nor moves) fails the run.

Longer and coverage-guided runs (libFuzzer, by hand): tests/fuzz/README.md.
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(REPO, "tests", "fuzz")
# about 20 s here; each seed's run is reproducible (the driver's -s)
MUTATIONS = 20000
SEED = 1


def test_the_request_path_survives_the_corpus_and_its_mutations(tmp_path):
    binary = str(tmp_path / "nswapd-frames")
    subprocess.run([os.path.join(FUZZ, "build"), "standalone", binary], check=True, timeout=300)
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, os.path.join(FUZZ, "corpus.py"), str(corpus)], check=True)
    seeds = sorted(str(p) for p in corpus.iterdir())
    assert len(seeds) >= 6, seeds
    run = subprocess.run(
        [binary, "-n", str(MUTATIONS), "-s", str(SEED), *seeds],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"),
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert "replayed %d corpus inputs, ran %d mutations" % (len(seeds), MUTATIONS) in run.stdout
