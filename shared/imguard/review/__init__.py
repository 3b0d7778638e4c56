"""Asynchronous audio/video review: submitting media to CI, and acting on its verdicts."""
