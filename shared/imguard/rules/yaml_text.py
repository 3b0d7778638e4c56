"""A rules file's YAML, read safely: libyaml's loader, and no aliases."""
from __future__ import annotations

from typing import Any

import yaml

from imguard.rules.errors import RulesError

# libyaml's loader where the wheel has it (it always does on SCF): a 10,000-entry file loads in ~30 ms, not ~300.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _has_alias(text: str) -> bool:
    """Whether the document uses an alias (``*name``). Each alias can repeat a whole subtree, so a few
    hundred bytes of nested aliases (billion laughs) stand for billions of entries that parse() and error
    reprs would walk. Rules files are flat lists with no use for aliases: the first one refuses the file,
    found by libyaml's scanner before anything is composed. Anchors alone are harmless."""
    return any(isinstance(token, yaml.AliasToken) for token in yaml.scan(text, Loader=_Loader))


def read_yaml(text: str) -> Any:
    try:
        if _has_alias(text):
            raise RulesError("not valid YAML: aliases (*name) are not allowed in rules files")
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise RulesError(f"not valid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise RulesError("not valid YAML: nested too deeply") from None
