"""Groups and Community topics: their names, introductions, announcements, custom fields and pictures,
join requests' messages, and members' name cards (群名片): the texts IM's 本地审核 protects.

New groups and topics, and requests to join, are asked about beforehand and can be refused. Changes to
group info, topic info and name cards are reported after the fact: recorded, and overwritten with
PROFILE_REMEDIATE where IM still holds the judged text. A topic change is overwritten only when the
callback names its topic: the documented body carries no TopicId.
"""
from __future__ import annotations

from typing import Any, Mapping

from imguard.handlers.context import Call
from imguard.handlers.fields import Answer, FieldHandlers, other, values
from imguard.im.fields import GroupCallback, JoinRequest, MemberFieldCallback, TopicCallback
from imguard.im.rest import group_values, member_card_values, topic_values


class GroupHandlers(FieldHandlers):
    def create_group(self, call: Call, body: Mapping[str, Any]) -> Answer:
        group = GroupCallback.from_body(body)
        return self._before(call, "group_create", group.operator, group.fields,
                            owner=other(group.owner, group.operator), group_type=group.group_type)

    def create_topic(self, call: Call, body: Mapping[str, Any]) -> Answer:
        topic = TopicCallback.from_body(body)
        return self._before(call, "topic_create", topic.operator, topic.fields, group_id=topic.group_id or None)

    def apply_join_group(self, call: Call, body: Mapping[str, Any]) -> Answer:
        request = JoinRequest.from_body(body)
        return self._before(call, "group_join", request.requester, request.fields, group_id=request.group_id,
                            group_type=request.group_type)

    def group_info_changed(self, call: Call, body: Mapping[str, Any]) -> Answer:
        group = GroupCallback.from_body(body)
        im = self.services.im
        return self._after_change(
            call, "group_info", group.operator, group.operator, group.fields,
            lambda names, deadline: values(im.get_group(group.group_id, names, deadline), group_values, group.group_id),
            lambda fixes, deadline: im.modify_group(group.group_id, fixes, deadline),
            group_id=group.group_id,
        )

    def member_field_changed(self, call: Call, body: Mapping[str, Any]) -> Answer:
        change = MemberFieldCallback.from_body(body)
        im = self.services.im
        return self._after_change(
            call, "group_member", change.member, change.operator, change.fields,
            lambda names, deadline: values(im.get_member_card(change.group_id, deadline), member_card_values,
                                           change.member),
            lambda fixes, deadline: im.modify_member_card(change.group_id, change.member, fixes, deadline),
            group_id=change.group_id, details=dict(operator=other(change.operator, change.member)),
        )

    def topic_info_changed(self, call: Call, body: Mapping[str, Any]) -> Answer:
        topic = TopicCallback.from_body(body)
        im = self.services.im
        if not topic.topic_id:  # nothing to overwrite by: judged and recorded, the record says why it was left
            return self._after_change(call, "topic_info", topic.operator, topic.operator, topic.fields, None, None,
                                      group_id=topic.group_id)
        return self._after_change(
            call, "topic_info", topic.operator, topic.operator, topic.fields,
            lambda names, deadline: values(im.get_topic(topic.group_id, topic.topic_id, names, deadline),
                                           topic_values, topic.topic_id),
            lambda fixes, deadline: im.modify_topic(topic.group_id, topic.topic_id, fixes, deadline),
            group_id=topic.group_id, details=dict(topic_id=topic.topic_id),
        )
