"""Hand a delivered message's audio and video to CI, without delaying IM's answer."""
from __future__ import annotations

import time
from concurrent.futures import wait
from typing import Dict, List, Optional

from imguard import logs
from imguard.config import ReviewSettings
from imguard.im.callbacks import MessageCallback
from imguard.im.messages import Media
from imguard.moderation.ci import CiClient
from imguard.moderation.runner import background
from imguard.review.jobref import JobRef

_AUDIO = (".mp3", ".wav", ".aac", ".flac", ".amr", ".3gp", ".m4a", ".wma", ".ogg", ".ape", ".silk")
_VIDEO = (".mp4", ".mov", ".flv", ".mkv", ".rmvb", ".avi", ".wmv", ".m3u8", ".m4v")


def review_kind(media: Media, file_review: bool) -> Optional[str]:
    """Which CI review fits: sound → audio, video → video; a file only when FILE_REVIEW is on
    and its name says it is audio or video (sending a recording as a file is the obvious dodge)."""
    if media.kind == "sound":
        return "audio"
    if media.kind == "video":
        return "video"
    if media.kind == "file" and file_review:
        name = media.name.lower()
        if name.endswith(_AUDIO):
            return "audio"
        if name.endswith(_VIDEO):
            return "video"
    return None


class MediaSubmitter:
    def __init__(self, review: ReviewSettings, ci: CiClient):
        self._review = review
        self._ci = ci

    def submit(self, message: MessageCallback, media: List[Media], request_id: str, deadline: float) -> List[dict]:
        """Start one CI job per reviewable item; wait for them only until ``deadline``.
        Jobs still being submitted then finish in the background and log for themselves."""
        futures = []
        for item in media:
            kind = review_kind(item, self._review.file_review)
            if kind is not None:
                futures.append(background(lambda item=item, kind=kind: self._submit_one(message, item, kind, request_id)))
        done, _ = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        return [f.result() if f in done else {"state": "pending"} for f in futures]

    def _submit_one(self, message: MessageCallback, item: Media, kind: str, request_id: str) -> Dict[str, str]:
        try:
            data_id = JobRef.for_message(message, kind).sign(self._review.signing_key)
            job_id = self._ci.submit_media(kind, item.url, data_id, self._review.callback_url or "")
            outcome = {"kind": kind, "job_id": job_id}
            level = "info"
        except Exception as exc:  # a failed submission is logged, never turned into a rejection
            outcome = {"kind": kind, "error": str(exc) or type(exc).__name__}
            level = "error"
        logs.emit("review.submitted", level=level, request_id=request_id, command=message.command,
                  sender=message.sender, target=message.target, **outcome)
        return outcome
