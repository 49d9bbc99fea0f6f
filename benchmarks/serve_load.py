"""Load test of `nexttoken serve-model` on loopback: 1, 4 and 16 developers typing at once.

Starts `nexttoken serve-model` as a subprocess with one API token per developer. Each
developer types the last line of a file of their own, one character per request (a streamed
completion, `max_tokens` small), and sends the next keystroke when the answer is in (closed
loop, no think time: the worst case for the queue). Before the timed phases, every
keystroke's prompt is answered alone, as the reference (twice: see below). Checked in every
phase: no request lost or refused, every answer equal to its prompt's reference (an answer
delivered to the wrong client would differ: the prompts carry each developer's own names),
and no KV-cache slot lease (slot, lease) seen by two developers. Reported per phase: p50/p99
latency, time to first token, requests/s and generated tokens/s.

Run: python benchmarks/serve_load.py [--clients 1,4,16] [--keystrokes 4] [--max-tokens 6]
Bounded: at most clients x keystrokes requests per phase and --deadline-s seconds overall.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lsp_server.bench.figures import percentile

NAMES = [
    "ada",
    "lovelace",
    "grace",
    "hopper",
    "alan",
    "turing",
    "edsger",
    "dijkstra",
    "barbara",
    "liskov",
    "donald",
    "knuth",
    "margaret",
    "hamilton",
    "ken",
    "thompson",
    "dennis",
    "ritchie",
    "guido",
    "rossum",
    "linus",
    "torvalds",
    "bjarne",
    "stroustrup",
    "frances",
    "allen",
    "john",
    "backus",
    "niklaus",
    "wirth",
    "tony",
    "hoare",
]


@dataclass(frozen=True)
class Answer:
    client: int
    prompt: str
    text: str
    slot: tuple[int, int]
    latency_s: float
    first_s: float
    tokens: int


def developer_prompts(client: int, keystrokes: int) -> list[str]:
    """The prompts of one developer's keystrokes: a file only this developer has."""
    first, last = NAMES[(2 * client) % len(NAMES)], NAMES[(2 * client + 1) % len(NAMES)]
    ident = f"{first}_{last}_{client}"
    head = (
        f"# profile of {first.title()} {last.title()}, developer {client}\n"
        f"class {first.title()}{last.title()}Profile:\n"
        f"    name = '{first} {last}'\n"
        f"    ident = '{ident}'\n\n"
        f"    def describe(self) -> str:\n"
    )
    line = f"        return self.{'ident' if client % 2 else 'name'}"
    start = len(line) - keystrokes
    return [head + line[: start + k + 1] for k in range(keystrokes)]


def complete(port: int, token: str, prompt: str, max_tokens: int) -> tuple[str, dict, float, int]:
    """Streamed completion: text, the final event's `nexttoken` block, time to first piece."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    conn.request(
        "POST",
        "/v1/completions",
        body=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
    text, info, first, tokens = "", {}, 0.0, 0
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        piece = event["choices"][0]["text"]
        if piece and not first:
            first = time.perf_counter() - started
        text += piece
        if "nexttoken" in event:
            info = event["nexttoken"]
            tokens = event["usage"]["completion_tokens"]
    conn.close()
    return text, info, first, tokens


def run_phase(
    port: int, tokens: list[str], prompts: list[list[str]], max_tokens: int
) -> tuple[list[Answer], list[str], float]:
    answers: list[Answer] = []
    errors: list[str] = []
    lock = threading.Lock()

    def developer(client: int) -> None:
        for prompt in prompts[client]:
            t0 = time.perf_counter()
            try:
                text, info, first, count = complete(port, tokens[client], prompt, max_tokens)
            except Exception as exc:  # counted as lost, reported
                with lock:
                    errors.append(f"client {client}: {exc}")
                continue
            answer = Answer(
                client,
                prompt,
                text,
                (info.get("slot", -1), info.get("lease", -1)),
                time.perf_counter() - t0,
                first,
                count,
            )
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=developer, args=(c,)) for c in range(len(prompts))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, errors, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--keystrokes", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--deadline-s", type=float, default=900)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    phases = [int(n) for n in args.clients.split(",")]
    most = max(phases)
    tokens = [f"load-test-dev-{i}-{os.urandom(6).hex()}" for i in range(most)]
    env = {**os.environ, "NEXTTOKEN_API_TOKENS": ",".join(tokens)}
    server = subprocess.Popen(
        [sys.executable, "-m", "lsp_server", "serve-model", "--port", "0"]
        + ["--slots", str(most), "--queue-size", str(4 * most), "--threads", str(args.threads)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    deadline = time.monotonic() + args.deadline_s
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()  # "serving NAME on http://127.0.0.1:PORT/v1"
        port = int(banner.rsplit(":", 1)[1].split("/")[0])
        prompts = [developer_prompts(c, args.keystrokes) for c in range(most)]
        # The reference: every prompt one request at a time, in two passes; the second pass
        # finds each client's cache as every phase does (after that client's previous
        # keystroke; the first keystroke after the last one). The same cache state matters:
        # a prompt prefilled in one piece and one whose last token is decoded alone differ
        # in their logits' last digits, enough to flip a near-tie at a mid-word cursor.
        reference: dict[str, str] = {}
        for _ in range(2):
            for c in range(most):
                for prompt in prompts[c]:
                    reference[prompt] = complete(port, tokens[c], prompt, args.max_tokens)[0]
        distinct = len(set(reference.values()))
        print(f"reference: {len(reference)} prompts, {distinct} distinct answers")
        results = []
        for n in phases:
            if time.monotonic() > deadline:
                print(f"deadline reached before the {n}-client phase")
                break
            answers, errors, wall = run_phase(port, tokens, prompts[:n], args.max_tokens)
            wrong = [a for a in answers if a.text != reference[a.prompt]]
            owners: dict[tuple[int, int], set[int]] = {}
            for a in answers:
                owners.setdefault(a.slot, set()).add(a.client)
            shared = [lease for lease, clients in owners.items() if len(clients) > 1]
            latencies = [a.latency_s * 1000 for a in answers]
            firsts = [a.first_s * 1000 for a in answers if a.first_s]
            row = {
                "clients": n,
                "requests": n * args.keystrokes,
                "answered": len(answers),
                "lost": len(errors),
                "wrong_answer": len(wrong),
                "shared_slot_leases": len(shared),
                "p50_ms": round(percentile(latencies, 50)),
                "p99_ms": round(percentile(latencies, 99)),
                "ttft_p50_ms": round(statistics.median(firsts)) if firsts else None,
                "requests_per_s": round(len(answers) / wall, 2),
                "tokens_per_s": round(sum(a.tokens for a in answers) / wall, 1),
            }
            results.append(row)
            print(json.dumps(row))
            for error in errors[:3]:
                print("  lost:", error)
            for a in wrong[:3]:
                print(f"  wrong: client {a.client} got {a.text!r}, want {reference[a.prompt]!r}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        ok = all(r["lost"] == r["wrong_answer"] == r["shared_slot_leases"] == 0 for r in results)
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
