"""One warm im_callback instance under the security review's floods stays inside SCF's 128 MB.

The floods run in a fresh interpreter (bench/bench_memory.py), so that the peak RSS is theirs alone
and not the test session's.
"""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

MEMORY_SIZE_MIB = 128  # memorySize in serverless.yml


def test_the_review_floods_stay_inside_the_function_memory_and_the_audit_queue_keeps_no_text(tmp_path):
    # GIVEN im_callback with local rules, AUDIT_STORE_CONTENT off and an audit store that is down
    figures = tmp_path / "memory.json"

    # WHEN it takes, in one process: 10,000 warm callbacks, 400 messages of 3,000 never-seen code points,
    # 2,000 callbacks with 10 KB texts, and 20,000 long-keyword verdicts into its verdict cache
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench_memory.py"), "--json", str(figures)],
                   check=True, timeout=120, stdout=subprocess.DEVNULL)
    result = json.loads(figures.read_text(encoding="utf-8"))
    rows = {row["phase"]: row for row in result["rows"]}

    # THEN the peak RSS stays under the function's memory
    assert result["peak_mib"] < MEMORY_SIZE_MIB, result
    # AND the audit queue, full of records from the 10 KB texts, holds their digests but none of their text
    after_texts = rows["long_texts"]
    assert after_texts["queued"] > 0 and after_texts["dropped"] > 0
    assert result["queued_digests"] > 0 and result["queued_text_chars"] == 0
