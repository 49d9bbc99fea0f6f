"""`nexttoken serve-model` over real HTTP on loopback, with the real model: auth, limits,
greedy text equal to the engine's, streaming, per-client slots, fair queue, metrics."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onnx_models.engine import Engine
from onnx_models.sampling import SamplingParams
from onnx_models.serving import ApiTokens, ModelHttpServer, ServeConfig, serve
from onnx_models.serving_pool import CompletionJob, FairQueue, QueueFull, TextStream

TOKENS = ("alpha-token", "beta-token")


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine.load(model_dir, threads=2)


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ModelHttpServer]:
    httpd = serve(engine, ServeConfig(port=0, slots=2, max_body_bytes=4096), ApiTokens(TOKENS))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.service.close()
    httpd.server_close()


def call(
    server: ModelHttpServer,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = TOKENS[0],
    raw: bytes | None = None,
) -> tuple[int, str]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=120)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    return response.status, text


def complete(server: ModelHttpServer, token: str = TOKENS[0], **body: Any) -> dict[str, Any]:
    status, text = call(server, "POST", "/v1/completions", {"temperature": 0, **body}, token)
    assert status == 200, text
    return json.loads(text)


def reference(engine: Engine, prompt: str, max_tokens: int) -> str:
    """The engine's own greedy text for `prompt`, in a cache of its own."""
    own = Engine(
        engine.model_dir, engine.manifest, engine.session, engine.tokenizer, engine.step_session
    )
    ids = engine.tokenizer.encode(prompt, add_special_tokens=False).ids
    generation = own.generate(ids, max_new_tokens=max_tokens)
    return engine.tokenizer.decode(list(generation.tokens), skip_special_tokens=False)


def test_no_token_no_answer(server: ModelHttpServer) -> None:
    body = {"prompt": "x", "max_tokens": 1}
    assert call(server, "POST", "/v1/completions", body, token=None)[0] == 401
    assert call(server, "POST", "/v1/completions", body, token="alpha-tokenX")[0] == 401
    assert call(server, "GET", "/v1/models", token="wrong")[0] == 401
    assert call(server, "GET", "/health", token=None)[0] == 200


def test_request_limits(server: ModelHttpServer) -> None:
    big = json.dumps({"prompt": "x" * 5000, "max_tokens": 1}).encode()
    assert call(server, "POST", "/v1/completions", raw=big)[0] == 413
    status, text = call(server, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 10**6})
    assert status == 400 and "max_tokens" in text
    assert call(server, "POST", "/v1/completions", raw=b"{not json")[0] == 400


def test_greedy_text_is_the_engines(server: ModelHttpServer, engine: Engine) -> None:
    prompt = "def add(a, b):\n"
    answer = complete(server, prompt=prompt, max_tokens=12)
    assert answer["choices"][0]["text"] == reference(engine, prompt, 12)
    assert answer["usage"]["completion_tokens"] == 12
    assert answer["choices"][0]["finish_reason"] == "length"


def test_stream_matches_and_stop_strings_end_it(server: ModelHttpServer) -> None:
    prompt = "for i in range(10):\n"
    whole = complete(server, prompt=prompt, max_tokens=10)["choices"][0]["text"]
    status, text = call(
        server,
        "POST",
        "/v1/completions",
        {"prompt": prompt, "max_tokens": 10, "temperature": 0, "stream": True},
    )
    assert status == 200
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    pieces = [json.loads(e)["choices"][0]["text"] for e in events[:-1]]
    assert "".join(pieces) == whole
    stop = whole.strip()[:3]
    stopped = complete(server, prompt=prompt, max_tokens=10, stop=[stop])["choices"][0]
    assert stopped["text"] == whole[: whole.index(stop)]
    assert stopped["finish_reason"] == "stop"


