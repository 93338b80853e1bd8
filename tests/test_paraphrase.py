"""Paraphrases from a language model: the real google-genai and openai clients against a
loopback server speaking their REST protocols."""

from __future__ import annotations

import json
import logging

import pytest

from llmserver import LLMServer
from signpose import paraphrase
from signpose.config import with_defaults

KEYS = {"SIGNPOSE_TEST_KEY_A": "key-aaaa-secret", "SIGNPOSE_TEST_KEY_B": "key-bbbb-secret"}


@pytest.fixture
def llm():
    with LLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


def text_cfg(server: LLMServer, provider: str, tmp_path, **changes) -> dict:
    base = server.url if provider == "gemini" else f"{server.url}/v1"
    cfg = {"provider": provider, "model": "loopback-model", "base_url": base,
           "api_key_env": list(KEYS), "backoff_s": 0.01, "timeout_s": 2, "n": 3,
           "cache": str(tmp_path / "cache.json"), **changes}  # fmt: skip
    return with_defaults(cfg, "text")


def run(server, provider, tmp_path, texts, **changes) -> paraphrase.Result:
    cfg = text_cfg(server, provider, tmp_path, **changes)
    return paraphrase.variations(texts, cfg, cfg["cache"])


def answer(*items: str) -> str:
    return json.dumps(list(items))


PROVIDERS = pytest.mark.parametrize("provider", ["gemini", "openai"])


@PROVIDERS
def test_paraphrases_are_cleaned_and_cached(llm, provider, tmp_path, caplog):
    items = ("Phone me later.", " phone me  later. ", "", "x" * 600, "Ring me later.",
             "Call me later.", "Later, call me.", "Fourth one.")  # fmt: skip
    fenced = "```json\n" + answer(*items) + "\n```"
    llm.reply = lambda key, prompt: (200, fenced, 0)
    caplog.set_level(logging.DEBUG)
    result = run(llm, provider, tmp_path, ["Call me later.", "Call me later."])
    # original first; duplicates (case, spaces, the original), empties, over-long dropped; n=3
    got = result.variations["Call me later."]
    assert got == ["Call me later.", "Phone me later.", "Ring me later.", "Later, call me."]
    assert result.failed == {}
    assert len(llm.requests) == 1 and llm.requests[0][:2] == (provider, KEYS["SIGNPOSE_TEST_KEY_A"])
    assert "Call me later." in llm.requests[0][2] and "3" in llm.requests[0][2]
    cache = (tmp_path / "cache.json").read_text()
    assert "Ring me later." in cache
    for secret in KEYS.values():  # never in the cache, the results or a log line
        assert secret not in cache and secret not in caplog.text
        assert secret not in json.dumps(result.variations)


@PROVIDERS
def test_a_rate_limit_rotates_to_the_next_key(llm, provider, tmp_path):
    def reply(key, prompt):
        if key == KEYS["SIGNPOSE_TEST_KEY_A"]:
            return 429, "quota exceeded", 0
        return 200, answer("Phone me later."), 0

    llm.reply = reply
    result = run(llm, provider, tmp_path, ["Call me later."])
    assert result.variations["Call me later."] == ["Call me later.", "Phone me later."]
    assert [r[1] for r in llm.requests] == [
        KEYS["SIGNPOSE_TEST_KEY_A"],
        KEYS["SIGNPOSE_TEST_KEY_B"],
    ]


@PROVIDERS
def test_server_errors_are_retried_then_the_original_alone_with_the_reason(llm, provider, tmp_path):
    llm.reply = lambda key, prompt: (500, "internal error", 0)
    result = run(llm, provider, tmp_path, ["Rock on!"], max_retries=2)
    assert result.variations == {"Rock on!": ["Rock on!"]}
    assert "HTTP 500" in result.failed["Rock on!"]
    assert len(llm.requests) == 3  # the first try and two retries
    assert not (tmp_path / "cache.json").exists()  # a failure is asked again next run


@PROVIDERS
def test_a_refused_key_is_not_asked_again(llm, provider, tmp_path):
    llm.reply = lambda key, prompt: (401, "API key not valid", 0)
    result = run(llm, provider, tmp_path, ["Rock on!"])
    assert result.variations == {"Rock on!": ["Rock on!"]}
    assert "HTTP 401" in result.failed["Rock on!"] and len(llm.requests) == 1


