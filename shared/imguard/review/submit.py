"""Hand a delivered message's audio and video to CI, without delaying IM's answer.

Submissions run on a pool of their own, so a flood of voice messages (or a CI
that is slow to take jobs) never holds up another message's checks; the pool's
backlog is bounded, and a message may carry at most MAX_REVIEW_MEDIA items
(the moderator leaves anything past that to OVERSIZE_ACTION).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Dict, List, Optional, Sequence, Tuple

from imguard import logs
from imguard.config import ReviewSettings
from imguard.im.callbacks import MessageCallback
from imguard.im.messages import Media
from imguard.moderation.ci import CiClient
from imguard.review.jobref import JobRef

_AUDIO = (".mp3", ".wav", ".aac", ".flac", ".amr", ".3gp", ".m4a", ".wma", ".ogg", ".ape", ".silk")
_VIDEO = (".mp4", ".mov", ".flv", ".mkv", ".rmvb", ".avi", ".wmv", ".m3u8", ".m4v")

MAX_REVIEW_MEDIA = 10  # one message; a real one carries one sound or one video
SUBMIT_WORKERS = 4
MAX_BACKLOG = 64  # submissions queued or running per instance; past this a submission is refused and logged
# The answer waits this long at most for job ids to put in its audit record; later ones log for themselves.
ANSWER_WAIT_S = 0.2

_POOL = ThreadPoolExecutor(max_workers=SUBMIT_WORKERS, thread_name_prefix="imguard-submit")
_BACKLOG = threading.BoundedSemaphore(MAX_BACKLOG)


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


def reviewable(media: Sequence[Media], file_review: bool) -> List[Tuple[Media, str]]:
    """The items CI can review, each with its kind."""
    return [(item, kind) for item in media for kind in [review_kind(item, file_review)] if kind is not None]


class MediaSubmitter:
    def __init__(self, review: ReviewSettings, ci: CiClient):
        self._review = review
        self._ci = ci

    def submit(self, message: MessageCallback, media: List[Media], request_id: str, deadline: float) -> List[dict]:
        """Start one CI job per reviewable item (at most MAX_REVIEW_MEDIA); wait for them only
        briefly. Jobs still being submitted then finish in the background and log for themselves."""
        futures: List[Future] = []
        refused: List[dict] = []
        for item, kind in reviewable(media, self._review.file_review)[:MAX_REVIEW_MEDIA]:
            if not _BACKLOG.acquire(blocking=False):
                refused.append({"kind": kind, "error": "review backlog full"})
                logs.emit("review.submitted", level="error", request_id=request_id, command=message.command,
                          sender=message.sender, target=message.target, kind=kind, error="review backlog full")
                continue
            future = _POOL.submit(self._submit_one, message, item, kind, request_id)
            future.add_done_callback(lambda _: _BACKLOG.release())
            futures.append(future)
        wait_until = min(deadline, time.monotonic() + ANSWER_WAIT_S)
        done, _ = wait(futures, timeout=max(0.0, wait_until - time.monotonic()))
        return [f.result() if f in done else {"state": "pending"} for f in futures] + refused

    def _submit_one(self, message: MessageCallback, item: Media, kind: str, request_id: str) -> Dict[str, str]:
        try:
            data_id = JobRef.for_message(message, kind, item.url).sign(self._review.signing_key)
            job_id = self._ci.submit_media(kind, item.url, data_id, self._review.callback_url or "")
            outcome = {"kind": kind, "job_id": job_id}
            level = "info"
        except Exception as exc:  # a failed submission is logged, never turned into a rejection
            outcome = {"kind": kind, "error": logs.clip(str(exc) or type(exc).__name__)}
            level = "error"
        logs.emit("review.submitted", level=level, request_id=request_id, command=message.command,
                  sender=message.sender, target=message.target, **outcome)
        return outcome
