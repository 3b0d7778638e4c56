"""README.zh-CN.md's variable table stays in step with imguard.config.VARIABLES, both ways."""
import re
from typing import Dict, List

from imguard.config import VARIABLES
from imguard.console.settings import CONSOLE_VARIABLES
from tests.conftest import ROOT

README_ZH = ROOT / "README.zh-CN.md"
TABLE_HEADER = "| 变量 | 默认值 | 说明 |"
# A row that names an environment variable: "| `NAME` |" with NAME in capitals, as in config.VARIABLES.
VARIABLE_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|")
# The defaults that are not literal values are written in Chinese; every other default is as in VARIABLES.
ZH_DEFAULTS = {"(required)": "（必填）", "SCF role": "SCF 运行角色", "bundled": "随包规则"}


def _lines() -> List[str]:
    return README_ZH.read_text(encoding="utf-8").splitlines()


def _variable_table() -> Dict[str, List[str]]:
    """The rows of the table under TABLE_HEADER: name -> [default, meaning], cells stripped of backticks."""
    lines = _lines()
    assert TABLE_HEADER in lines, f"README.zh-CN.md has no variable table headed {TABLE_HEADER!r}"
    start = lines.index(TABLE_HEADER) + 2  # the header, then the |---| line
    table: Dict[str, List[str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"not a | `NAME` | default | 说明 | row: {line!r}"
        name = cells[0].strip("`")
        assert name not in table, f"{name} has two rows"
        table[name] = [cells[1].replace("`", ""), cells[2]]
    return table


def test_every_variable_has_a_row_in_the_chinese_readme():
    readme = README_ZH.read_text(encoding="utf-8")

    assert [name for name in VARIABLES if f"| `{name}` |" not in readme] == []


def test_every_variable_row_in_the_chinese_readme_names_a_variable():
    named = [m.group(1) for m in map(VARIABLE_ROW.match, _lines()) if m]

    assert [name for name in named if name not in VARIABLES and name not in CONSOLE_VARIABLES] == []


def test_both_readmes_document_the_consoles_own_variables():
    for readme in (README_ZH, ROOT / "README.md"):
        text = readme.read_text(encoding="utf-8")
        assert [name for name in CONSOLE_VARIABLES if f"| `{name}` |" not in text] == [], readme.name


def test_the_chinese_variable_table_lists_each_variable_once_with_its_default():
    table = _variable_table()

    assert sorted(table) == sorted(VARIABLES)
    wrong = {
        name: (cells[0], ZH_DEFAULTS.get(VARIABLES[name].default, VARIABLES[name].default))
        for name, cells in table.items()
        if cells[0] != ZH_DEFAULTS.get(VARIABLES[name].default, VARIABLES[name].default)
    }
    assert wrong == {}, "README.zh-CN.md default != config.VARIABLES default: {name: (readme, code)}"
    assert [name for name, cells in table.items() if not cells[1]] == [], "rows without a 说明"