@PROVIDERS
def test_a_500_then_success_is_an_answer(llm, provider, tmp_path):
    llm.reply = lambda key, prompt: (500, "boom", 0) if len(llm.requests) == 1 else (
        200, answer("Rock!"), 0)  # fmt: skip
    assert run(llm, provider, tmp_path, ["Rock on!"]).variations["Rock on!"] == [
        "Rock on!",
        "Rock!",
    ]


@PROVIDERS
def test_a_timeout_is_retried(llm, provider, tmp_path):
    llm.reply = lambda key, prompt: (200, answer("late"), 3 if len(llm.requests) == 1 else 0)
    result = run(llm, provider, tmp_path, ["Rock on!"], timeout_s=0.5)
    assert result.variations["Rock on!"] == ["Rock on!", "late"]
    assert len(llm.requests) == 2
    llm.reply = lambda key, prompt: (200, answer("late"), 3)
    result = run(llm, provider, tmp_path, ["Too slow"], timeout_s=0.5, max_retries=1)
    assert result.variations["Too slow"] == ["Too slow"]
    assert "Timeout" in result.failed["Too slow"]


@PROVIDERS
@pytest.mark.parametrize(
    "output, reason",
    [("Sure! Here are some paraphrases: ...", "malformed answer: not JSON"),
     ('{"paraphrases": ["a"]}', "malformed answer: not a JSON list of strings"),
     ('["a", 3]', "malformed answer: not a JSON list of strings")],
)  # fmt: skip
def test_malformed_output_is_retried_then_recorded(llm, provider, tmp_path, output, reason):
    llm.reply = lambda key, prompt: (200, output, 0)
    result = run(llm, provider, tmp_path, ["Rock on!"], max_retries=1)
    assert result.variations == {"Rock on!": ["Rock on!"]}
    assert result.failed == {"Rock on!": reason}
    assert len(llm.requests) == 2


@PROVIDERS
def test_an_interrupted_run_resumes_from_the_cache(llm, provider, tmp_path):
    texts = ["One.", "Two.", "Three."]
    llm.reply = lambda key, prompt: (500, "down", 0) if "Three." in prompt else (
        200, answer("So: " + prompt.rsplit(" ", 1)[-1]), 0)  # fmt: skip
    first = run(llm, provider, tmp_path, texts, max_retries=0, concurrency=1)
    assert list(first.failed) == ["Three."]
    cached = json.loads((tmp_path / "cache.json").read_text())
    assert sorted(e["text"] for e in cached.values()) == ["One.", "Two."]  # kept as they came
    llm.requests.clear()
    llm.reply = lambda key, prompt: (200, answer("3!"), 0)
    second = run(llm, provider, tmp_path, [*texts, "Four."])
    assert sorted(r[2].rsplit(" ", 1)[-1] for r in llm.requests) == ["Four.", "Three."]
    assert second.variations["One."] == ["One.", "So: One."] and second.failed == {}
    llm.requests.clear()
    run(llm, provider, tmp_path, texts)  # a rerun asks nothing
    assert llm.requests == []
    run(llm, provider, tmp_path, ["One."], model="another-model")  # the model is in the key
    assert len(llm.requests) == 1


def test_at_most_concurrency_requests_are_in_flight(llm, tmp_path):
    import threading

    active, peak, lock = [0], [0], threading.Lock()

    def reply(key, prompt):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        import time

        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return 200, answer("x"), 0

    llm.reply = reply
    run(llm, "openai", tmp_path, [f"text {i}" for i in range(8)], concurrency=2)
    assert peak[0] == 2 and len(llm.requests) == 8


def test_provider_none_asks_nothing_and_keeps_every_text(llm, tmp_path):
    result = run(llm, "none", tmp_path, ["a", "b", "a"])
    assert result.variations == {"a": ["a"], "b": ["b"]} and llm.requests == []


def test_a_missing_key_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.delenv("SIGNPOSE_TEST_KEY_B")
    cfg = with_defaults({"provider": "gemini", "model": "m", "api_key_env": list(KEYS)}, "text")
    with pytest.raises(paraphrase.Unusable) as err:
        paraphrase.check(cfg)
    assert str(err.value) == ("text.api_key_env: environment variable SIGNPOSE_TEST_KEY_B is not "
                              "set (text.provider gemini needs its API key there)")  # fmt: skip
    paraphrase.check(with_defaults({"provider": "none"}, "text"))  # nothing needed offline
