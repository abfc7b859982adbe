"""Rewrites the Windows spellings of paths in casguard's output to the Linux ones.

    unwin.py FILE MAPS

MAPS is a file of tab-separated pairs, one a line: a path as given to casguard.exe
and the same path as given to the Linux build. A folder stands for itself and
every file under it, spelt as Windows joins them (`examples\\logs` + `EX01\\...`); a
wildcard (`u_ex2611*.log`, `EX0?\\W3SVC*`, given with backslashes) stands for what it
matches, as casguard expands it.
Each spelling is matched as printed and JSON-escaped (backslashes doubled), longest
first, in one pass. Nothing else in FILE changes, so any other difference between
the two builds' outputs stays visible.
"""

import glob
import os
import re
import sys


def spellings(win, linux):
    yield win, linux
    if not os.path.exists(linux) and any(c in linux for c in "*?"):
        # casguard.exe joins what a wildcard matches with `\`, from the
        # first component that holds one.
        parts = linux.split("/")
        first = next(i for i, p in enumerate(parts) if "*" in p or "?" in p)
        keep = win.split("\\")[: first - len(parts)]
        for match in glob.glob(linux):
            yield from spellings("\\".join(keep + match.split("/")[first:]), match)
        return
    if not os.path.isdir(linux):
        return
    for root, _dirs, files in os.walk(linux):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), linux)
            w = win + ("" if win.endswith(("\\", "/")) else "\\") + rel.replace("/", "\\")
            lx = linux + ("" if linux.endswith("/") else "/") + rel
            yield w, lx


def main():
    path, maps = sys.argv[1], sys.argv[2]
    table = {}
    with open(maps, encoding="utf-8") as f:
        for line in f:
            win, linux = line.rstrip("\n").split("\t")
            for w, lx in spellings(win, linux):
                table[w] = lx
                table[w.replace("\\", "\\\\")] = lx.replace("\\", "\\\\")
    keys = sorted((k for k in table if table[k] != k), key=len, reverse=True)
    if not keys:
        return
    pattern = re.compile("|".join(re.escape(k) for k in keys).encode())
    with open(path, "rb") as f:
        data = f.read()
    data = pattern.sub(lambda m: table[m.group().decode()].encode(), data)
    with open(path, "wb") as f:
        f.write(data)


main()
