"""Read a `casguard export --format parquet` folder back with DuckDB and print
the counts a test compares with `casguard audit --format json`, as JSON.

    python tests/duckdb/check.py EXPORT_DIR
"""

import json
import sys

import duckdb


def main():
    root = sys.argv[1].rstrip("/")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = root.replace("'", "''") + "/*/*.parquet"
    con.execute(f"CREATE VIEW r AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")

    def pairs(sql):
        return {("null" if k is None else str(k)): v for k, v in con.execute(sql).fetchall()}

    def column(sql):
        return [row[0] for row in con.execute(sql).fetchall()]

    out = {
        "rows": con.execute("SELECT count(*) FROM r").fetchone()[0],
        "by_traffic": pairs("SELECT traffic, count(*) FROM r GROUP BY ALL"),
        "person_protocols": pairs("SELECT protocol, count(*) FROM r WHERE traffic = 'person' GROUP BY ALL"),
        "person_clients": pairs("SELECT client, count(*) FROM r WHERE traffic = 'person' GROUP BY ALL"),
        "person_decisions": pairs("SELECT decision, count(*) FROM r WHERE traffic = 'person' GROUP BY ALL"),
        "probes": con.execute("SELECT count(*) FROM r WHERE is_probe").fetchone()[0],
        "backend": con.execute("SELECT count(*) FROM r WHERE is_backend").fetchone()[0],
        "exploits": pairs("SELECT attack_rule, count(*) FROM r WHERE attack_kind = 'exploit' GROUP BY ALL"),
        "attacks": pairs("SELECT attack_kind, count(*) FROM r WHERE attack_rule IS NOT NULL GROUP BY ALL"),
        "dates": [str(d) for d in column("SELECT DISTINCT date FROM r ORDER BY 1")],
        # Rows whose time is not in their partition's day: must be 0.
        "misfiled": con.execute("SELECT count(*) FROM r WHERE CAST(time AS DATE) <> date").fetchone()[0],
        # The README questions, verbatim in spirit.
        "outlook_mobile_users": column(
            "SELECT user FROM r WHERE traffic = 'person' AND user IS NOT NULL AND client = 'outlook-mobile' "
            "AND device_id IS NOT NULL "
            "GROUP BY user ORDER BY user"),
        "ews_non_outlook_users": column(
            "SELECT user FROM r WHERE traffic = 'person' AND user IS NOT NULL AND protocol = 'ews' "
            "AND client NOT IN ('outlook-windows', 'outlook-mac') GROUP BY user ORDER BY user"),
    }
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
