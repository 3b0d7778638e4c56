"""The bundled rules, compiled by ``make build``, so that a new instance does not compile them again.

Parsing and compiling a 10,000-entry rules file takes about 0.3 s on SCF's Python (YAML, normalising
every keyword, building the automata), which a new instance would spend before its first answer.
``make build`` runs :func:`write` with the target interpreter inside the built folder: the compiled
rule set goes beside ``rules.yaml`` as ``rules.yaml.compiled`` (a pickle), headed by the digest of the
rules file it came from and the interpreter and automaton library that made it.

:func:`read` uses it only when all of these hold, and otherwise the file is parsed as usual:
- the rules file sits in the function's own code folder, beside the ``imguard`` package, which
  only a deployment writes (a pickle runs code when loaded; one in any other folder is never read);
- its header matches: same rules file byte for byte, same Python, same automaton library.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import sys
from pathlib import Path
from typing import Optional

import ahocorasick

import imguard
from imguard import logs
from imguard.rules.book import Rulebook, loads

SUFFIX = ".compiled"
_MAGIC = b"imguard-compiled-rules/1\n"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def _header(text: bytes) -> bytes:
    """What must be equal between the build and the instance, one JSON line."""
    library = Path(ahocorasick.__file__)
    return json.dumps({"rules_sha256": hashlib.sha256(text).hexdigest(), "python": list(sys.version_info[:2]),
                       "ahocorasick": [library.name, library.stat().st_size]}, sort_keys=True).encode() + b"\n"


def write(path: Path) -> Path:
    """Compile ``path`` (RulesError when it is bad) and write its sidecar; returns the sidecar."""
    text = path.read_bytes()
    rules = loads(text.decode("utf-8"))
    target = sidecar(path)
    target.write_bytes(_MAGIC + _header(text) + pickle.dumps(rules, protocol=pickle.HIGHEST_PROTOCOL))
    return target


def read(path: Path, text: bytes, version: str) -> Optional[Rulebook]:
    """The compiled rules for ``path`` whose content is ``text``, or None when there are none to trust."""
    compiled = sidecar(path.resolve())  # the file itself, wherever a link to it lies: a link is no code folder
    if not compiled.is_file() or compiled.resolve().parent != Path(imguard.__file__).resolve().parent.parent:
        return None
    try:
        with compiled.open("rb") as stream:
            if stream.readline() != _MAGIC or stream.readline() != _header(text):
                logs.emit("rules.compiled_stale", level="warning", path=compiled.name)
                return None
            rules = pickle.load(stream)
    except Exception as exc:  # a damaged sidecar costs the parse, never the start
        logs.failure("rules.compiled_unreadable", exc, path=compiled.name)
        return None
    if not isinstance(rules, Rulebook):
        return None
    rules.version = version
    return rules
