#!/usr/bin/env python3
"""DuckDB's time for the audit's core question, as issue 22 states it:
read_csv(delim=' ', comment='#', all_varchar=true) and GROUP BY
(cs-username, cs(User-Agent)) over the same plain IIS files.

    bench/duckdb-groupby.py THREADS FILES...

IIS writes no header line DuckDB can use (`#Fields:` is a comment), so the
columns are named by position: cs-username is the 8th and cs(User-Agent)
the 10th field in both of loggen's layouts (front end with X-Forwarded-For,
back end without), and lines of the reordered layout are read as they come
(null_padding keeps the shorter lines); malformed lines are skipped
(ignore_errors), as the audit skips them. Prints the number of groups.
"""
import sys

import duckdb

threads, files = int(sys.argv[1]), sys.argv[2:]
columns = {f"c{i:02}": "VARCHAR" for i in range(17)}
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
groups = con.execute(
    """
    SELECT count(*) FROM (
        SELECT c07, c09, count(*) AS n
        FROM read_csv(?, delim = ' ', comment = '#', all_varchar = true, header = false,
                      columns = ?, null_padding = true, ignore_errors = true, auto_detect = false,
                      quote = '', escape = '')
        GROUP BY c07, c09
    )
    """,
    [files, columns],
).fetchone()[0]
print(groups)
