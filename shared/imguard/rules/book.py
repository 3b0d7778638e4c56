"""The whole rules file: global lists, policies per scene, flood control and the sanctions ladder.

    block: [...]                  # the global lists (block, replace, review, allow), normalize, pinyin
    scenes:
      group:AVChatRoom:           # live broadcasts: stricter
        block: [加我微信]
        suspicious_action: block
        fail_mode: closed
      group_id:@TGS#2J4SZEAEL:    # one group, over its type's policy
        allow: [发票]
      c2c: {ci_biztype: c2c-policy}
    flood: {...}                  # imguard.sanctions.flood
    sanctions: [...]              # imguard.sanctions.ladder

A scene inherits everything it does not set, from the general to the specific: global, then the kind
(``c2c``, ``group``, ``friend``, ``profile``, ``group_info``), then ``group:<Type>``, then
``group_id:<GroupId>``. A scene's lists are added to what it inherits (its ``allow`` also covers inherited
hits); ``suspicious_action``, ``fail_mode``, ``block_action`` and ``ci_biztype`` replace the inherited value.
The file is loaded, hot-reloaded and compiled by ``make build`` as one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from imguard.rules.errors import RulesError
from imguard.rules.ruleset import LISTS, RuleSet, Scan, no_rules, parse, scan_layers
from imguard.rules.yaml_text import read_yaml
from imguard.sanctions.flood import FloodPolicy, parse_flood
from imguard.sanctions.ladder import Ladder, parse_ladder

KINDS = ("c2c", "group", "friend", "profile", "group_info")
GROUP_TYPES = ("Public", "Work", "Meeting", "AVChatRoom", "Community")
# Names IM used before its 2020 renaming, still seen in callbacks (Live is the documented sample's AVChatRoom).
GROUP_TYPE_ALIASES = {"Private": "Work", "ChatRoom": "Meeting", "Live": "AVChatRoom", "BChatRoom": "AVChatRoom"}
SETTINGS = {"suspicious_action": ("allow", "block", "review"), "fail_mode": ("open", "closed"),
            "block_action": ("reject", "silent"), "ci_biztype": None}
MAX_SCENES = 1_000


@dataclass(frozen=True)
class Scene:
    """Where a callback's content was said: what picks its policy."""

    kind: str  # one of KINDS
    group_type: str = ""
    group_id: str = ""

    @classmethod
    def group(cls, group_type: str, group_id: str) -> "Scene":
        return cls("group", GROUP_TYPE_ALIASES.get(group_type, group_type), group_id)

    @classmethod
    def parse(cls, written: str) -> "Scene":
        """``imguard check --scene``: c2c, group:AVChatRoom, group_id:@TGS#..., friend, ..."""
        kind, _, value = written.partition(":")
        if kind == "group" and value:
            return cls.group(value, "")
        if kind == "group_id" and value:
            return cls("group", "", value)
        if kind in KINDS and not value:
            return cls(kind)
        raise ValueError(f"expected one of {', '.join(KINDS)}, group:<Type> or group_id:<GroupId>, got {written!r}")

    def keys(self) -> Tuple[str, ...]:
        """The scene keys of the rules file that apply, general to specific."""
        keys = [self.kind]
        if self.group_type:
            keys.append(f"group:{self.group_type}")
        if self.group_id:
            keys.append(f"group_id:{self.group_id}")
        return tuple(keys)


@dataclass(frozen=True)
class Defaults:
    """The environment's values, which the rules file's scenes override."""

    suspicious_action: str = "allow"
    fail_mode: str = "open"
    block_action: str = "reject"
    ci_biztype: Optional[str] = None


@dataclass(frozen=True)
class Policy:
    """What applies to one scene: the lists to scan, and the settings to decide with."""

    layers: Tuple[RuleSet, ...]
    suspicious_action: str
    fail_mode: str
    block_action: str
    ci_biztype: Optional[str]
    applied: Tuple[str, ...] = ("global",)  # the scene keys that contributed, for `imguard check` and logs
    version: str = ""

    @property
    def empty(self) -> bool:
        return all(layer.empty for layer in self.layers)

    def scan(self, text: str) -> Scan:
        return scan_layers(self.layers, text)

    def describe(self) -> Dict[str, Any]:
        return {"applied": list(self.applied), "suspicious_action": self.suspicious_action,
                "fail_mode": self.fail_mode, "block_action": self.block_action, "ci_biztype": self.ci_biztype,
                "entries": sum(len(layer.entries) for layer in self.layers)}


@dataclass(frozen=True)
class SceneRules:
    rules: Optional[RuleSet]  # the scene's own lists, if it has any
    settings: Mapping[str, str]


