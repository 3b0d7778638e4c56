"""Local rules inside im_callback: whitelist → local rules → CI, rewrites delivered through MsgBody."""
import json

import pytest

from imguard.config import ConfigError
from tests.conftest import answer_of, im_query, load_event, scf_context, trigger_event

C2C = "C2C.CallbackBeforeSendMsg"


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("block: [赌博]\nreplace: [垃圾, {regex: 'qq\\d{5,}', mask: '[hidden]'}]\nallow: [垃圾分类]\n",
                    encoding="utf-8")
    return str(path)


def send(handler, body, command=C2C):
    return answer_of(handler(trigger_event(body, im_query(command)), scf_context()))


def with_text(event, text):
    body = load_event(event)
    body["MsgBody"][0]["MsgContent"]["Text"] = text
    return body


def test_a_block_rule_rejects_without_asking_ci(make_function, fake_ci, rules_file):
    handler = make_function(RULES_PATH=rules_file)

    answer = send(handler, with_text("im/c2c_before_multi", "网上赌博"))

    assert answer["ErrorCode"] == 1
    assert fake_ci.calls == []


def test_a_replace_rule_delivers_the_message_rewritten_and_untouched_elsewhere(make_function, fake_ci, rules_file):
    # GIVEN a multi-element message whose text has a word on the replace list
    handler = make_function(RULES_PATH=rules_file)
    body = with_text("im/c2c_before_multi", "你这个垃圾，加qq123456")

    # WHEN it is judged
    answer = send(handler, body)

    # THEN it is delivered with the text masked, every other element exactly as sent
    assert answer["ErrorCode"] == 0
    expected = [dict(e) for e in body["MsgBody"]]
    expected[0] = {"MsgType": "TIMTextElem", "MsgContent": {"Text": "你这个**，加[hidden]"}}
    assert answer["MsgBody"] == expected
    assert "CloudCustomData" not in answer  # IM keeps the original
    # AND CI saw the rewritten text, not the original
    assert fake_ci.calls_of("text")[0].fields["Input/Content"].startswith("你这个**，加[hidden]")


def test_ci_can_still_block_a_rewritten_message(make_function, fake_ci, rules_file):
    fake_ci.flag_word("see the photo")
    handler = make_function(RULES_PATH=rules_file)
    body = load_event("im/c2c_before_multi")
    body["MsgBody"][2]["MsgContent"]["Desc"] = "垃圾 street"

    answer = send(handler, body)

    assert answer["ErrorCode"] == 1
    assert "MsgBody" not in answer


def test_relay_texts_are_rewritten_in_place(make_function, fake_ci, rules_file):
    handler = make_function(RULES_PATH=rules_file, ci=False)
    body = load_event("im/c2c_before_relay")
    body["MsgBody"][0]["MsgContent"]["MsgList"][1]["MsgBody"][0]["MsgContent"]["Text"] = "真垃圾"

    answer = send(handler, body)

    relay = answer["MsgBody"][0]["MsgContent"]
    assert relay["MsgList"][1]["MsgBody"][0]["MsgContent"]["Text"] == "真**"
    assert relay["MsgList"][0] == body["MsgBody"][0]["MsgContent"]["MsgList"][0]
    assert relay["AbstractList"] == body["MsgBody"][0]["MsgContent"]["AbstractList"]


def test_allow_list_keeps_a_message_intact(make_function, fake_ci, rules_file):
    handler = make_function(RULES_PATH=rules_file, ci=False)

    answer = send(handler, with_text("im/c2c_before_text", "垃圾分类从我做起"))

    assert answer == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


def test_group_messages_are_rewritten_too(make_function, fake_ci, rules_file):
    handler = make_function(RULES_PATH=rules_file, ci=False)

    answer = send(handler, with_text("im/group_before_text_topic", "垃圾"), "Group.CallbackBeforeSendMsg")

    assert answer["MsgBody"][0]["MsgContent"]["Text"] == "**"


def test_whitelist_comes_before_local_rules(make_function, fake_ci, rules_file):
    handler = make_function(RULES_PATH=rules_file, WHITELIST_USERS="jared")

    assert send(handler, with_text("im/c2c_before_text", "赌博"))["ErrorCode"] == 0


def test_local_rules_work_without_any_cloud_account(make_function, fake_ci, rules_file):
    handler = make_function(RULES_PATH=rules_file, ci=False)

    assert send(handler, with_text("im/c2c_before_text", "赌博"))["ErrorCode"] == 1


@pytest.mark.parametrize("content", ["block: [{regex: '(a'}]", "block: nope", ": : :"])
def test_a_broken_rules_file_stops_the_cold_start_naming_rules_path(make_function, tmp_path, content):
    path = tmp_path / "rules.yaml"
    path.write_text(content)

    with pytest.raises(ConfigError, match="RULES_PATH"):
        make_function(RULES_PATH=str(path))


def test_a_missing_rules_file_stops_the_cold_start(make_function, tmp_path):
    with pytest.raises(ConfigError, match="RULES_PATH"):
        make_function(RULES_PATH=str(tmp_path / "nope.yaml"))


def test_the_log_line_says_which_rule_rewrote_the_message(make_function, fake_ci, rules_file, capsys):
    from tests.conftest import log_lines

    handler = make_function(RULES_PATH=rules_file, ci=False)

    send(handler, with_text("im/c2c_before_text", "真垃圾"))

    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["action"] == "rewrite"
    assert line["reasons"] == [{"outcome": "pass", "source": "rules", "check": "rules", "label": "replace",
                                "keywords": ["replace:垃圾"], "detail": line["reasons"][0]["detail"],
                                "latency_ms": line["reasons"][0]["latency_ms"]}]
    assert "真垃圾" not in json.dumps(line, ensure_ascii=False)
