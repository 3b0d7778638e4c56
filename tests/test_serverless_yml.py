"""serverless.yml: what `serverless deploy` ships must be what the code needs, and API Gateway must
hand IM the function's own answer (an integration response), or IM delivers everything."""
from __future__ import annotations

import re

import pytest
import yaml

from imguard.config import VARIABLES
from tests.conftest import ROOT

TIMEOUTS = {"im_callback": 3, "audio_result": 30}
APPLICATION = ROOT / "functions" / "serverless.yml"  # `npm run deploy` runs `components deploy` in functions/


def instance(name: str) -> dict:
    return yaml.safe_load((ROOT / "functions" / name / "serverless.yml").read_text(encoding="utf-8"))


def test_the_application_file_names_the_app_and_stage_only():
    app = yaml.safe_load(APPLICATION.read_text(encoding="utf-8"))

    assert app == {"app": "imguard", "stage": "${env:STAGE}"}
    # No component and no name: the CLI only deploys every instance one folder down when the folder
    # it runs in has no deployable serverless.yml of its own.
    assert "component" not in app and "name" not in app


def test_the_repository_root_holds_no_serverless_yml():
    # A root serverless.yml without `name` is what made `serverless deploy` in the root stop with
    # 没有发现实例名称; the application lives in functions/.
    assert not (ROOT / "serverless.yml").exists()


@pytest.mark.parametrize("name", sorted(TIMEOUTS))
def test_each_function_is_an_scf_instance_shipping_its_build_folder(name):
    spec = instance(name)
    inputs = spec["inputs"]

    assert spec["component"] == "scf" and spec["name"] == name
    # One org, app and stage for every instance of an application (getTemplate refuses a mix).
    app = yaml.safe_load(APPLICATION.read_text(encoding="utf-8"))
    assert (spec["app"], spec["stage"]) == (app["app"], app["stage"])
    assert inputs["handler"] == "index.main_handler"
    assert (ROOT / "functions" / name / "index.py").read_text().count("def main_handler(event, context)") == 1
    assert inputs["runtime"] == "Python3.9"
    assert inputs["src"]["src"] == f"../../build/{name}"
    assert ".env" in inputs["src"]["exclude"]
    assert inputs["timeout"] == TIMEOUTS[name]
    assert inputs["memorySize"] >= 128


@pytest.mark.parametrize("name", sorted(TIMEOUTS))
def test_api_gateway_returns_the_functions_own_answer(name):
    [event] = instance(name)["inputs"]["events"]
    [endpoint] = event["apigw"]["parameters"]["endpoints"]

    assert endpoint["path"] == f"/{name}" and endpoint["method"] == "POST"
    # Off by default: without it API Gateway wraps the return value and IM never sees an ErrorCode.
    assert endpoint["function"]["isIntegratedResponse"] is True
    assert event["apigw"]["parameters"]["protocols"] == ["https"]


@pytest.mark.parametrize("name", sorted(TIMEOUTS))
def test_every_variable_the_code_reads_is_declared_from_the_environment(name):
    declared = instance(name)["inputs"]["environment"]["variables"]

    assert sorted(declared) == sorted(VARIABLES)
    # Values come from .env / the shell at deploy time: nothing secret is committed here.
    assert {key: value for key, value in declared.items() if value != f"${{env:{key}}}"} == {}


def test_no_literal_secret_sits_in_any_yml():
    for path in [APPLICATION, *ROOT.glob("functions/*/serverless.yml")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(SECRET|KEY|TOKEN)[A-Z_]*:\s*(?!\$\{env:)\S", text), path
