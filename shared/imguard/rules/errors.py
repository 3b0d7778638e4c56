"""The one error a rules file can raise."""
from __future__ import annotations

from imguard import logs


class RulesError(ValueError):
    """The rules cannot be loaded; the message names the entry.

    Clipped, since it ends up in log lines and ConfigError: a YAML error or an entry's repr
    can quote megabytes of the document.
    """

    def __init__(self, message: str):
        super().__init__(logs.clip(message))
