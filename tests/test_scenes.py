"""Policies per scene: one rules file gives C2C, each group type, listed groups, friend requests,
profiles and group info their own lists and settings; everything not overridden inherits (issue #16)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imguard.rules.book import Scene, loads
from imguard.rules.errors import RulesError
from tests.conftest import ROOT, answer_of, im_query, load_event, scf_context, stored, trigger_event
from tests.flows import send_c2c

RULES = (ROOT / "tests" / "data" / "scenes.yaml").read_text(encoding="utf-8")


def group_message(text: str, group_type: str = "Public", group_id: str = "@TGS#2J4SZEAEL") -> dict:
    body = load_event("im/group_before_text_topic")
    body.update(Type=group_type, GroupId=group_id, MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}])
    return body


def send_group_before(handler, body: dict) -> dict:
    return answer_of(handler(trigger_event(body, im_query("Group.CallbackBeforeSendMsg")), scf_context()))


@pytest.fixture
def with_scenes(make_function, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")

    def make(**env):
        return make_function(RULES_PATH=str(path), **env)

    return make


def test_each_group_type_gets_its_lists_over_the_inherited_ones(with_scenes):
    handler = with_scenes(ci=False)

    assert send_group_before(handler, group_message("私聊我", "Public"))["ErrorCode"] == 0
    # AVChatRoom: its own word, silently dropped as its block_action says
    assert send_group_before(handler, group_message("私聊我", "AVChatRoom"))["ErrorCode"] == 2
    # the documented sample's "Live" is the old name of AVChatRoom
    assert send_group_before(handler, group_message("私聊我", "Live"))["ErrorCode"] == 2
    # every group inherits `group`'s list, and the global one, with the global block action
    assert send_group_before(handler, group_message("加微信", "Work"))["ErrorCode"] == 1
    assert send_group_before(handler, group_message("你个傻逼", "Community"))["ErrorCode"] == 1
    # C2C does not get the group lists
    assert send_c2c(handler, dict(load_event("im/c2c_before_text"),
                                  MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "加微信"}}]))["ErrorCode"] == 0


def test_a_listed_group_can_allow_what_its_type_blocks(with_scenes):
    handler = with_scenes(ci=False)

    assert send_group_before(handler, group_message("加微信群聊", group_id="@TGS#loud"))["ErrorCode"] == 1
    assert send_group_before(handler, group_message("加微信群聊", group_id="@TGS#quiet"))["ErrorCode"] == 0
    # its allow covers only that wording: the global lists still apply
    assert send_group_before(handler, group_message("傻逼", group_id="@TGS#quiet"))["ErrorCode"] == 1


def test_a_scene_sets_its_own_ci_policy_and_fail_mode(with_scenes, fake_ci, sqlite_dsn):
    handler = with_scenes(AUDIT_DSN=sqlite_dsn, DEADLINE_MS="300")

    send_c2c(handler, load_event("im/c2c_before_text"))
    send_group_before(handler, group_message("hello there", "Public"))
    fake_ci.text_delay_s = 2.0  # CI too slow: the scene's fail mode decides
    live = send_group_before(handler, group_message("hello live", "AVChatRoom"))
    public = send_group_before(handler, group_message("hello public", "Public"))

    c2c_call, group_call = fake_ci.calls_of("text")[:2]
    assert c2c_call.fields.get("Conf/BizType") == "c2c-policy"
    assert "Conf/BizType" not in group_call.fields  # CI_BIZTYPE unset: CI's default policy
    assert live["ErrorCode"] == 2 and public["ErrorCode"] == 0  # closed for live broadcasts, open elsewhere
    rows = stored(sqlite_dsn, 4)
    assert rows[1]["details"]["policy"] == ["global", "group", "group:AVChatRoom"]


def test_friend_requests_have_their_own_scene(with_scenes):
    handler = with_scenes(ci=False)
    body = load_event("im/sns_prev_friend_add")
    body["FriendItem"][0]["AddWording"] = "交个朋友吧"

    answer = answer_of(handler(trigger_event(body, im_query("Sns.CallbackPrevFriendAdd")), scf_context()))

    assert [item["ResultCode"] for item in answer["ResultItem"]] == [38000]


def test_suspicious_action_per_scene_reads_cis_suspicious_verdict(with_scenes, fake_ci):
    fake_ci.flag_word("borderline", result=2, label="Ads")
    handler = with_scenes()

    assert send_group_before(handler, group_message("borderline", "Public"))["ErrorCode"] == 0
    assert send_group_before(handler, group_message("borderline", "AVChatRoom"))["ErrorCode"] == 2


def test_check_shows_the_policy_that_applied():
    rules = ROOT / "tests" / "data" / "scenes.yaml"
    result = subprocess.run([sys.executable, "-m", "imguard", "check", "--rules", str(rules), "--scene",
                             "group:AVChatRoom", "私聊我", "你好"], capture_output=True, text=True, check=True)

    blocked, passed = (json.loads(line) for line in result.stdout.splitlines())
    assert blocked["action"] == "block" and passed["action"] == "pass"
    assert blocked["policy"]["applied"] == ["global", "group", "group:AVChatRoom"]
    assert blocked["policy"]["block_action"] == "silent" and blocked["policy"]["fail_mode"] == "closed"


def test_check_names_a_scene_it_does_not_know():
    result = subprocess.run([sys.executable, "-m", "imguard", "check", "--rules", str(ROOT / "rules.example.yaml"),
                             "--scene", "channel:x", "hi"], capture_output=True, text=True)

    assert result.returncode == 2 and "group_id:<GroupId>" in result.stderr


@pytest.mark.parametrize("scenes, problem", [
    ("{group:Party: {block: [x]}}", "scenes.group:Party: expected one of"),
    ("{c2c: {normalize: {}}}", "normalize and pinyin are set once"),
    ("{c2c: {fail_mode: maybe}}", "scenes.c2c.fail_mode: expected open, closed"),
    ("{c2c: {block: [{regex: '(a'}]}}", "scenes.c2c: block[1]: regex"),
    ("[c2c]", "scenes: expected a mapping"),
])
def test_a_bad_scene_is_refused_by_name(scenes, problem):
    with pytest.raises(RulesError, match=problem.replace("(", r"\(").replace("[", r"\[")):
        loads(f"block: [x]\nscenes: {scenes}\n")


def test_hot_reload_brings_new_scenes(rules_server):
    from imguard.rules.source import RulesSource

    rules_server.expect_request("/rules.yaml").respond_with_data("block: [x]\n", headers={"ETag": '"1"'})
    source = RulesSource(url=rules_server.url_for("/rules.yaml"), refresh_s=60)
    before = source.current().policy(Scene.group("AVChatRoom", "")).scan("私聊我").action
    rules_server.clear()
    rules_server.expect_request("/rules.yaml").respond_with_data(RULES, headers={"ETag": '"2"'})

    assert source.refresh() is True
    assert before == "pass"
    assert source.current().policy(Scene.group("AVChatRoom", "")).scan("私聊我").action == "block"


def test_policies_remembered_per_group_stay_bounded():
    # Every GroupId has its own chain of scene keys; a sender cannot grow the cache by inventing groups.
    from imguard.rules.book import MAX_SCENES

    book = loads(RULES)
    for i in range(MAX_SCENES * 6):
        assert book.policy(Scene.group("Public", f"@TGS#{i}")).scan("加微信").action == "block"

    assert len(book._policies) <= MAX_SCENES * 4


def test_the_examples_commented_sections_load_once_uncommented():
    # rules.example.yaml shows review, scenes, flood and sanctions commented out: they must stay valid.
    import re

    text = (ROOT / "rules.example.yaml").read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^# ?(?=(review|scenes|flood|sanctions|  |\s*$))", "", text)
    book = loads("\n".join(line for line in uncommented.splitlines() if not line.startswith("#")))

    assert set(book.scenes) == {"group:AVChatRoom", "group_id:@TGS#2J4SZEAEL"}
    assert not book.flood.empty and len(book.sanctions.steps) == 2
    assert book.scan("找兼职").action == "review"
