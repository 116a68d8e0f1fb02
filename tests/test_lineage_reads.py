"""The lineage graph is read off the SQL text (fast) and must equal sqlglot's reading (certain)."""
from nbcore import lineage


def test_upstreams_read_off_the_text_equal_sqlglots_tables():
    for table in lineage.ordered_tables():
        assert lineage.upstreams(table) == lineage.tables_read(table), table


def test_a_table_named_only_in_a_comment_or_a_string_is_not_an_upstream(monkeypatch):
    sql = """-- reads nba_raw.bdl_player_boxscores only in this comment
    SELECT 'nba_raw.odds_api_player_points_props' AS s, g.game_id
    FROM nba_analytics.player_game_summary AS g /* nba_raw.nbac_gamebook_player_stats */"""
    monkeypatch.setattr(lineage, "read_sql", lambda name: sql)
    lineage.upstreams.cache_clear()
    try:
        assert lineage.upstreams("nba_precompute.player_daily_cache") == ("nba_analytics.player_game_summary",)
        assert lineage.tables_read("nba_precompute.player_daily_cache") == ("nba_analytics.player_game_summary",)
    finally:
        lineage.upstreams.cache_clear()
