"""`make run`'s API Gateway stand-in: real HTTP in, the same event SCF builds, the response read back."""
import json
import threading
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from imguard.local.gateway import LocalGateway, build_routes, integration_response
from tests.conftest import ROOT, im_query, load_event


@pytest.fixture
def gateway(base_env):
    base_env(IM_SDKAPPID="1400000000")
    server = LocalGateway(("127.0.0.1", 0), build_routes(ROOT / "functions"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def post(url, body: bytes):
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_im_callback_answers_over_http(gateway):
    query = urlencode(im_query("C2C.CallbackBeforeSendMsg"))
    body = json.dumps(load_event("im/c2c_before_text")).encode()

    status, headers, answer = post(f"{gateway}/im_callback?{query}", body)

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert answer == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


def test_status_codes_pass_through(gateway):
    status, _, answer = post(f"{gateway}/im_callback?SdkAppid=1", b"{}")

    assert status == 403
    assert answer["error"] == "Forbidden"


def test_binary_bodies_arrive_base64_encoded_and_are_refused_cleanly(gateway):
    query = urlencode(im_query("C2C.CallbackBeforeSendMsg"))

    status, _, answer = post(f"{gateway}/im_callback?{query}", b"\xff\xfe\x00garbage")

    assert status == 400
    assert answer["message"] == "body is not valid UTF-8"


def test_unknown_routes_are_404(gateway):
    status, _, _ = post(f"{gateway}/nope", b"{}")

    assert status == 404


def test_a_return_value_api_gateway_cannot_read_is_a_502():
    status, _, body = integration_response({"ErrorCode": 0})

    assert status == 502
    assert b"Invalid scf response" in body


def test_a_function_missing_configuration_answers_503_naming_the_variable(gateway):
    status, _, answer = post(f"{gateway}/audio_result", b"{}")

    assert status == 503
    assert "JOB_SIGNING_KEY" in answer["message"]
