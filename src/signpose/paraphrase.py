"""Paraphrases of every label text from a language model, cached, for sentence-level datasets.

`variations(texts, cfg, cache_path)` gives, for every distinct text, the original first and up
to `n` paraphrases, de-duplicated, plus the reason for each text that got none. Providers sit
behind one small interface, `Provider.complete(prompt, key) -> str`:
- `none`: nothing is asked; every text is its own only variation (the workflow stays offline);
- `gemini`: the google-genai SDK (`Client.models.generate_content`);
- `openai`: any OpenAI-compatible endpoint (the openai SDK's chat completions with `base_url`).

Keys come only from the environment variables the config names, several rotated on a rate limit
(429 / RESOURCE_EXHAUSTED); they are never written to a result, the cache or a log line (a
failure is recorded by its kind and status code, never by the SDK's message). Retries back off
exponentially with full jitter; at most `concurrency` requests are in flight. The cache is one
JSON file, keyed by model, prompt, temperature and n, rewritten atomically after every answer,
so an interrupted run keeps what it got and a rerun asks only for texts it has not seen.

Model output is untrusted: only a JSON list of strings is accepted (inside a code fence or not);
empties, duplicates (ignoring case and surrounding space) and strings over `max_chars` are
dropped; anything else is retried, and in the end the original alone is kept with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from signpose.files import write_text_atomic

log = logging.getLogger("signpose")

MAX_BACKOFF_S = 120  # the longest wait before one retry, however many came before
FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.S)


class Retryable(Exception):
    """A failure worth asking again: a server error, a timeout, a malformed answer."""


class RateLimited(Retryable):
    """429 / RESOURCE_EXHAUSTED: the next key is tried, after a back-off."""


class Fatal(Exception):
    """A failure asking again will not fix (a refused key, a bad request, an unknown model)."""


class Provider(Protocol):
    def complete(self, prompt: str, key: str) -> str:
        """The model's text answer to `prompt`; raises RateLimited, Retryable or Fatal."""


class Unusable(ValueError):
    """The provider cannot be asked (a key's variable unset, no model): one line naming why."""


def api_keys(cfg: Mapping[str, Any]) -> list[str]:
    """The keys named by `text.api_key_env`, in order; every name must be set and non-empty.
    An OpenAI-compatible local server needs none: an empty list gives one placeholder."""
    keys = []
    for name in cfg["api_key_env"]:
        value = os.environ.get(name, "")
        if not value.strip():
            raise Unusable(
                f"text.api_key_env: environment variable {name} is not set "
                f"(text.provider {cfg['provider']} needs its API key there)"
            )
        keys.append(value.strip())
    if not keys and cfg["provider"] == "gemini":
        raise Unusable("text.api_key_env: name the environment variable(s) of the Gemini key")
    return keys or ["no-key"]


def check(cfg: Mapping[str, Any]) -> None:
    """Stop the run at start when the provider cannot be used (a key missing, no model)."""
    if cfg["provider"] == "none":
        return
    if not cfg["model"]:
        raise Unusable(f"text.model: required with text.provider {cfg['provider']}")
    api_keys(cfg)


def make_provider(cfg: Mapping[str, Any]) -> Provider:
    if cfg["provider"] == "gemini":
        return GeminiProvider(cfg)
    return OpenAIProvider(cfg)


