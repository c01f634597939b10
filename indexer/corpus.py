"""Load a corpus of paper abstracts from Parquet, JSONL (including the arXiv metadata snapshot) or CSV
into one normalised in-memory form, skipping incomplete rows and reporting duplicates (the readers of each
format are in indexer/corpus_files.py).

Every failure a person can cause (missing file, unknown format, malformed line, nothing usable) is a
one-line `CorpusError` / `EmptyCorpus`; nothing here lets a raw parser traceback escape."""

from __future__ import annotations

import ast
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from indexer.corpus_files import OPTIONAL, REQUIRED, RawRow, csv_rows, detect_format, jsonl_rows, one_line, parquet_rows
from indexer.errors import CorpusError, EmptyCorpus, InvalidArgument

log = logging.getLogger(__name__)

SCHEMA = pa.schema([(c, pa.string()) for c in REQUIRED] + [(c, pa.list_(pa.string())) for c in OPTIONAL])
_MAX_DUP_EXAMPLES = 5
_CATEGORY_SPLIT = re.compile(r"[\s,;]+")
ARXIV_ARCHIVES = (
    "astro-ph cond-mat cs econ eess gr-qc hep-ex hep-lat hep-ph hep-th math math-ph nlin nucl-ex nucl-th physics "
    "q-bio q-fin quant-ph stat acc-phys adap-org alg-geom ao-sci atom-ph bayes-an chao-dyn chem-ph cmp-lg comp-gas "
    "dg-ga funct-an mtrl-th patt-sol plasm-ph q-alg solv-int supr-con"
).split()
ARXIV_CATEGORY = re.compile(rf"(?:{'|'.join(map(re.escape, ARXIV_ARCHIVES))})(?:\.[A-Za-z]+(?:-[a-z]+)*)?")
"""An arXiv category: an archive, alone ("hep-th") or with its subject class ("cs.CV", "cond-mat.stat-mech"). The
shared corpus's category lists also hold MSC and ACM class codes ("68T50", "I.2.7"), which are left out."""
# arXiv author strings look like "A, B, and C" or "A and B"; the optional "and" after a comma is the Oxford comma.
_AUTHOR_SPLIT = re.compile(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+")


@dataclass(frozen=True, eq=False)
class Corpus:
    """Documents in input order, with parallel per-document lists."""

    ids: list[str]
    """Unique document ids (arXiv ids without version for arXiv data)."""
    titles: list[str]
    """Titles, whitespace collapsed."""
    abstracts: list[str]
    """Abstracts, whitespace collapsed."""
    categories: list[list[str]]
    """Categories of each document, primary first; may be empty."""
    authors: list[list[str]]
    """Author names of each document; may be empty."""
    source_rows: np.ndarray
    """(n,) int64 0-based record number in the input file of each kept row (aligns precomputed embeddings)."""

    def __post_init__(self) -> None:
        n = len(self.ids)
        lengths = {len(self.titles), len(self.abstracts), len(self.categories), len(self.authors), len(self.source_rows)}
        if lengths != {n}:
            raise InvalidArgument(f"corpus columns have different lengths: ids {n}, others {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self) -> list[str]:
        """The text each document is embedded from: title + ". " + abstract."""
        return [f"{t}. {a}" for t, a in zip(self.titles, self.abstracts)]

    def to_table(self) -> pa.Table:
        """Columns id, title, abstract (string), categories, authors (list<string>)."""
        return pa.table([self.ids, self.titles, self.abstracts, self.categories, self.authors], schema=SCHEMA)


@dataclass(frozen=True)
class CorpusReport:
    """What loading a corpus file did."""

    path: str
    """The file read."""
    format: str
    """'parquet', 'jsonl' or 'csv'."""
    rows_read: int
    """Records read from the file (all of them, or up to where `limit` stopped reading)."""
    rows_used: int
    """Records kept in the corpus."""
    skipped_missing: int
    """Records skipped for a missing or empty id, title or abstract (or one that is not text, such as a number)."""
    duplicate_ids: int
    """Records skipped because an earlier record had the same id."""
    duplicate_examples: list[str] = field(default_factory=list)
    """A few of the duplicated ids."""
    other_categories: int = 0
    """Category entries left out for not having the shape of an arXiv category (`ARXIV_CATEGORY`)."""

    def summary(self) -> str:
        """One line for logs and the CLI."""
        text = (
            f"corpus {self.path} ({self.format}): {self.rows_read} rows read, {self.rows_used} used, "
            f"{self.skipped_missing} skipped for missing id/title/abstract, {self.duplicate_ids} duplicate ids"
        )
        if self.duplicate_examples:
            text += f" (e.g. {', '.join(self.duplicate_examples)}; first occurrence kept)"
        if self.other_categories:
            text += f", {self.other_categories} category entries that are not arXiv categories left out"
        return text


def load_corpus(path: str | Path, limit: int | None = None) -> tuple[Corpus, CorpusReport]:
    """Read a corpus file; the format follows the extension (.parquet/.pq, .jsonl/.json/.ndjson[.gz],
    .csv[.gz]). `limit` keeps at most that many usable rows and stops reading there."""
    if limit is not None and limit < 1:
        raise InvalidArgument(f"limit must be at least 1, got {limit}")
    path = Path(path)
    fmt = detect_format(path)
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}")
    if not path.is_file():
        raise CorpusError(f"corpus path is not a file: {path}")
    builder = _Builder(limit)
    if fmt == "parquet":
        rows = parquet_rows(path)
    elif fmt == "csv":
        rows = csv_rows(path)
    else:
        rows = jsonl_rows(path, builder.first_keys)
    try:
        for row in rows:
            if builder.add(row):
                break
    except (OSError, EOFError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise CorpusError(f"cannot read corpus {path} as {fmt}: {one_line(exc)}") from None
    report = builder.report(str(path), fmt)
    if report.rows_used == 0:
        raise EmptyCorpus(
            f"no usable rows in {path}: {report.rows_read} read, {report.skipped_missing} without an id, title or abstract as text"
            f"{builder.keys_hint()}"
        )
    log.info(report.summary())
    return builder.corpus(), report


def corpus_from_table(table: pa.Table) -> Corpus:
    """A corpus from a table written by `Corpus.to_table` (a built index's documents); rows are kept as is."""
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise CorpusError(f"document table lacks column(s) {', '.join(missing)} (has {', '.join(table.column_names)})")
    nulls = [c for c in REQUIRED if table.column(c).null_count]
    if nulls:
        raise CorpusError(f"document table has empty values in column(s) {', '.join(nulls)}")
    n = table.num_rows

    def lists(name: str) -> list[list[str]]:
        values = table.column(name).to_pylist() if name in table.column_names else [None] * n
        return [v if v is not None else [] for v in values]

    cols = [[str(v) for v in table.column(c).to_pylist()] for c in REQUIRED]
    # Indexes built before categories were de-duplicated (a split "cs.LG, cs.AI" item beside "cs.LG") hold repeats.
    categories = [list(dict.fromkeys(c)) for c in lists("categories")]
    return Corpus(*cols, categories, lists("authors"), np.arange(n, dtype=np.int64))


class _Builder:
    """Normalises raw rows one at a time, skipping incomplete ones and duplicates."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.kept: list[tuple[str, str, str, list[str], list[str], int]] = []
        self.seen: set[str] = set()
        self.rows_read = self.skipped = self.duplicates = self.other_categories = 0
        self.dup_examples: list[str] = []
        self.first_keys: list[str] = []
        """Keys of the first JSON record, to explain an empty corpus caused by misnamed keys."""

    def add(self, row: RawRow) -> bool:
        """Take one raw row; True once `limit` rows are kept."""
        src, raw_id, raw_title, raw_abstract, raw_cats, raw_authors = row
        self.rows_read += 1
        doc_id, title, abstract = _scalar_text(raw_id), _text(raw_title), _text(raw_abstract)
        if not (doc_id and title and abstract):
            self.skipped += 1
        elif doc_id in self.seen:
            self.duplicates += 1
            if len(self.dup_examples) < _MAX_DUP_EXAMPLES and doc_id not in self.dup_examples:
                self.dup_examples.append(doc_id)
        else:
            self.seen.add(doc_id)
            cats, authors = _as_list(raw_cats, _CATEGORY_SPLIT.split), _as_list(raw_authors, _split_authors)
            # A list item may itself hold several ("cs.AI, cs.SE"), as a string does.
            cats = [part for c in cats for part in _CATEGORY_SPLIT.split(c) if part]
            # Once each: a split item may repeat one listed beside it, and /categories counts documents.
            arxiv = list(dict.fromkeys(c for c in cats if ARXIV_CATEGORY.fullmatch(c)))
            self.other_categories += len(cats) - len(arxiv)
            self.kept.append((doc_id, title, abstract, arxiv, authors, src))
        return self.limit is not None and len(self.kept) >= self.limit

    def keys_hint(self) -> str:
        if not self.first_keys or all(k in self.first_keys for k in REQUIRED):
            return ""
        return f" (expected keys {', '.join(REQUIRED)}; the first record has {', '.join(self.first_keys)})"

    def report(self, path: str, fmt: str) -> CorpusReport:
        return CorpusReport(
            path, fmt, self.rows_read, len(self.kept), self.skipped, self.duplicates, self.dup_examples,
            self.other_categories,
        )

    def corpus(self) -> Corpus:
        ids, titles, abstracts, cats, authors, src = (list(c) for c in zip(*self.kept))
        return Corpus(ids, titles, abstracts, cats, authors, np.asarray(src, dtype=np.int64))


def _missing(value: Any) -> bool:
    # Parquet written from pandas stores missing strings as NaN.
    return value is None or (isinstance(value, float) and math.isnan(value))


_MAX_NESTING = 4
"""Levels of lists a title or abstract held as parts may have; a deeper one is not text (and would recurse far)."""


def _text(value: Any, depth: int = 0) -> str:
    """A title or abstract as one line of text; "" (the row then counts as missing it) for what is not text: a
    number, a boolean or an object would otherwise be indexed as "12345", "True" or "{...}"."""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, (list, tuple)):  # held as parts (a JSON list): its words
        return " ".join(filter(None, (_text(v, depth + 1) for v in value))) if depth < _MAX_NESTING else ""
    return ""


def _scalar_text(value: Any) -> str:
    """An id or a list item as text: a string, or a number written out (JSON and Parquet may hold ids as
    integers); "" for anything else."""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not _missing(value):
        return str(value)
    return ""


def _split_authors(text: str) -> list[str]:
    return _AUTHOR_SPLIT.split(" ".join(text.split()))


def _as_list(value: Any, split: Callable[[str], list[str]]) -> list[str]:
    """A list of non-empty stripped strings from a list, a delimited string, or a list literal in a string."""
    if _missing(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        # CSV files written from data frames often hold lists as "['a', 'b']".
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError, RecursionError, MemoryError):
                parsed = None
            if isinstance(parsed, list):
                return _clean_items(parsed)
        return _clean_items(split(text))
    if isinstance(value, Iterable):
        return _clean_items(value)
    return _clean_items([value])


def _clean_items(items: Iterable[Any]) -> list[str]:
    # Inlined for str items: author lists make this the hottest loop when loading 100k+ rows.
    cleaned = (" ".join(item.split()) if isinstance(item, str) else _scalar_text(item) for item in items)
    return [text for text in cleaned if text]
