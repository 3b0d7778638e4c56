"""Moderation engines (CI, local rules) and how their verdicts become one decision."""