class SDKClients:
    """One SDK client per API key, made on first use, shared by the request threads."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.cfg = cfg
        self.clients: dict[str, Any] = {}
        self.lock = threading.Lock()

    def client(self, key: str):
        with self.lock:
            if key not in self.clients:
                self.clients[key] = self.make_client(key)
            return self.clients[key]

    def make_client(self, key: str) -> Any:
        raise NotImplementedError


class GeminiProvider(SDKClients):
    def make_client(self, key: str) -> Any:
        from google import genai
        from google.genai import types

        timeout_ms = int(self.cfg["timeout_s"] * 1000)
        options = types.HttpOptions(base_url=self.cfg["base_url"], timeout=timeout_ms)
        return genai.Client(api_key=key, http_options=options)

    def complete(self, prompt: str, key: str) -> str:
        from google.genai import errors, types

        config = types.GenerateContentConfig(temperature=self.cfg["temperature"])
        try:
            response = self.client(key).models.generate_content(
                model=self.cfg["model"], contents=prompt, config=config
            )
        except errors.APIError as e:
            raise classify(e.code, type(e).__name__) from None
        except Exception as e:  # the transport's (httpx or httpx2) timeouts and refusals
            if not is_transport_error(e):
                raise
            raise Retryable(type(e).__name__) from None
        return response.text or ""


class OpenAIProvider(SDKClients):
    def make_client(self, key: str) -> Any:
        import openai

        # retries are ours: key rotation and one back-off policy for every provider
        return openai.OpenAI(api_key=key, base_url=self.cfg["base_url"],
                             timeout=self.cfg["timeout_s"], max_retries=0)  # fmt: skip

    def complete(self, prompt: str, key: str) -> str:
        import openai

        try:
            response = self.client(key).chat.completions.create(
                model=self.cfg["model"],
                messages=[{"role": "user", "content": prompt}],
                temperature=self.cfg["temperature"],
            )
        except openai.APIStatusError as e:
            raise classify(e.status_code, type(e).__name__) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as e:
            raise Retryable(type(e).__name__) from None
        if not response.choices:
            raise Retryable("no choices in the answer")
        return response.choices[0].message.content or ""


def classify(status: int | None, kind: str) -> Exception:
    """The SDK's error as one of ours, by HTTP status; the message (which may quote the
    request) is never kept."""
    reason = f"{kind} (HTTP {status})"
    if status == 429:
        return RateLimited(reason)
    if status is None or status >= 500 or status == 408:
        return Retryable(reason)
    return Fatal(reason)


def is_transport_error(e: Exception) -> bool:
    """httpx's and httpx2's timeouts, refused connections and broken responses (all under
    TransportError): google-genai uses whichever is installed, so they are told by name."""
    return any(c.__name__ == "TransportError" for c in type(e).__mro__)


def parse(answer: str, original: str, n: int, max_chars: int) -> list[str]:
    """The accepted paraphrases in `answer`: a JSON list of strings, perhaps fenced. Raises
    Retryable("malformed ...") for anything else."""
    fenced = FENCE.match(answer)
    text = fenced.group(1) if fenced else answer
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        raise Retryable("malformed answer: not JSON") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise Retryable("malformed answer: not a JSON list of strings")
    return dedupe([original, *items], max_chars)[1 : n + 1]


def dedupe(texts: Iterable[str], max_chars: int) -> list[str]:
    """Space-normalised, non-empty, at most `max_chars`, the first of each case-insensitive
    duplicate; the first text (the original) is always kept, verbatim."""
    seen: set[str] = set()
    out = []
    for i, raw in enumerate(texts):
        text = " ".join(raw.split())
        if i and (not text or len(text) > max_chars or "\x00" in text):
            continue
        if text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text if i else raw)
    return out


@dataclass
class Result:
    variations: dict[str, list[str]]  # text -> [original, paraphrases...]
    failed: dict[str, str]  # text -> why it has no paraphrases


def cache_key(model: str, prompt: str, temperature: float, n: int) -> str:
    # n too: a prompt without {n} asks the same whatever n is, but keeps only n answers
    return hashlib.sha256(json.dumps([model, prompt, temperature, n]).encode()).hexdigest()


class Cache:
    """One JSON file of answers, rewritten atomically after each one."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()
        try:
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.entries = {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            # a cache is only a saving: a damaged one is set aside, never fatal
            log.warning("%s: not a readable cache, starting a new one", self.path)
            self.entries = {}

    def get(self, key: str) -> list[str] | None:
        entry = self.entries.get(key)
        return entry["variations"] if isinstance(entry, dict) else None

    def put(self, key: str, text: str, model: str, variations: list[str]) -> None:
        with self.lock:
            self.entries[key] = {"model": model, "text": text, "variations": variations}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(self.entries, ensure_ascii=False, indent=1))


