"""BigQuery identifiers (issue 24): ``bigquery.dataset_suffix`` and ``project`` follow BigQuery's
rules before any work, and statement text gets identifiers from one place, checked and quoted."""
from __future__ import annotations

import pytest

from nbcore.params import ParamsError, build_params
from nbcore.warehouse import WarehouseError
from nbcore.warehouse.bigquery import BigQueryWarehouse, check_identifier, quote_id


def _bq(**section):
    return build_params({"backend": "bigquery", "bigquery": {"project": "my-project", **section}})


@pytest.mark.parametrize("suffix, bad", [("_x`; DROP SCHEMA nba_raw; --", "'`'"), ("_dev sandbox", "' '"),
                                         ("_dév", "'é'"), ("-dev", "'-'")])
def test_a_dataset_suffix_outside_bigquerys_rules_is_refused_naming_the_field(suffix, bad):
    with pytest.raises(ParamsError) as e:
        _bq(dataset_suffix=suffix)
    assert "bigquery.dataset_suffix" in str(e.value) and bad in str(e.value)
    assert "letters, digits and underscores" in str(e.value)


def test_a_suffix_too_long_for_a_dataset_name_is_refused():
    with pytest.raises(ParamsError, match="at most 1009"):
        _bq(dataset_suffix="_" + "x" * 1009)
    assert _bq(dataset_suffix="_" + "x" * 1008).bigquery.dataset_suffix.startswith("_x")


@pytest.mark.parametrize("project, ok", [("my-project-123", True), ("example.com:my-project", True),
                                         ("My_Project", False), ("proj`; --", False), ("1project", False),
                                         ("project-", False)])
def test_project_ids_follow_gcp_rules(project, ok):
    if ok:
        assert _bq(project=project).bigquery.project == project
    else:
        with pytest.raises(ParamsError, match="bigquery.project.*not a GCP project id"):
            _bq(project=project)


def test_identifiers_are_checked_and_quoted_in_one_place():
    assert quote_id("my-project", "nba_raw_sandbox", "_staging_t_1a2b") == "`my-project`.`nba_raw_sandbox`.`_staging_t_1a2b`"
    assert quote_id("example.com:proj", "nba_raw", "t") == "`example.com:proj`.`nba_raw`.`t`"
    for kind, value in (("dataset", "nba_raw`; DROP"), ("table", "t;"), ("project", "p`x"), ("dataset_suffix", "_a.b")):
        with pytest.raises(WarehouseError, match=f"BigQuery {kind}"):
            check_identifier(kind, value)
    # the backend refuses a bad suffix even when built without params (a caller that skipped validation)
    with pytest.raises(WarehouseError, match="dataset_suffix"):
        BigQueryWarehouse("my-project", dataset_suffix="_x`; DROP SCHEMA nba_raw; --", client=object())
    wh = BigQueryWarehouse("my-project", dataset_suffix="_sb", client=object())
    assert wh.quoted(wh.table_id("nba_raw.bdl_player_boxscores")) == "`my-project`.`nba_raw_sb`.`bdl_player_boxscores`"