def test_each_client_keeps_its_own_cache(server: ModelHttpServer) -> None:
    first = complete(server, prompt="import os\nimport sys\n", max_tokens=2, user="ann")
    again = complete(server, prompt="import os\nimport sys\nimport re\n", max_tokens=2, user="ann")
    assert again["nexttoken"]["slot"] == first["nexttoken"]["slot"]
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    # Two more clients with two slots: ann's slot goes to one of them, wiped, under a new lease.
    bob = complete(server, TOKENS[1], prompt="import os\nimport sys\n", max_tokens=2)
    carl = complete(server, prompt="import os\nimport sys\n", max_tokens=2, user="carl")
    leases = {(a["nexttoken"]["slot"], a["nexttoken"]["lease"]) for a in (first, bob, carl)}
    assert len(leases) == 3
    for answer in (bob, carl):
        assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_a_client_asking_again_gets_its_suggestion_from_the_cache(server: ModelHttpServer) -> None:
    prompt = "class Point:\n    def __init__(self, x, y):\n"
    first = complete(server, prompt=prompt, max_tokens=12, user="dana")
    again = complete(server, prompt=prompt, max_tokens=12, user="dana")
    assert again["choices"][0]["text"] == first["choices"][0]["text"]
    assert first["nexttoken"]["continued_tokens"] == 0
    # The cache kept the prompt and 11 of the 12 tokens, picked again from their kept rows.
    assert again["nexttoken"]["continued_tokens"] == 11


def test_concurrent_clients_get_their_own_answers(server: ModelHttpServer, engine: Engine) -> None:
    prompts = {
        f"dev{i}": f"# user {name}\nname = '{name}'\nassert name == '"
        for i, name in enumerate(["Ada", "Linus", "Grace", "Guido"])
    }
    expected = {client: reference(engine, prompt, 4) for client, prompt in prompts.items()}
    assert len(set(expected.values())) == len(expected), "the prompts must have distinct answers"
    answers: dict[str, list[dict[str, Any]]] = {client: [] for client in prompts}

    def developer(client: str) -> None:
        for _ in range(2):
            answers[client].append(
                complete(server, prompt=prompts[client], max_tokens=4, user=client)
            )

    threads = [threading.Thread(target=developer, args=(c,)) for c in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    owners: dict[tuple[int, int], str] = {}
    for client, got in answers.items():
        assert [a["choices"][0]["text"] for a in got] == [expected[client]] * 2
        for answer in got:
            lease = (answer["nexttoken"]["slot"], answer["nexttoken"]["lease"])
            assert owners.setdefault(lease, client) == client, "a cache served two clients"


def test_metrics_in_prometheus_text(server: ModelHttpServer) -> None:
    complete(server, prompt="x = 1\n", max_tokens=1)
    status, text = call(server, "GET", "/metrics", token=None)
    assert status == 200
    for family in (
        "nexttoken_request_duration_seconds_bucket",
        "nexttoken_time_to_first_token_seconds_count",
        "nexttoken_decode_tokens_per_second",
        "nexttoken_queue_depth",
        "nexttoken_prompt_tokens_reused_total",
        'nexttoken_requests_total{code="200"}',
    ):
        assert family in text
    assert text.count("# TYPE nexttoken_requests_total counter") == 1


def _job(client: str) -> CompletionJob:
    return CompletionJob(client, (1,), 1, SamplingParams(), ())


def test_fair_queue_round_robin_and_bounds() -> None:
    fair = FairQueue(capacity=5, per_client=3)
    for client in ("a", "a", "a", "b", "c"):
        fair.put(_job(client))
    with pytest.raises(QueueFull):
        fair.put(_job("d"))
    order = []
    while len(fair):
        job = fair.get()
        assert job is not None
        order.append(job.client)
    assert order == ["a", "b", "c", "a", "a"]
    fair = FairQueue(capacity=5, per_client=1)
    fair.put(_job("a"))
    with pytest.raises(QueueFull):
        fair.put(_job("a"))


def test_text_stream_holds_back_a_stop_string_across_tokens() -> None:
    pieces = ["ab", "c<", "/s", ">tail"]
    stream = TextStream(lambda ids: "".join(pieces[: len(ids)]), ("</s>",))
    sent = [stream.add(i) for i in range(len(pieces))]
    assert "".join(sent) == "abc" and stream.stopped
