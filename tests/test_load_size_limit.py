"""A phase 1 file over the supported size (``sources.checks.MAX_FILE_BYTES``) is refused with the
named error ``FileTooLarge`` (a ``RunbookError``), whose message names the file, the bound and
what to do; a file at the bound is read. The bound is lowered here so no large file is written."""
from __future__ import annotations

import json

import pytest

from nbcore.bucket import Bucket
from nbcore.errors import RunbookError
from nbcore.load import read_document
from nbcore.sources import BOXSCORES, checks
from nbcore.sources.checks import FileProblem, FileTooLarge

DOC = {"source": BOXSCORES, "game_date": "2024-04-03", "games": [{"game_id": "0022301141", "players": []}]}


@pytest.fixture
def bucket(tmp_path):
    (tmp_path / BOXSCORES).mkdir()
    path = tmp_path / BOXSCORES / "2024-04-03.json"
    path.write_text(json.dumps(DOC))
    return Bucket(str(tmp_path)), f"{BOXSCORES}/2024-04-03.json", path.stat().st_size


def test_a_file_over_the_bound_is_refused_by_name(bucket, monkeypatch):
    b, rel, size = bucket
    monkeypatch.setattr(checks, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(FileTooLarge) as e:
        read_document(b, rel)
    err = e.value
    assert isinstance(err, FileProblem) and isinstance(err, RunbookError) and err.stage == "read"
    assert err.file.endswith(rel) and err.size == size and err.limit == size - 1
    assert rel in str(err) and "larger than any real phase 1 file" in str(err) and "re-scrape it" in str(err)


def test_a_file_at_the_bound_is_read(bucket, monkeypatch):
    b, rel, size = bucket
    monkeypatch.setattr(checks, "MAX_FILE_BYTES", size)
    assert read_document(b, rel) == DOC


def test_a_bucket_that_cannot_tell_the_size_is_refused_after_the_read(bucket, monkeypatch):
    """A remote bucket whose listing gives no size: the bytes are measured before any parse."""
    b, rel, size = bucket
    monkeypatch.setattr(checks, "MAX_FILE_BYTES", size - 1)
    monkeypatch.setattr(b, "size", lambda rel: None)
    parsed = []
    monkeypatch.setattr("nbcore.load.load_json", lambda text: parsed.append(text))
    with pytest.raises(FileTooLarge):
        read_document(b, rel)
    assert parsed == []  # refused before the JSON parse, the step that costs memory


def test_the_default_bound_is_documented_in_megabytes():
    assert checks.MAX_FILE_BYTES == 16 * 2**20
    assert "(at most 16 MB)" in str(FileTooLarge("x.json", 17 * 2**20, checks.MAX_FILE_BYTES))
