"""IM's own cloud audit (云端审核) reporting what it decided: recorded beside imguard's decisions."""
from __future__ import annotations

from typing import Any, Dict, Mapping

from imguard.handlers.context import Call, Services
from imguard.im import answers
from imguard.im.cloud_audit import CloudAuditResult
from imguard.moderation.policy import ALLOW, BLOCK


class CloudAuditHandlers:
    def __init__(self, services: Services):
        self.services = services

    def result_notify(self, call: Call, body: Mapping[str, Any]) -> Dict[str, Any]:
        result = CloudAuditResult.from_body(body)
        reason = {
            "source": "im_cloud",
            "check": result.content_type.lower() or "content",
            "outcome": "block" if result.blocked else "pass",
            "label": result.label,
            "sub_label": result.sub_label,
            "keywords": list(result.keywords),
            "detail": " ".join(filter(None, (result.suggestion, result.lib_name))),
        }
        record = call.audit(
            "callback.cloud_audit",
            result.scene,
            BLOCK if result.blocked else ALLOW,
            sender=result.sender,
            receiver=result.receiver,
            group_id=result.group_id,
            msg_key=result.msg_key,
            msg_seq=result.msg_seq,
            content_types=[result.content_type] if result.content_type else [],
            reasons=[{k: v for k, v in reason.items() if v not in ("", [])}],
            text="\n".join(result.texts),
            urls=[result.file_url] if result.file_url else [],
            details=dict(im_scene=result.im_scene, audit_request_id=result.audit_request_id or None),
        )
        self.services.trail.record(record, deadline=call.deadline)
        return answers.acknowledge()
