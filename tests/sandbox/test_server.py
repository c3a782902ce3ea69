"""The sandbox server: HTTPS with its own CA, faults on demand, webhooks signed like the ledgers sign them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.sandbox import Faults, SandboxClock, serve, sign, sign_and_post

KEY = "a-webhook-key"


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


async def receiver(request: Request) -> Response:
    body = await request.body()
    expected = base64.b64encode(hmac.new(KEY.encode(), body, hashlib.sha256).digest()).decode()
    good = hmac.compare_digest(expected, request.headers.get("x-test-signature", ""))
    return Response(status_code=200 if good else 401)


@pytest.fixture
def running():
    app = Starlette(routes=[Route("/hello", hello), Route("/hook", receiver, methods=["POST"])])
    handle = serve(app, clock=SandboxClock(), faults=Faults(seed=4))
    yield handle
    handle.stop()


def test_it_serves_https_trusted_only_through_its_own_ca(running):
    assert running.base_url.startswith("https://127.0.0.1:")
    answer = requests.get(f"{running.base_url}/hello", verify=str(running.ca_path), timeout=5)
    assert answer.json() == {"hello": "world"}
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{running.base_url}/hello", timeout=5)


def test_error_rate_replaces_answers_with_500_or_503_and_can_be_cleared(running):
    running.faults.error_rate = 1.0
    statuses = {
        requests.get(f"{running.base_url}/hello", verify=str(running.ca_path), timeout=5).status_code
        for _ in range(12)
    }
    assert statuses == {500, 503}
    running.faults.clear()
    assert (
        requests.get(f"{running.base_url}/hello", verify=str(running.ca_path), timeout=5).status_code == 200
    )


def test_a_dropped_connection_gets_no_answer(running):
    running.faults.drop_rate = 1.0
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{running.base_url}/hello", verify=str(running.ca_path), timeout=5)


def test_latency_delays_every_answer(running):
    running.faults.latency_s = 0.2
    began = time.monotonic()
    requests.get(f"{running.base_url}/hello", verify=str(running.ca_path), timeout=5)
    assert time.monotonic() - began >= 0.2


def test_stop_closes_the_port():
    handle = serve(Starlette(routes=[Route("/hello", hello)]), clock=SandboxClock(), faults=Faults())
    handle.stop()
    assert not handle.ca_path.exists()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{handle.base_url}/hello", verify=False, timeout=2)


def test_sign_and_post_signs_the_raw_body_so_a_receiver_can_verify_it(running):
    body = b'{"events":[],"firstEventSequence":0}'
    assert (
        sign_and_post(f"{running.base_url}/hook", body, "x-test-signature", KEY, verify=str(running.ca_path))
        == 200
    )
    assert (
        sign_and_post(
            f"{running.base_url}/hook", body, "x-test-signature", "wrong-key", verify=running.ca_path
        )
        == 401
    )
    assert sign(body, KEY) != sign(body + b" ", KEY)


def test_sign_and_post_reports_0_when_nobody_answers(running):
    port = running.port
    running.stop()
    assert sign_and_post(f"https://127.0.0.1:{port}/hook", b"{}", "x-test-signature", KEY, timeout=1) == 0
