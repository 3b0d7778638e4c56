"""What a new SCF instance imports before its first answer: nothing it does not need (issue #15, in part)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import index
print(json.dumps({name: name in sys.modules for name in ("requests", "qcloud_cos", "sqlalchemy", "pypinyin")}))
"""


def imported(env):
    process = subprocess.run([sys.executable, "-I", "-c", PROBE, str(ROOT / "shared"), str(ROOT / "functions" / "im_callback")],
                             capture_output=True, text=True, env=env, timeout=60)
    assert process.returncode == 0, process.stderr[-2000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_local_rules_alone_import_no_http_client_no_cos_sdk_no_sql_and_no_pinyin():
    modules = imported({"IM_SDKAPPID": "1400000000", "RULES_PATH": str(ROOT / "rules.example.yaml")})

    assert modules == {"requests": False, "qcloud_cos": False, "sqlalchemy": False, "pypinyin": False}


def test_ci_brings_the_cos_sdk_and_its_http_client_and_nothing_else():
    modules = imported({"IM_SDKAPPID": "1400000000", "COS_BUCKET": "imguard-1250000000", "COS_REGION": "ap-guangzhou",
                        "COS_SECRET_ID": "id", "COS_SECRET_KEY": "key"})

    assert modules == {"requests": True, "qcloud_cos": True, "sqlalchemy": False, "pypinyin": False}


def test_an_audit_store_is_not_imported_before_the_first_answer(tmp_path):
    # SQLAlchemy and the engine belong to the background writer, which starts with the first record.
    modules = imported({"IM_SDKAPPID": "1400000000", "AUDIT_DSN": f"sqlite:///{tmp_path}/audit.db"})

    assert modules["sqlalchemy"] is False