def variations(
    texts: Iterable[str],
    cfg: Mapping[str, Any],
    cache_path: str | os.PathLike,
) -> Result:
    """Every distinct text with its paraphrases; see the module docstring."""
    unique = list(dict.fromkeys(texts))
    if cfg["provider"] == "none" or cfg["n"] == 0:
        return Result({t: [t] for t in unique}, {})
    keys = KeyRing(api_keys(cfg))
    provider = make_provider(cfg)
    cache = Cache(cache_path)
    out: dict[str, list[str]] = {}
    failed: dict[str, str] = {}

    def one(text: str) -> None:
        prompt = cfg["prompt"].replace("{n}", str(cfg["n"])).replace("{text}", text)
        key = cache_key(cfg["model"], prompt, cfg["temperature"], cfg["n"])
        cached = cache.get(key)
        if cached is not None:
            out[text] = [text, *cached]
            return
        try:
            got = ask(provider, keys, prompt, text, cfg)
        except (Retryable, Fatal) as e:
            failed[text] = str(e)
            out[text] = [text]
            log.warning("paraphrases of %r: none (%s); the original alone", text[:80], e)
            return
        cache.put(key, text, cfg["model"], got)
        out[text] = [text, *got]

    with ThreadPoolExecutor(max_workers=cfg["concurrency"]) as pool:
        list(pool.map(one, unique))  # list(): a worker's unexpected error surfaces here
    return Result({t: out[t] for t in unique}, {t: failed[t] for t in unique if t in failed})


class KeyRing:
    """The keys in turn: a rate limit moves every worker on to the next one."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.index = 0
        self.lock = threading.Lock()

    def current(self) -> str:
        with self.lock:
            return self.keys[self.index]

    def rotate(self, used: str) -> None:
        with self.lock:
            if self.keys[self.index] == used:  # another worker may have rotated already
                self.index = (self.index + 1) % len(self.keys)


def ask(provider: Provider, keys: KeyRing, prompt: str, text: str, cfg: Mapping[str, Any]):
    """The accepted paraphrases of one text, retrying with back-off; raises the last error."""
    attempts = cfg["max_retries"] + 1
    for attempt in range(attempts):
        key = keys.current()
        try:
            return parse(provider.complete(prompt, key), text, cfg["n"], cfg["max_chars"])
        except RateLimited as e:
            keys.rotate(key)
            error: Exception = e
        except Retryable as e:
            error = e
        if attempt + 1 < attempts:  # full jitter: waiting workers do not retry in step
            time.sleep(random.uniform(0, min(MAX_BACKOFF_S, cfg["backoff_s"] * 2**attempt)))
    raise error


def variations_job(dataset_cfg: Mapping[str, Any], cfg: Mapping[str, Any], target: str,
                   cache_path: str) -> None:  # fmt: skip
    """text/variations.json for every distinct label of the dataset."""
    from signpose import metadata

    texts = [i.gloss for i in metadata.load(dataset_cfg).instances.values()]
    result = variations(texts, cfg, cfg["cache"] or cache_path)
    doc = {"provider": cfg["provider"], "model": cfg["model"],
           "variations": result.variations, "failed": result.failed}  # fmt: skip
    write_text_atomic(target, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    asked = sum(len(v) > 1 for v in result.variations.values())
    log.info("%d texts, %d with paraphrases, %d without (see failed)",
             len(result.variations), asked, len(result.failed))  # fmt: skip


def read_variations(path: str | os.PathLike) -> dict[str, list[str]]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)["variations"]