@dataclass
class Rulebook:
    base: RuleSet
    scenes: Dict[str, SceneRules] = field(default_factory=dict)
    flood: FloodPolicy = FloodPolicy()
    sanctions: Ladder = Ladder()
    version: str = ""
    compiled: bool = False  # loaded as `make build` compiled it (imguard.rules.compiled)

    def __post_init__(self) -> None:
        self._policies: Dict[Tuple[Tuple[str, ...], Defaults], Policy] = {}

    def __getstate__(self) -> Dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "_policies"}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        vars(self).update(state, compiled=True)
        self._policies = {}

    @property
    def entries(self) -> int:
        return len(self.base.entries) + sum(len(s.rules.entries) for s in self.scenes.values() if s.rules)

    @property
    def empty(self) -> bool:
        return self.entries == 0

    @property
    def queues_for_review(self) -> bool:
        """Whether anything here sends messages to the review queue (a review list, a scene's review)."""
        sets = [self.base] + [scene.rules for scene in self.scenes.values() if scene.rules is not None]
        return any(entry.list == "review" for rules in sets for entry in rules.entries) or any(
            scene.settings.get("suspicious_action") == "review" for scene in self.scenes.values())

    def scan(self, text: str) -> Scan:
        """The global lists alone (`imguard check` without --scene)."""
        return self.base.scan(text)

    def policy(self, scene: Scene, defaults: Defaults = Defaults()) -> Policy:
        keys = scene.keys()
        cache_key = (keys, defaults)
        policy = self._policies.get(cache_key)
        if policy is None:
            layers, applied = [self.base], ["global"]
            values = {name: getattr(defaults, name) for name in SETTINGS}
            for key in keys:
                found = self.scenes.get(key)
                if found is None:
                    continue
                applied.append(key)
                if found.rules is not None:
                    layers.append(found.rules)
                values.update(found.settings)
            policy = Policy(tuple(layers), applied=tuple(applied), version=self.version, **values)
            if len(self._policies) < MAX_SCENES * 4:  # one per group ever seen would grow without end
                self._policies[cache_key] = policy
        return policy


def loads(text: str, version: str = "") -> Rulebook:
    return parse_book(read_yaml(text), version)


def parse_book(data: Any, version: str = "") -> Rulebook:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RulesError("the rules file must be a mapping with block, replace, review and allow lists")
    shared = {key: data[key] for key in ("normalize", "pinyin") if key in data}
    lists = {key: value for key, value in data.items() if key not in ("scenes", "flood", "sanctions")}
    return Rulebook(parse(lists, version), _scenes(data.get("scenes"), shared, version),
                    parse_flood(data.get("flood")), parse_ladder(data.get("sanctions")), version)


def _scenes(data: Any, shared: Mapping[str, Any], version: str) -> Dict[str, SceneRules]:
    if data is None:
        return {}
    if not isinstance(data, Mapping) or len(data) > MAX_SCENES:
        raise RulesError(f"scenes: expected a mapping of at most {MAX_SCENES} scenes")
    scenes = {}
    for key, item in data.items():
        where = f"scenes.{key}"
        _check_scene_key(key, where)
        if not isinstance(item, Mapping):
            raise RulesError(f"{where}: expected a mapping of lists and settings")
        unknown = set(item) - set(LISTS) - set(SETTINGS)
        if unknown:
            raise RulesError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (normalize and pinyin "
                             f"are set once, at the top)")
        settings: Dict[str, str] = {}
        for name, choices in SETTINGS.items():
            if name in item:
                value = item[name]
                if not isinstance(value, str) or (choices is not None and value not in choices):
                    expected = ", ".join(choices) if choices else "a BizType string"
                    raise RulesError(f"{where}.{name}: expected {expected}, got {value!r}")
                settings[name] = value
        lists = {name: item[name] for name in LISTS if name in item}
        try:
            rules = parse({**shared, **lists}, version) if lists else None
        except RulesError as exc:
            raise RulesError(f"{where}: {exc}") from None
        scenes[key] = SceneRules(rules, settings)
    return scenes


def _check_scene_key(key: Any, where: str) -> None:
    if not isinstance(key, str):
        raise RulesError(f"{where}: a scene is written as a string")
    kind, _, value = key.partition(":")
    if kind in KINDS and not value:
        return
    if kind == "group" and value in GROUP_TYPES:
        return
    if kind == "group_id" and value.strip():
        return
    raise RulesError(f"{where}: expected one of {', '.join(KINDS)}, group:<{'|'.join(GROUP_TYPES)}> or "
                     f"group_id:<GroupId>")


def no_book() -> Rulebook:
    return Rulebook(no_rules(), version="none")