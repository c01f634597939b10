"""The one module that reads and writes Parquet. Everything else passes `pyarrow.Table`s or dicts of arrays."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file (optionally only `columns`)."""
    return pq.read_table(path, columns=columns)


def read_parquet_schema(path: str | Path) -> pa.Schema:
    """The schema of a Parquet file without reading its rows."""
    return pq.read_schema(path)


def parquet_row_count(path: str | Path) -> int:
    """Rows in a Parquet file, from its footer (nothing else is read)."""
    return pq.ParquetFile(path).metadata.num_rows


def write_parquet(table: pa.Table, path: str | Path) -> None:
    """Write `table` to `path` with zstd compression."""
    pq.write_table(table, path, compression="zstd")
