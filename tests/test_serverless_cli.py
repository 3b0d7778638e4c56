"""functions/ read by the real deploy CLI: the pinned @serverless/components (package.json) loads the
application through its own code (scripts/serverless_config.js), offline and without credentials, and
must find both instances with every input the SCF component needs.

`npm run deploy` runs `components deploy` in functions/. The CLI deploys several instances only when
it is started in a folder without a deployable serverless.yml and finds them one folder down; app and
stage come from functions/serverless.yml, ${env:NAME} from the environment (.env at deploy time, a
fixed fake set here). ${name}-${stage}-${app} is left to the deployment engine; the script shows that
substitution separately (engine_inputs)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from imguard.config import VARIABLES
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "serverless_config.js"
CLI_PACKAGE_JSON = ROOT / "node_modules" / "@serverless" / "components" / "package.json"
TIMEOUTS = {"im_callback": 3, "audio_result": 30}
STAGE = "citest"
REGION = "ap-guangzhou"
# The scf component's own rule for a function name (serverless-components/tencent-scf:
# serverless.component.yml, inputs.name.regex), which ${name}-${stage}-${app} has to satisfy.
FUNCTION_NAME = re.compile(r"^[A-Za-z][\w-]{0,58}[A-Za-z0-9]$")
# What .env would hold: every variable imguard reads, each with its own recognisable value.
FAKE_VARIABLES = {name: f"fake-{name.lower().replace('_', '-')}" for name in VARIABLES}

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed: the deploy CLI (@serverless/components) is a Node program"
)


def _ensure_cli() -> None:
    """Install the pinned CLI from package-lock.json when node_modules lacks it (the npm registry is
    reachable wherever `make test` runs); everything after this is offline."""
    if CLI_PACKAGE_JSON.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("node_modules/@serverless/components is missing and npm is not installed to run `npm ci`")
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    if done.returncode != 0 or not CLI_PACKAGE_JSON.exists():
        pytest.fail(f"npm ci failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def load(folder: Path, home: Path, variables: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The application in `folder` as the CLI would send it to the engine, for a fixed environment
    (an empty HOME: no ~/.serverless credentials or settings of the developer's)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(variables if variables is not None else {"STAGE": STAGE, "REGION": REGION, **FAKE_VARIABLES})
    done = subprocess.run(
        ["node", str(SCRIPT), str(folder)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    _ensure_cli()
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def app(home) -> Dict[str, Any]:
    return load(ROOT / "functions", home)


def test_the_pinned_cli_is_the_one_installed(app):
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    pinned = package["devDependencies"]["@serverless/components"]

    assert app["cli"] == {"package": "@serverless/components", "version": pinned}


def test_the_cli_finds_both_instances_of_one_app_and_stage(app):
    assert app["mode"] == "multi"  # commands-cn/run.js hands the folder to runAll
    assert sorted(app["instances"]) == sorted(TIMEOUTS)
    assert (app["template"]["app"], app["template"]["stage"]) == ("imguard", STAGE)
    for name, instance in app["instances"].items():
        assert instance["name"] == name and instance["component"] == "scf"
        assert (instance["app"], instance["stage"], instance["org"]) == ("imguard", STAGE, app["offline_org"])


@pytest.mark.parametrize("name", sorted(TIMEOUTS))
def test_every_input_is_resolved(name, app):
    instance = app["instances"][name]
    sent = json.dumps(instance["inputs"])

    assert instance["undefined_paths"] == []
    # The CLI resolves ${env:...}; only the engine's own ${name} ${stage} ${app} may remain.
    assert set(re.findall(r"\$\{[^}]*\}", sent)) <= {"${name}", "${stage}", "${app}"}
    assert "${" not in json.dumps(instance["engine_inputs"])
    assert instance["engine_inputs"]["name"] == f"{name}-{STAGE}-imguard"
    assert FUNCTION_NAME.match(instance["engine_inputs"]["name"])


@pytest.mark.parametrize("name", sorted(TIMEOUTS))
def test_each_instance_ships_its_build_folder_as_a_python39_event_function(name, app):
    inputs = app["instances"][name]["inputs"]

    assert inputs["handler"] == "index.main_handler"
    assert inputs["runtime"] == "Python3.9"
    assert inputs["region"] == REGION
    # The CLI makes src absolute against the instance's folder before uploading it.
    assert Path(inputs["src"]["src"]) == ROOT / "build" / name
    assert inputs["originSrc"] == f"../../build/{name}"
    assert ".env" in inputs["src"]["exclude"]
    assert inputs["memorySize"] == 128
    assert inputs["timeout"] == TIMEOUTS[name]
    assert inputs.get("type", "event") == "event"


@pytest.mark.parametrize("name", sorted(TIMEOUTS))
def test_api_gateway_answers_with_the_functions_own_response(name, app):
    [event] = app["instances"][name]["inputs"]["events"]
    parameters = event["apigw"]["parameters"]
    [endpoint] = parameters["endpoints"]

    assert (endpoint["path"], endpoint["method"]) == (f"/{name}", "POST")
    assert endpoint["function"]["isIntegratedResponse"] is True
    assert endpoint["serviceTimeout"] == TIMEOUTS[name]
    assert parameters["protocols"] == ["https"]


@pytest.mark.parametrize("name", sorted(TIMEOUTS))
def test_every_imguard_variable_reaches_the_function(name, app):
    assert app["instances"][name]["inputs"]["environment"]["variables"] == FAKE_VARIABLES


def test_an_empty_variable_is_sent_as_empty_and_an_unset_one_is_left_out(home):
    variables = {"STAGE": STAGE, "REGION": REGION, **FAKE_VARIABLES, "DEADLINE_MS": ""}
    del variables["WHITELIST_USERS"]

    sent = load(ROOT / "functions", home, variables)["instances"]["im_callback"]
    declared = sent["inputs"]["environment"]["variables"]

    # The CLI sends an empty value as it is, and SCF's API documents Variable.Value as 不可为空字符:
    # a variable to leave at imguard's default belongs unset (commented out) in .env, not `NAME=`.
    # An unset one is dropped from the request, and imguard reads the missing variable as its default.
    assert declared["DEADLINE_MS"] == ""
    assert "WHITELIST_USERS" not in declared
    assert sent["undefined_paths"] == ["inputs.environment.variables.WHITELIST_USERS"]


def test_the_repository_root_is_not_an_application(home):
    """`components deploy` in the root finds no instance: it must run in functions/ (npm run deploy)."""
    root = load(ROOT, home)

    assert root["mode"] == "single" and root["error"]
