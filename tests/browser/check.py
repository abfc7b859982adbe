"""Drive headless Chromium through chromedriver's W3C WebDriver HTTP API
(python standard library only) and check a casguard HTML report."""

import argparse
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,2400",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, body=None):
        url = self.base + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def script(self, code, *args):
        return self.s("POST", "/execute/sync", {"script": code, "args": list(args)})

    def find(self, css):
        v = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(v.values()))

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click", {})

    def logs(self):
        return self.s("POST", "/se/log", {"type": "browser"}) or []


def column(d, table, key):
    return d.script(
        """const t = document.getElementById(arguments[0]);
           const i = Array.from(t.tHead.rows[0].cells).findIndex(th => th.dataset.key === arguments[1]);
           return Array.from(t.tBodies[0].rows).map(r => r.cells[i].dataset.value ?? r.cells[i].textContent);""",
        table, key)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("screenshot")
    ap.add_argument("--chromium", default=shutil.which("chromium"))
    ap.add_argument("--chromedriver", default=shutil.which("chromedriver"))
    a = ap.parse_args()
    url = pathlib.Path(a.report).resolve().as_uri()
    port = free_port()
    profile = tempfile.mkdtemp(prefix="casguard-chromium-")
    proc = subprocess.Popen([a.chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = Driver(f"http://127.0.0.1:{port}")
    failures = []
    result = {"url": url}
    try:
        for _ in range(100):
            try:
                if d.call("GET", "/status").get("ready"):
                    break
            except Exception:
                pass
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": a.chromium, "args": CHROME_ARGS + [f"--user-data-dir={profile}"]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        resp = d.call("POST", "/session", caps)
        d.session = resp["sessionId"]
        d.s("POST", "/url", {"url": url})
        for _ in range(100):
            if d.script("return document.body && document.body.dataset.ready === '1';"):
                break
            time.sleep(0.1)
        else:
            failures.append("page script did not finish (data-ready not set)")
        kind = d.script("return document.body.dataset.kind;")
        result["kind"] = kind
        result["title"] = d.script("return document.title;")

        # Nothing fetched: the page is self-contained.
        resources = d.script("return performance.getEntriesByType('resource').map(e => e.name);")
        result["resources"] = resources
        if resources:
            failures.append(f"page fetched resources: {resources}")

        # Log text stayed text.
        xss = d.script("""return {xss: window.__xss === undefined ? null : window.__xss,
                                  imgs: document.querySelectorAll('img').length,
                                  scripts: document.scripts.length,
                                  svgs_with_onload: document.querySelectorAll('[onload],[onerror],[onmouseover]').length};""")
        result["injection"] = xss
        if xss["xss"] is not None or xss["imgs"] or xss["scripts"] != 2 or xss["svgs_with_onload"]:
            failures.append(f"injected markup or script ran: {xss}")

        # Rows of every data table the page built, by table id.
        result["tables"] = d.script(
            "return Object.fromEntries(Array.from(document.querySelectorAll('table.data[id]'))"
            ".map(t => [t.id, t.tBodies[0].rows.length]));")

        table, key, text_key = {
            "audit": ("users-devices", "requests", "user"),
            "posture": ("posture-users", "requests", "user"),
        }.get(kind, ("rule-impact", "matched", "name"))
        rows = d.script(f"return document.querySelectorAll('#{table} tbody tr').length;")
        result["rows"] = rows
        if not rows:
            failures.append(f"table #{table} is empty")

        # Sorting: a numeric column descending on the first click, ascending on the second.
        d.click(f'#{table} th[data-key="{key}"]')
        desc = [float(v) for v in column(d, table, key)]
        d.click(f'#{table} th[data-key="{key}"]')
        asc = [float(v) for v in column(d, table, key)]
        result["sorted_desc_head"] = desc[:5]
        if desc != sorted(desc, reverse=True) or asc != sorted(asc) or len(desc) != rows:
            failures.append(f"sorting {key} failed: {desc[:10]} / {asc[:10]}")
        aria = d.script(f"return document.querySelector('#{table} th[data-key=\"{key}\"]').getAttribute('aria-sort');")
        if aria != "ascending":
            failures.append(f"aria-sort is {aria} after two clicks")
        d.click(f'#{table} th[data-key="{text_key}"]')
        names = column(d, table, text_key)
        collated = d.script("return arguments[0].slice().sort((a, b) => a.localeCompare(b));", names)
        if names != collated:
            failures.append(f"sorting {text_key} failed: {names[:10]}")

        # Filtering, when the table has a filter box.
        has_filter = d.script(f"return !!document.getElementById('{table}').closest('section').querySelector('input[type=search]');")
        if has_filter and rows > 1:
            needle = names[-1]
            box = d.script(f"return document.getElementById('{table}').closest('section').querySelector('input[type=search]');")
            elem = next(iter(box.values()))
            d.s("POST", f"/element/{elem}/value", {"text": needle})
            texts = d.script(f"return Array.from(document.querySelectorAll('#{table} tbody tr')).map(r => r.textContent.toLowerCase());")
            result["filter"] = {"needle": needle, "rows": len(texts)}
            if not texts or len(texts) > rows or any(needle.lower() not in t for t in texts):
                failures.append(f"filter {needle!r} left rows that do not match")
            d.script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input'));", box)
            if len(column(d, table, text_key)) != rows:
                failures.append("clearing the filter did not bring all rows back")

        logs = d.logs()
        errors = [l for l in logs if l.get("level") in ("SEVERE", "ERROR")]
        result["console_errors"] = errors
        if errors:
            failures.append(f"console errors: {errors}")

        # A second picture: the sorted table.
        d.click(f'#{table} th[data-key="{key}"]')
        d.script(f"document.getElementById('{table}').closest('section').scrollIntoView();")
        shot = pathlib.Path(a.screenshot)
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.with_name(shot.stem + "-table.png").write_bytes(base64.b64decode(d.s("GET", "/screenshot")))
        d.script("window.scrollTo(0, 0);")
        png = base64.b64decode(d.s("GET", "/screenshot"))
        pathlib.Path(a.screenshot).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.screenshot).write_bytes(png)
        result["screenshot"] = {"path": a.screenshot, "bytes": len(png)}
        if not png.startswith(b"\x89PNG") or len(png) < 10_000:
            failures.append("screenshot is not a plausible PNG")
    except Exception as e:  # report, do not hide
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        if d.session:
            try:
                d.call("DELETE", f"/session/{d.session}")
            except Exception:
                pass
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    result["failures"] = failures
    print(json.dumps(result, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
