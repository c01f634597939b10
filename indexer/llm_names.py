"""Optional feature names from an OpenAI-compatible chat endpoint (POST {base_url}/chat/completions), with a
JSON cache keyed by a hash of the request, so a rebuild asks only about features whose examples changed.

The model sees the titles (truncated) of a feature's strongest-firing documents and of random documents where it
does not fire, and is asked for a 2-5 word name (the reply's first 5 words are kept; a one-word reply is kept too).
Any failure (network, HTTP status, malformed reply) keeps the TF-IDF name for that feature with a logged warning;
after `max_failures` failures in a row the endpoint is not asked again in this run. Trust of an LLM name is
recomputed with the same held-out AUROC as TF-IDF names, from the name's own words and word pairs that occur in the
corpus vocabulary (unit weights), so it stays comparable: a name whose words never occur in the abstracts gets 0.5.
Uses urllib only (no client library)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from indexer.codes import InvertedLists
from indexer.config import check_llm
from indexer.errors import InvalidArgument
from indexer.names import MAX_NAME_WORDS, FeatureNames, NamingConfig, feature_trust
from indexer.terms import TermMatrix, build_term_matrix

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You name features of a sparse autoencoder trained on embeddings of scientific paper abstracts. "
    "Given papers where a feature fires strongly and papers where it does not fire, reply with only a "
    "2-5 word name for the topic the first list shares and the second list lacks. No quotes, no explanation."
)
CACHE_VERSION = 1
_SAVE_EVERY = 50


@dataclass
class LlmConfig:
    """Where and how to ask an OpenAI-compatible chat endpoint for feature names."""

    base_url: str
    """Endpoint base, e.g. "https://api.openai.com/v1"; requests go to {base_url}/chat/completions."""
    model: str
    """Model name sent in each request."""
    api_key: str = ""
    """Bearer token; empty sends no Authorization header (local servers)."""
    cache_path: Path | None = None
    """JSON file of earlier answers keyed by request hash; None disables caching."""
    top_examples: int = 10
    """Strongest-firing documents shown per feature."""
    contrast_examples: int = 5
    """Random non-firing documents shown per feature as counter-examples."""
    title_chars: int = 150
    """Each example is its title (the text before the first ". "), cut to this many characters."""
    timeout_s: float = 30.0
    """Seconds to wait for one reply."""
    max_tokens: int = 24
    """Reply length limit sent to the endpoint."""
    temperature: float = 0.0
    """Sampling temperature sent to the endpoint (0: the same examples give the same name)."""
    max_failures: int = 3
    """Failed requests in a row after which the endpoint is not asked again in this run."""
    seed: int = 0
    """Seed of the counter-example sampling (fixed so the prompts, and so the cache keys, are stable)."""

    def __post_init__(self) -> None:
        if not self.base_url:
            raise InvalidArgument("the LLM endpoint is empty")
        check_llm(self.base_url, self.model)
        if self.top_examples < 1 or self.contrast_examples < 0:
            raise InvalidArgument("need top_examples >= 1 and contrast_examples >= 0")
        if self.title_chars < 10 or self.max_tokens < 1 or self.max_failures < 1:
            raise InvalidArgument("title_chars must be >= 10, max_tokens and max_failures >= 1")
        if not self.timeout_s > 0:
            raise InvalidArgument(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.cache_path is not None:
            self.cache_path = Path(self.cache_path)


class LlmError(Exception):
    """One request failed; the caller falls back to the TF-IDF name."""


def short_title(text: str, limit: int) -> str:
    """The title part of `title + ". " + abstract`, cut to `limit` characters on a word boundary."""
    title = " ".join(text.split(". ", 1)[0].split())
    if len(title) <= limit:
        return title
    return title[:limit].rsplit(" ", 1)[0] + "..."


def build_messages(top: list[str], contrast: list[str]) -> list[dict[str, str]]:
    """Chat messages asking for a name from example titles."""
    lines = ["Papers where the feature fires most strongly:"] + [f"- {t}" for t in top]
    if contrast:
        lines += ["", "Papers where it does not fire:"] + [f"- {t}" for t in contrast]
    lines += ["", "Name (2-5 words):"]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


def request_key(cfg: LlmConfig, messages: list[dict[str, str]]) -> str:
    """sha256 of everything that shapes the answer: model, messages, temperature, token limit."""
    blob = json.dumps(
        {"model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def clean_reply(text: str) -> str | None:
    """A 1-5 word name from a model reply, or None when nothing usable is left."""
    text = re.sub(r"<think>.*?</think>", " ", text, flags=re.DOTALL)
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*#>]+\s*)?(?:feature\s+)?name\s*:\s*", "", line.strip(), flags=re.IGNORECASE)
        line = line.strip(" \t\"'`*_.:;")
        if re.search(r"[^\W\d_]", line):
            return " ".join(line.split()[:MAX_NAME_WORDS]).rstrip(",;:")
    return None


def chat_name(cfg: LlmConfig, messages: list[dict[str, str]]) -> str:
    """Ask the endpoint once; the cleaned name, or LlmError with the reason."""
    body = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
    headers = {"Content-Type": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    url = cfg.base_url.rstrip("/") + "/chat/completions"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
            payload = json.loads(resp.read().decode("utf-8"))
        content = payload["choices"][0]["message"]["content"]
    except urllib.error.HTTPError as e:
        raise LlmError(f"HTTP {e.code} from {url}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise LlmError(f"cannot reach {url}: {e}") from e
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise LlmError(f"malformed reply from {url}: {e!r}") from e
    name = clean_reply(content) if isinstance(content, str) else None
    if name is None:
        raise LlmError(f"reply from {url} holds no name: {str(content)[:80]!r}")
    return name


def load_cache(path: Path | None) -> dict[str, str]:
    """Cached names by request key; empty (with a warning) when the file is missing or unreadable."""
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != CACHE_VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        return {str(k): str(v) for k, v in data["names"].items()}
    except (OSError, ValueError, KeyError, AttributeError) as e:
        log.warning("ignoring unreadable LLM name cache %s (%s)", path, e)
        return {}


def save_cache(path: Path | None, names: dict[str, str]) -> None:
    """Write the cache atomically (temp file + rename), so a crash never leaves half a file."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": CACHE_VERSION, "names": names}, indent=0, sort_keys=True))
    os.replace(tmp, path)


