"""``.env`` files: KEY=VALUE lines with comments, ``export`` and one level of quotes.

Read in one place for ``make run`` (which exports them) and ``imguard deploy`` (which must not:
the deploy credentials have no business in this process's environment or its children's).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict


def read_env_file(path: Path) -> Dict[str, str]:
    values: Dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
