"""Bad parameters fail before any work, naming the field and the fix."""
from pathlib import Path

import pytest
import yaml

from nbcore.params import ParamsError, build_params, load_params

ROOT = Path(__file__).resolve().parent.parent


def test_demo_params_load_and_resolve_paths_against_the_project():
    p = load_params(ROOT / "params" / "demo.yaml")
    assert p.backend == "duckdb"
    assert p.duckdb_path == ROOT / "warehouse" / "demo.duckdb"
    assert p.season_list == [2021, 2022, 2023, 2024, 2025]


@pytest.mark.parametrize(
    "data, field, hint",
    [
        ({"seasons": [2019]}, "seasons", "2021 means 2021-22"),
        ({"tables": ["player_game_summry"]}, "tables", "known"),
        ({"start_date": "2024-03-01", "end_date": "2024-02-01"}, "end_date", "swap"),
        ({"chunk_size": 5}, "chunk_size", "unknown key"),
        ({"chunk_days": 0}, "chunk_days", "greater than or equal to 1"),
        ({"backend": "postgres"}, "backend", "duckdb"),
        ({"backend": "bigquery"}, "bigquery", "missing"),
        ({"stages": ["validate", "lod"]}, "stages", "stages are"),
    ],
)
def test_bad_parameters_name_the_field_and_the_fix(data, field, hint, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError) as e:
        load_params(path)
    msg = str(e.value)
    assert str(path) in msg and field in msg and hint in msg


def test_missing_bucket_folder_is_reported_with_the_fix(tmp_path):
    p = build_params({"bucket": str(tmp_path / "nope")}, "test", tmp_path)
    with pytest.raises(ParamsError, match="bucket: folder .* does not exist; run `runbook demo`"):
        p.check_bucket()


def test_missing_params_file_and_invalid_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_secrets_are_stripped_from_the_public_dict(tmp_path):
    p = build_params(
        {"backend": "bigquery", "bigquery": {"project": "p", "credentials_path": "/secret/sa.json"}}, "t", tmp_path
    )
    assert p.bigquery.credentials_path.get_secret_value() == "/secret/sa.json"
    public = p.public_dict()
    assert "credentials_path" not in public["bigquery"]
    assert "/secret/sa.json" not in str(public)
