"""Raw rows of a corpus file, one reader per format (Parquet, CSV, JSON Lines or a JSON array, the last two
optionally gzipped), before indexer/corpus.py normalises them. A reader's failures are one-line `CorpusError`s."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.csv as pacsv

from indexer.errors import CorpusError
from indexer.tables import read_parquet, read_parquet_schema

REQUIRED = ("id", "title", "abstract")
OPTIONAL = ("categories", "authors")
COLUMNS = REQUIRED + OPTIONAL
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_BATCH_ROWS = 8192

RawRow = tuple[int, Any, Any, Any, Any, Any]
"""(source row, id, title, abstract, categories, authors) as read, before normalisation."""


def detect_format(path: Path) -> str:
    """"parquet", "csv" or "jsonl" from the file name (a .gz suffix allowed for the text formats)."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    fmt = _SUFFIXES.get(Path(name[:-3] if gz else name).suffix)
    if fmt is None or (gz and fmt == "parquet"):
        raise CorpusError(
            f"unknown corpus format for {path.name!r}: use .parquet/.pq, .jsonl/.json/.ndjson or .csv "
            f"(JSONL and CSV may be .gz)"
        )
    return fmt


def _arrow_rows(table: pa.Table) -> Iterator[RawRow]:
    """Rows of an Arrow table, converted to Python a batch at a time so `limit` stops early cheaply."""
    names = table.column_names
    start = 0
    for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
        n = batch.num_rows
        cols = [batch.column(c).to_pylist() if c in names else [None] * n for c in COLUMNS]
        yield from zip(range(start, start + n), *cols)
        start += n


def _check_columns(path: Path, names: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise CorpusError(f"{path} lacks column(s) {', '.join(missing)} (has {', '.join(names) or 'none'})")


def parquet_rows(path: Path) -> Iterator[RawRow]:
    """Rows of a Parquet file, reading only the columns a corpus uses."""
    try:
        names = read_parquet_schema(path).names
        _check_columns(path, names)
        table = read_parquet(path, columns=[c for c in COLUMNS if c in names])
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(f"cannot read {path} as Parquet: {one_line(exc)}") from None
    return _arrow_rows(table)


def csv_rows(path: Path) -> Iterator[RawRow]:
    """Rows of a CSV file with a header row, every column read as text."""
    # Ids such as 2506.09040 must stay strings (type inference would make them floats and drop the zero),
    # and abstracts span lines inside quotes.
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in COLUMNS})
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(f"cannot read {path} as CSV: {one_line(exc)}") from None
    _check_columns(path, table.column_names)
    return _arrow_rows(table)


def _open_text(path: Path) -> TextIO:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def jsonl_rows(path: Path, first_keys: list[str]) -> Iterator[RawRow]:
    """Records of a JSON Lines file (one object per line), or of a .json file holding one array of objects.
    The first record's keys are appended to `first_keys`."""
    with _open_text(path) as fh:
        head = fh.read(4096).lstrip()
        fh.seek(0)
        if head.startswith("["):
            yield from _json_array_rows(path, fh, first_keys)
            return
        record = 0
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}: line {line_no} is not valid JSON ({exc.msg} at column {exc.colno})") from None
            except RecursionError:
                raise CorpusError(f"{path}: line {line_no} nests its JSON too deeply to read") from None
            if record == 0 and isinstance(obj, dict):
                first_keys.extend(str(k) for k in obj)
            yield _record(path, obj, record, f"line {line_no}")
            record += 1


def _json_array_rows(path: Path, fh: TextIO, first_keys: list[str]) -> Iterator[RawRow]:
    try:
        data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: line {exc.lineno} is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise CorpusError(f"{path}: its JSON nests too deeply to read") from None
    if data and isinstance(data[0], dict):
        first_keys.extend(str(k) for k in data[0])
    for i, obj in enumerate(data):
        yield _record(path, obj, i, f"element {i}")


def _record(path: Path, obj: Any, record: int, where: str) -> RawRow:
    if not isinstance(obj, dict):
        raise CorpusError(f"{path}: {where} is a JSON {type(obj).__name__}, expected an object with id, title, abstract")
    return (record, obj.get("id"), obj.get("title"), obj.get("abstract"), obj.get("categories"), obj.get("authors"))


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, for an error a person reads."""
    return " ".join(str(exc).split()) or type(exc).__name__
