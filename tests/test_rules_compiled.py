"""The bundled rules as ``make build`` compiles them (imguard.rules.compiled): a new instance loads them
instead of parsing a large file again, judges exactly as the file would, and never unpickles anything
but the sidecar the build put beside its own code (a pickle runs code when it is loaded)."""
from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Loads the rules beside the copied package as the function does, and says how and what they judge.
PROBE = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from imguard.rules import compiled
from imguard.rules.source import load_file
if sys.argv[2] == "write":
    compiled.write(Path(sys.argv[1]) / "rules.yaml")
rules = load_file(str(Path(sys.argv[1]) / "rules.yaml"))
print(json.dumps({"compiled": rules.compiled, "version": rules.version,
                  "scans": [rules.scan(text).as_dict(text) for text in json.loads(sys.argv[3])]}))
"""
TEXTS = ["你个傻逼", "傻@冒 hello", "ＳＢ", "fuck you", "加微信 abc12345 领红包", "classic", "一夜情", "hello"]


class Exploit:
    """What a planted sidecar would carry: loading it runs a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def code_folder(tmp_path) -> Path:
    """A function's code folder as `make build` lays it out: the imguard package beside rules.yaml."""
    folder = tmp_path / "im_callback"
    shutil.copytree(ROOT / "shared" / "imguard", folder / "imguard", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "rules.example.yaml", folder / "rules.yaml")
    return folder


def load_in(folder: Path, write: bool = False) -> tuple:
    process = subprocess.run([sys.executable, "-c", PROBE, str(folder), "write" if write else "read", json.dumps(TEXTS)],
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 0, process.stderr[-2000:]
    lines = process.stdout.strip().splitlines()
    events = [json.loads(line) for line in lines[:-1] if line.startswith("{")]
    return json.loads(lines[-1]), events


def test_the_compiled_rules_judge_every_text_exactly_as_the_file_does(code_folder):
    parsed, _ = load_in(code_folder)
    loaded, events = load_in(code_folder, write=True)

    assert parsed["compiled"] is False and loaded["compiled"] is True
    assert loaded["scans"] == parsed["scans"]
    assert {scan["action"] for scan in loaded["scans"]} == {"block", "replace", "pass"}
    assert loaded["version"] == parsed["version"]  # the log names the same rules either way
    assert events == []


def test_an_edited_rules_file_is_parsed_again_and_the_stale_sidecar_is_named(code_folder):
    # GIVEN a build's sidecar, and then an operator edits rules.yaml in the folder (the console's editor)
    load_in(code_folder, write=True)
    with (code_folder / "rules.yaml").open("a", encoding="utf-8") as rules:
        rules.write("  - 新加的词\n")

    loaded, events = load_in(code_folder)

    assert loaded["compiled"] is False
    assert [e["event"] for e in events] == ["rules.compiled_stale"]


def test_a_sidecar_outside_the_functions_code_folder_is_never_loaded(tmp_path, capsys):
    # GIVEN a rules file in a writable folder (a mounted disk, /tmp), with a planted sidecar whose header
    # matches it exactly, as an attacker who read the build would make it
    from imguard.rules import compiled
    from imguard.rules.source import load_file

    rules = tmp_path / "rules.yaml"
    shutil.copy(ROOT / "rules.example.yaml", rules)
    marker = tmp_path / "ran"
    compiled.sidecar(rules).write_bytes(compiled._MAGIC + compiled._header(rules.read_bytes()) + pickle.dumps(Exploit(marker)))

    # WHEN the function loads the rules from there
    loaded = load_file(str(rules))

    # THEN the pickle was never opened: the file itself was parsed
    assert not marker.exists()
    assert loaded.compiled is False and loaded.scan("你个傻逼").action == "block"


def test_a_sidecar_that_does_not_match_is_never_unpickled_even_in_the_code_folder(code_folder):
    # GIVEN the code folder's sidecar replaced by one made for other rules (or another Python)
    marker = code_folder / "ran"
    stale_header = b'{"rules_sha256": "0"}\n'
    (code_folder / "rules.yaml.compiled").write_bytes(
        b"imguard-compiled-rules/1\n" + stale_header + pickle.dumps(Exploit(marker)))

    loaded, events = load_in(code_folder)

    assert not marker.exists()
    assert loaded["compiled"] is False
    assert "rules.compiled_stale" in [e["event"] for e in events]


def test_a_damaged_sidecar_costs_the_parse_never_the_start(code_folder):
    load_in(code_folder, write=True)
    sidecar = code_folder / "rules.yaml.compiled"
    sidecar.write_bytes(sidecar.read_bytes()[:-100])  # cut short, as a failed upload would

    loaded, events = load_in(code_folder)

    assert loaded["compiled"] is False and loaded["scans"][0]["action"] == "block"
    assert "rules.compiled_unreadable" in [e["event"] for e in events]


def test_a_rules_file_that_is_not_utf8_is_refused_by_name(tmp_path):
    from imguard.rules.ruleset import RulesError
    from imguard.rules.source import load_file

    rules = tmp_path / "rules.yaml"
    rules.write_bytes("block:\n  - 傻逼\n".encode("gbk"))

    with pytest.raises(RulesError, match="not UTF-8"):
        load_file(str(rules))


def test_a_link_to_the_code_folders_rules_never_reads_a_sidecar_beside_the_link(code_folder, tmp_path):
    # GIVEN RULES_PATH at a link (in a writable folder) to the bundled rules.yaml, and a pickle planted beside it
    load_in(code_folder, write=True)
    elsewhere = tmp_path / "mounted"
    elsewhere.mkdir()
    (elsewhere / "rules.yaml").symlink_to(code_folder / "rules.yaml")
    marker = tmp_path / "ran"
    (elsewhere / "rules.yaml.compiled").write_bytes(pickle.dumps(Exploit(marker)))

    probe = PROBE.replace('Path(sys.argv[1]) / "rules.yaml"))\nprint', f'Path({str(elsewhere)!r}) / "rules.yaml"))\nprint')
    assert probe != PROBE
    process = subprocess.run([sys.executable, "-c", probe, str(code_folder), "read", json.dumps(TEXTS)],
                             capture_output=True, text=True, timeout=60)

    assert process.returncode == 0, process.stderr[-2000:]
    assert not marker.exists()  # the build's own sidecar, beside the real file, is the only one read
    assert json.loads(process.stdout.strip().splitlines()[-1])["compiled"] is True
