"""The atheris harness (``fuzz/fuzz_token.py``) in a bounded CI run: 30 seconds of
coverage-guided fuzzing of the token front layer, token verification, the cookie reader,
the CSRF check and the strict JSON/base64url primitives; no crash, no accepted forgery.
The long run is documented in fuzz/README.md."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

pytestmark = pytest.mark.slow

HARNESS = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_token.py"
SECONDS = 30


def test_the_atheris_harness_finds_nothing_in_a_bounded_run(tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        unavailable(
            "atheris is not installed (pip install atheris; the test extra installs it on "
            "Linux with CPython < 3.13, where its wheels exist)"
        )
    corpus = tmp_path / "corpus"
    # libFuzzer's RSS limit reads the process's peak RSS, which Linux carries across
    # fork and exec: run straight from a pytest process grown large late in the suite, the
    # harness would start "over" the limit. A shell that forks it (and does not exec it:
    # the command after it prevents that) gives it a fresh peak of its own.
    result = subprocess.run(
        [
            "/bin/sh",
            "-c",
            '"$@"; status=$?; exit $status',
            "sh",
            sys.executable,
            str(HARNESS),
            f"-max_total_time={SECONDS}",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            # a crash/oom/timeout input goes to the test's own folder, not the checkout
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    runs = re.search(r"Done (\d+) runs", output)
    assert runs is not None, output[-2000:]
    assert int(runs.group(1)) > 10_000
    print(f"\natheris: {runs.group(1)} inputs in {SECONDS} s, corpus {len(list(corpus.iterdir()))}")
