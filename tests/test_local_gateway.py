"""`make run`'s API Gateway stand-in: real HTTP in, the same event SCF builds, the response read back."""
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from imguard.local.gateway import MAX_REQUEST_BYTES, LocalGateway, build_routes, integration_response
from tests.conftest import ROOT, im_query, load_event


def serve(server: LocalGateway):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(base_env):
    base_env(IM_SDKAPPID="1400000000")
    yield from serve(LocalGateway(("127.0.0.1", 0), build_routes(ROOT / "functions")))


@pytest.fixture
def impatient_gateway(base_env):
    """A gateway that drops a client after half a second of silence."""
    base_env(IM_SDKAPPID="1400000000")
    yield from serve(LocalGateway(("127.0.0.1", 0), build_routes(ROOT / "functions"), client_timeout_s=0.5))


def connect(url: str) -> socket.socket:
    host, port = url.rsplit("/", 1)[-1].split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def raw_exchange(url: str, head: bytes):
    """Send ``head`` as is and read the answer until the gateway closes the connection."""
    with connect(url) as sock:
        sock.sendall(head)
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), headers.decode().lower(), json.loads(body)


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


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "١٢"])
def test_a_content_length_that_is_not_a_count_is_a_400_without_a_traceback(gateway, capfd, length):
    # GIVEN a request whose Content-Length is not a non-negative decimal number
    head = f"POST /im_callback HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()

    # WHEN it reaches the gateway
    status, headers, answer = raw_exchange(gateway, head)

    # THEN it is answered 400 in JSON, the connection is closed, and nothing is printed
    assert status == 400
    assert answer["error"] == "BadRequest"
    assert "Content-Length" in answer["message"]
    assert "connection: close" in headers
    assert "Traceback" not in capfd.readouterr().err


def test_a_body_over_the_cap_is_a_413_before_it_is_read(gateway):
    head = f"POST /im_callback HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_REQUEST_BYTES + 1}\r\n\r\n"

    status, _, answer = raw_exchange(gateway, head.encode())

    assert status == 413
    assert answer["error"] == "PayloadTooLarge"
    assert str(MAX_REQUEST_BYTES) in answer["message"]


@pytest.mark.parametrize("sent", [b"", b"POST /im_callback HTTP/1.1\r\nContent-Length: 10\r\n\r\n{"],
                         ids=["nothing", "half a body"])
def test_a_silent_client_is_dropped_after_the_socket_timeout(impatient_gateway, capfd, sent):
    # GIVEN a client that connects, sends part of a request or nothing, then goes quiet
    with connect(impatient_gateway) as sock:
        sock.sendall(sent)
        started = time.monotonic()

        # WHEN it waits for the gateway
        closed = sock.recv(1) == b""

    # THEN the gateway hangs up after its timeout instead of holding a thread for ever
    assert closed
    assert time.monotonic() - started < 3
    assert "Traceback" not in capfd.readouterr().err
