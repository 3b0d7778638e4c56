"""The one exception a deployment raises for anything the operator has to fix."""
from __future__ import annotations


class DeployError(Exception):
    """A deployment cannot go on; the message says what to do. ``exit_code`` 2 is bad input
    (caught before any cloud call), 1 is a cloud call that failed."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