def feature_messages(texts: list[str], inv: InvertedLists, feature: int, cfg: LlmConfig) -> list[dict[str, str]]:
    """The chat messages for one feature: its top documents' titles and random non-firing ones."""
    docs, _ = inv.postings(feature)
    top = [short_title(texts[d], cfg.title_chars) for d in docs[: cfg.top_examples]]
    rng = np.random.default_rng([cfg.seed, feature])
    firing = set(docs.tolist())
    contrast: list[str] = []
    if cfg.contrast_examples and len(firing) < len(texts):
        # Draws with rejection: a permutation of the corpus per feature would cost O(n_docs) each time.
        for d in dict.fromkeys(rng.integers(0, len(texts), size=8 * cfg.contrast_examples + 64).tolist()):
            if d not in firing:
                contrast.append(short_title(texts[d], cfg.title_chars))
            if len(contrast) == cfg.contrast_examples:
                break
    return build_messages(top, contrast)


def llm_name_features(
    texts: list[str],
    inv: InvertedLists,
    base: FeatureNames,
    cfg: LlmConfig,
    naming: NamingConfig | None = None,
    terms: TermMatrix | None = None,
    features: Sequence[int] | None = None,
) -> FeatureNames:
    """`base` with names of live and dense features (or only `features`) replaced by the endpoint's answers
    and their trust recomputed; features the endpoint fails on keep their TF-IDF name and trust."""
    naming = naming or NamingConfig()
    todo = [f for f in (features if features is not None else range(inv.n_features)) if base.status[f] != "dead"]
    cache = load_cache(cfg.cache_path)
    names = list(base.names)
    trust = base.trust.copy()
    renamed: list[int] = []
    failures = asked = 0
    try:
        for f in todo:
            messages = feature_messages(texts, inv, f, cfg)
            key = request_key(cfg, messages)
            name = cache.get(key)
            if name is None:
                if failures >= cfg.max_failures:
                    continue
                try:
                    name = chat_name(cfg, messages)
                except LlmError as e:
                    failures += 1
                    log.warning("LLM naming failed for feature %d, keeping %r: %s", f, base.names[f], e)
                    if failures == cfg.max_failures:
                        log.warning("%d LLM failures in a row: keeping TF-IDF names for the rest", failures)
                    continue
                failures = 0
                asked += 1
                cache[key] = name
                if asked % _SAVE_EVERY == 0:
                    save_cache(cfg.cache_path, cache)
            names[f] = name
            renamed.append(f)
    finally:
        if asked:
            save_cache(cfg.cache_path, cache)
    if renamed:
        tm = terms if terms is not None else build_term_matrix(texts, naming.min_df)
        for f in renamed:
            rng = np.random.default_rng([naming.seed, f])
            trust[f] = feature_trust(tm, inv, f, tm.phrase_terms(names[f]), None, naming, rng)
    log.info("LLM names: %d of %d features (%d new requests, %d from cache)", len(renamed), len(todo), asked, len(renamed) - asked)
    return replace(base, names=names, trust=trust.astype(np.float32))

