"""What to set in the IM and CI consoles once both functions have their URLs. Text only.

Secrets are named, never shown (the output ends up in CI logs), except the callback token with
``--show-token``, which is the one value the operator has to paste somewhere.
"""
from __future__ import annotations

import json
from typing import List, Mapping, Optional

from imguard.deploy.apply import Deployed

# (IM console switch, CallbackCommand, why): README "Deploying to SCF", step 4.
CALLBACKS = (
    ("发单聊消息之前回调", "C2C.CallbackBeforeSendMsg", "judge C2C text and images; hand C2C audio/video to CI"),
    ("群内发言之前回调", "Group.CallbackBeforeSendMsg", "judge group text and images"),
    ("群内发言之后回调", "Group.CallbackAfterSendMsg", "hand group audio/video to CI, with RESULT_CALLBACK_URL"),
    ("添加好友之前回调", "Sns.CallbackPrevFriendAdd", "friend-request wording"),
    ("创建群组之前回调", "Group.CallbackBeforeCreateGroup", "names of new groups"),
    ("更新资料之后回调", "Profile.CallbackPortraitSet", "nicknames and signatures"),
    ("群组资料修改之后回调", "Group.CallbackAfterGroupInfoChanged", "group name, introduction, notification"),
    ("内容回调结果", "ContentCallback.ResultNotify", "only with IM's own cloud audit on"),
)

# The CI actions imguard calls (moderation/ci.py), by their CAM names (CI's CAM action list, 460/41741):
# text and image checks, audio and video jobs, and the job queries audio_result verifies with.
CI_ACTIONS = (
    "ci:CreateAuditingTextJob",
    "ci:CreateAuditingPictureJob",
    "ci:CreateAuditingAudioJob",
    "ci:CreateAuditingJobs",
    "ci:DescribeAuditingAudioJob",
    "ci:DescribeAuditingJobs",
)


def role_policy(bucket: str, region: str) -> str:
    """The smallest CAM policy for the functions' execution role, limited to the CI bucket."""
    appid = bucket.rsplit("-", 1)[-1]
    policy = {"version": "2.0", "statement": [{
        "effect": "allow",
        "action": list(CI_ACTIONS),
        "resource": [f"qcs::ci:{region}:uid/{appid}:bucket/{bucket}/*"],
    }]}
    return json.dumps(policy, indent=2)


def instructions(deployed: Mapping[str, Deployed], values: Mapping[str, str], role: Optional[str],
                 show_token: bool = False) -> str:
    callback = deployed["im_callback"].url if "im_callback" in deployed else None
    result = deployed["audio_result"].url if "audio_result" in deployed else None
    lines: List[str] = ["", "Function URLs"]
    for app, item in deployed.items():
        lines.append(f"  {app:<13} {item.url or '(not shown yet: SCF console -> the function -> 函数 URL)'}")

    lines += ["", f"IM console (即时通信 IM -> SDKAppID {values.get('IM_SDKAPPID') or '?'} -> 回调配置):",
              f"  回调 URL (callback URL):  {callback or 'the im_callback Function URL'}"]
    token = values.get("IM_CALLBACK_TOKEN", "").strip()
    if token:
        shown = token if show_token else "the value of IM_CALLBACK_TOKEN in .env (--show-token prints it)"
        lines.append(f"  开启鉴权 (authentication): on, token {shown}")
    else:
        lines.append("  开启鉴权 (authentication): turn it on, copy the token IM shows into IM_CALLBACK_TOKEN "
                     "in .env, and deploy again (required before RESULT_CALLBACK_URL or PROFILE_REMEDIATE)")
    lines.append("  Turn on these callbacks:")
    width = max(len(command) for _, command, _ in CALLBACKS)
    for switch, command, why in CALLBACKS:
        lines.append(f"    {command:<{width}}  {switch}  ({why})")

    lines += ["", "CI (数据万象 -> 内容审核):"]
    bucket, region = values.get("COS_BUCKET", "").strip(), values.get("COS_REGION", "").strip()
    if bucket:
        biz = "CI_BIZTYPE is set" if values.get("CI_BIZTYPE", "").strip() else "CI_BIZTYPE is empty: the default policy"
        lines.append(f"  审核策略 (policy): text, images, audio and video, bound to bucket {bucket}; "
                     f"its BizType goes into CI_BIZTYPE ({biz})")
    else:
        lines.append("  COS_BUCKET is empty, so CI is off and everything is allowed: set COS_BUCKET, COS_REGION "
                     "and CI_BIZTYPE (审核策略 -> BizType) and deploy again")
    current = values.get("RESULT_CALLBACK_URL", "").strip().rstrip("/")
    if result and current == result:
        lines.append(f"  Result callback: RESULT_CALLBACK_URL is {result} (audio_result); nothing to set in the "
                     f"CI console, im_callback sends it with every job")
    elif result:
        action = "is unset" if not current else f"points at {current}, not at audio_result"
        lines.append(f"  Result callback: RESULT_CALLBACK_URL {action}. To review audio and video, put")
        lines.append(f"    RESULT_CALLBACK_URL={result}")
        lines.append("  in .env and run `imguard deploy` again (im_callback sends it with every job; "
                     "nothing to set in the CI console)")
    if bucket and region and role:
        lines.append(f"  Execution role {role} (CAM -> 角色, 载体 scf.qcloud.com) needs this policy:")
        lines.extend("    " + line for line in role_policy(bucket, region).splitlines())
    elif bucket and not role:
        lines.append("  No execution role: the functions call CI with COS_SECRET_ID/COS_SECRET_KEY")

    if callback:
        lines += ["", "Check it:", f"  imguard replay tests/events/im --url {callback}"]
    return "\n".join(lines)
