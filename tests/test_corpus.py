"""indexer.corpus and its readers (indexer/corpus_files.py), through `load_corpus`: every input format, skipping
and duplicates, one-line errors, alignment with the input rows."""

from __future__ import annotations

import csv
import gzip
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.corpus import Corpus, corpus_from_table, load_corpus
from indexer.errors import CorpusError, EmptyCorpus, InvalidArgument
from indexer.tables import write_parquet

SHARED_PARQUET = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv_abstracts.parquet"

# Row 2 lacks an abstract, row 3 has a blank title, row 5 repeats row 0's id: 3 of 6 rows are kept.
ROWS = [
    {"id": "2506.09040", "title": "  Sparse\n  autoencoders ", "abstract": "We train\tSAEs.\n\nThey work.",
     "categories": ["cs.LG", "cs.AI"], "authors": ["Ada Lovelace", "Alan Turing"]},
    {"id": "0704.0010", "title": "Dark matter", "abstract": "Halos  of galaxies.", "categories": ["astro-ph.GA"],
     "authors": []},
    {"id": "2501.00001", "title": "No abstract", "abstract": None, "categories": ["cs.CV"], "authors": ["X"]},
    {"id": "2501.00002", "title": "   ", "abstract": "Blank title.", "categories": ["cs.CV"], "authors": ["Y"]},
    {"id": "2502.00003", "title": "Robots", "abstract": "Grasping.", "categories": [], "authors": ["Z Z"]},
    {"id": "2506.09040", "title": "Duplicate", "abstract": "Second copy.", "categories": ["cs.LG"], "authors": []},
]
KEPT = [0, 1, 4]


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write `rows` in the format named by `path`'s extension (lists as lists in Parquet/JSONL; in CSV as
    space-separated categories and comma-separated authors)."""
    name = path.name
    if name.endswith((".parquet", ".pq")):
        write_parquet(pa.table({k: [r[k] for r in rows] for k in rows[0]}), path)
        return path
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        if ".csv" in name:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, "categories": " ".join(r["categories"]), "authors": ", ".join(r["authors"])})
        else:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def arxiv_snapshot_record(r: dict) -> dict:
    """A record as the arXiv metadata snapshot publishes it: one string for categories and for authors."""
    return {
        "id": r["id"], "submitter": "Someone", "authors": " and ".join(r["authors"]) if len(r["authors"]) < 3 else
        ", ".join(r["authors"][:-1]) + " and " + r["authors"][-1], "title": r["title"], "comments": "5 pages",
        "journal-ref": None, "doi": None, "report-no": None, "categories": " ".join(r["categories"]),
        "license": None, "abstract": r["abstract"], "versions": [{"version": "v1", "created": "Mon"}],
        "update_date": "2025-01-01", "authors_parsed": [[a, "", ""] for a in r["authors"]],
    }


def assert_expected(corpus: Corpus) -> None:
    assert corpus.ids == [ROWS[i]["id"] for i in KEPT]
    assert corpus.titles == ["Sparse autoencoders", "Dark matter", "Robots"]
    assert corpus.abstracts == ["We train SAEs. They work.", "Halos of galaxies.", "Grasping."]
    assert corpus.categories == [["cs.LG", "cs.AI"], ["astro-ph.GA"], []]
    assert corpus.authors == [["Ada Lovelace", "Alan Turing"], [], ["Z Z"]]
    assert corpus.source_rows.dtype == np.int64
    assert corpus.source_rows.tolist() == KEPT


@pytest.mark.parametrize("name", ["c.parquet", "c.pq", "c.jsonl", "c.ndjson", "c.json", "c.jsonl.gz", "c.csv", "c.csv.gz"])
def test_each_format_loads_the_same_corpus(tmp_path, name):
    corpus, report = load_corpus(write_rows(tmp_path / name, ROWS))
    assert_expected(corpus)
    assert (report.rows_read, report.rows_used, report.skipped_missing, report.duplicate_ids) == (6, 3, 2, 1)
    assert report.duplicate_examples == ["2506.09040"]
    assert report.format == {"parquet": "parquet", "pq": "parquet", "csv": "csv"}.get(name.split(".")[1], "jsonl")


@pytest.mark.parametrize("name", ["c.jsonl", "c.json", "c.csv"])
def test_a_byte_order_mark_is_read_past(tmp_path, name):
    # Spreadsheet and Windows tools write text files with a UTF-8 BOM.
    path = write_rows(tmp_path / name, ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    corpus, _ = load_corpus(path)
    assert_expected(corpus)


def test_json_array_file_with_a_bom(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS).encode())
    assert_expected(load_corpus(path)[0])


def test_arxiv_snapshot_jsonl(tmp_path):
    path = tmp_path / "arxiv-metadata-oai-snapshot.json"
    path.write_text("".join(json.dumps(arxiv_snapshot_record(r)) + "\n" for r in ROWS))
    corpus, report = load_corpus(path)
    assert_expected(corpus)
    assert report.rows_used == 3


def test_json_array_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(ROWS, indent=2))
    corpus, _ = load_corpus(path)
    assert_expected(corpus)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("A. Einstein, B. Podolsky and N. Rosen", ["A. Einstein", "B. Podolsky", "N. Rosen"]),
        ("A. One, B. Two, and C. Three", ["A. One", "B. Two", "C. Three"]),
        ("Solo Author", ["Solo Author"]),
        ("  Line\n  Broken , Name ", ["Line Broken", "Name"]),
        ("['Ann Lee', 'Bo Chan']", ["Ann Lee", "Bo Chan"]),
        ("", []),
    ],
)
def test_author_strings_are_split(tmp_path, raw, expected):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id": "1", "title": "t", "abstract": "a", "authors": raw}) + "\n")
    assert load_corpus(path)[0].authors == [expected]


@pytest.mark.parametrize(
    "raw, expected",
    [("cs.LG  stat.ML", ["cs.LG", "stat.ML"]), ("cs.CV,cs.AI", ["cs.CV", "cs.AI"]), ("['cs.CL']", ["cs.CL"]), (None, [])],
)
def test_category_strings_are_split(tmp_path, raw, expected):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "1", "title": "t", "abstract": "a", "categories": raw}) + "\n")
    assert load_corpus(path)[0].categories == [expected]


def test_a_category_listed_twice_is_kept_once(tmp_path):
    # A row of the shared corpus lists "cs.LG", "cs.AI" and then all of them again in one item.
    path = tmp_path / "c.jsonl"
    raw = ["cs.LG", "cs.AI", "cs.LG, cs.IR, cs.AI"]
    path.write_text(json.dumps({"id": "1", "title": "t", "abstract": "a", "categories": raw}) + "\n")
    assert load_corpus(path)[0].categories == [["cs.LG", "cs.AI", "cs.IR"]]
    # An index written before that rule still holds the repeats: they are read once.
    old = pa.table({"id": ["1"], "title": ["t"], "abstract": ["a"], "categories": [["cs.LG", "cs.AI", "cs.LG"]]})
    assert corpus_from_table(old).categories == [["cs.LG", "cs.AI"]]


def test_class_codes_among_the_categories_are_left_out_and_counted(tmp_path):
    # The shared corpus's lists hold MSC and ACM codes beside arXiv categories.
    path = tmp_path / "c.jsonl"
    raw = ["cs.CL", "68T50", "I.2.7", "F.2.2; I.2.7", "astro-ph.GA", "hep-th, cond-mat.stat-mech", "CS", "A.I"]
    path.write_text(json.dumps({"id": "1", "title": "t", "abstract": "a", "categories": raw}) + "\n")
    corpus, report = load_corpus(path)
    assert corpus.categories == [["cs.CL", "astro-ph.GA", "hep-th", "cond-mat.stat-mech"]]
    assert report.other_categories == 6 and "6 category entries that are not arXiv categories" in report.summary()
    # Given as one string, a class's description is no list of categories either.
    path.write_text(json.dumps({"id": "1", "title": "t", "abstract": "a", "categories": "cs.LG 68T05 = Learning and adaptive systems (AI)"}) + "\n")
    assert load_corpus(path)[0].categories == [["cs.LG"]]


def test_csv_ids_stay_strings_and_multiline_abstracts_survive(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,title,abstract\n2506.09040,T,"line one\nline two"\n0704.0010,U,x\n')
    corpus, _ = load_corpus(path)
    assert corpus.ids == ["2506.09040", "0704.0010"]
    assert corpus.abstracts[0] == "line one line two"
    assert corpus.categories == [[], []] and corpus.authors == [[], []]


def test_numeric_ids_and_missing_optional_keys(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": 17, "title": "t", "abstract": "a"}\n\n{"id": 18, "title": "u", "abstract": "b"}\n')
    corpus, report = load_corpus(path)
    assert corpus.ids == ["17", "18"]
    # Blank lines are not records: the second record is source row 1.
    assert corpus.source_rows.tolist() == [0, 1] and report.rows_read == 2


def test_a_text_held_as_a_list_is_read_as_its_words_and_an_object_as_missing(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"id": 1, "title": ["Dark", "matter  halos"], "abstract": "a"}\n'
        '{"id": 2, "title": {"en": "t"}, "abstract": "b"}\n'
        '{"id": 3, "title": ' + "[" * 600 + '"deep"' + "]" * 600 + ', "abstract": "c"}\n'
    )
    corpus, report = load_corpus(path)
    assert corpus.titles == ["Dark matter halos"] and report.skipped_missing == 2
    # Nesting past what the JSON reader can follow is a one-line error, not a RecursionError.
    path.write_text('{"id": 4, "title": ' + "[" * 100_000 + "]" * 100_000 + ', "abstract": "d"}\n')
    with pytest.raises(CorpusError, match="line 1 nests its JSON too deeply"):
        load_corpus(path)


def test_a_title_or_abstract_that_is_not_text_counts_as_missing(tmp_path):
    # A number or a boolean is no abstract: indexed, it would read "12345" or "True".
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"id": 1, "title": "t", "abstract": 12345}\n{"id": 2, "title": true, "abstract": "b"}\n'
        '{"id": 3, "title": "u", "abstract": 1.5}\n{"id": 4, "title": "kept", "abstract": "text"}\n'
    )
    corpus, report = load_corpus(path)
    assert corpus.titles == ["kept"] and report.skipped_missing == 3
    # A Parquet column of numbers: every row is missing its abstract, so the file is refused.
    write_parquet(pa.table({"id": ["a", "b"], "title": ["t", "u"], "abstract": [1, 2]}), tmp_path / "n.parquet")
    with pytest.raises(EmptyCorpus, match="2 without an id, title or abstract as text"):
        load_corpus(tmp_path / "n.parquet")


def test_limit_keeps_that_many_usable_rows_and_stops(tmp_path):
    corpus, report = load_corpus(write_rows(tmp_path / "c.jsonl", ROWS), limit=2)
    assert corpus.ids == ["2506.09040", "0704.0010"]
    assert report.rows_read == 2
    with pytest.raises(InvalidArgument, match="limit"):
        load_corpus(tmp_path / "c.jsonl", limit=0)


def test_texts_are_title_dot_abstract(tmp_path):
    corpus, _ = load_corpus(write_rows(tmp_path / "c.jsonl", ROWS))
    assert corpus.texts() == ["Sparse autoencoders. We train SAEs. They work.", "Dark matter. Halos of galaxies.",
                              "Robots. Grasping."]


def test_table_round_trip(tmp_path):
    corpus, _ = load_corpus(write_rows(tmp_path / "c.parquet", ROWS))
    table = corpus.to_table()
    assert table.column_names == ["id", "title", "abstract", "categories", "authors"]
    assert table.schema.field("categories").type == pa.list_(pa.string())
    back = corpus_from_table(table)
    for name in ("ids", "titles", "abstracts", "categories", "authors"):
        assert getattr(back, name) == getattr(corpus, name)
    assert back.source_rows.tolist() == [0, 1, 2]


def test_corpus_from_table_tolerates_missing_lists_and_refuses_missing_columns():
    back = corpus_from_table(pa.table({"id": ["a"], "title": ["t"], "abstract": ["x"]}))
    assert back.categories == [[]] and back.authors == [[]] and len(back) == 1
    with pytest.raises(CorpusError, match="abstract"):
        corpus_from_table(pa.table({"id": ["a"], "title": ["t"]}))


def test_summary_is_one_line_with_the_counts(tmp_path):
    _, report = load_corpus(write_rows(tmp_path / "c.jsonl", ROWS))
    line = report.summary()
    assert "\n" not in line
    for fragment in ("6 rows read", "3 used", "2 skipped", "1 duplicate", "2506.09040"):
        assert fragment in line


def one_line_error(exc_type: type[Exception], path: Path) -> str:
    with pytest.raises(exc_type) as info:
        load_corpus(path)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def test_missing_file(tmp_path):
    assert str(tmp_path / "nope.jsonl") in one_line_error(CorpusError, tmp_path / "nope.jsonl")


def test_unknown_extension(tmp_path):
    (tmp_path / "corpus.xml").write_text("<xml/>")
    assert "format" in one_line_error(CorpusError, tmp_path / "corpus.xml")
    (tmp_path / "c.parquet.gz").write_bytes(b"x")
    assert "format" in one_line_error(CorpusError, tmp_path / "c.parquet.gz")


def test_malformed_json_line_names_the_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "1", "title": "t", "abstract": "a"}\n\n{"id": "2", "title": \n')
    assert "line 3" in one_line_error(CorpusError, path)


def test_json_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "1", "title": "t", "abstract": "a"}\n[1, 2]\n')
    assert "line 2" in one_line_error(CorpusError, path)


@pytest.mark.parametrize("name, content", [("c.parquet", b"not parquet at all"), ("c.jsonl.gz", b"not gzip"),
                                           ("c.jsonl", b"\xff\xfe\x00bad utf8\n")])
def test_unreadable_files(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    assert name in one_line_error(CorpusError, tmp_path / name)


def test_csv_without_required_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,title,summary\n1,t,a\n")
    message = one_line_error(CorpusError, path)
    assert "abstract" in message and "summary" in message


@pytest.mark.parametrize("content", ["", "\n\n", '{"id": "1", "title": "", "abstract": "a"}\n'])
def test_empty_corpus(tmp_path, content):
    path = tmp_path / "c.jsonl"
    path.write_text(content)
    assert "no usable rows" in one_line_error(EmptyCorpus, path)


def test_empty_corpus_names_misnamed_keys(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"paper_id": "1", "title": "t", "summary": "a"}\n')
    message = one_line_error(EmptyCorpus, path)
    assert "paper_id" in message and "summary" in message


@settings(max_examples=30, deadline=None)
@given(
    titles=st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=8),
    names=st.lists(st.from_regex(r"[A-Z][a-z]{0,6}( [A-Z][a-z]{0,6}){0,2}", fullmatch=True), max_size=5),
)
def test_whitespace_collapse_and_author_round_trip(titles, names):
    """Kept titles are the inputs with whitespace collapsed; an author list joined with ', ' splits back."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.jsonl"
        rows = [{"id": str(i), "title": t, "abstract": "a", "authors": ", ".join(names)} for i, t in enumerate(titles)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        expected = [(i, " ".join(t.split())) for i, t in enumerate(titles) if t.split()]
        if not expected:
            with pytest.raises(EmptyCorpus):
                load_corpus(path)
            return
        corpus, report = load_corpus(path)
    assert list(zip(corpus.source_rows.tolist(), corpus.titles)) == expected
    assert report.skipped_missing == len(titles) - len(expected)
    assert all(a == names for a in corpus.authors)


@pytest.mark.skipif(not SHARED_PARQUET.is_file(), reason="shared data not present")
def test_real_parquet_rows_align_with_the_file():
    corpus, report = load_corpus(SHARED_PARQUET, limit=50)
    assert len(corpus) == 50 and report.rows_read == 50
    assert corpus.source_rows.tolist() == list(range(50))
    assert corpus.ids == sorted(corpus.ids) and len(set(corpus.ids)) == 50
