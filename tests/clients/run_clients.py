#!/usr/bin/env python3
"""Real Exchange clients against `casguard gateway` in front of a mock upstream.

exchangelib (EWS) and pyactivesync (ActiveSync 16.1) are pointed at the
gateway's TLS listener. The policy allows EWS only for Outlook user agents
(Exchange's EwsAllowOutlook emulation) and denies ActiveSync Provision from
Outlook mobile. Each client must be blocked or allowed exactly as the policy
says: blocked requests get the gateway's status and never reach the mock;
allowed ones reach it. (The mock answers 200 with an empty body, so allowed
clients then fail to parse it; that is expected and not checked.)

Usage: python3 run_clients.py [PATH/TO/casguard]   (default target/debug/casguard)
Exit 0 when every check passes.
"""
import http.server
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import urllib3

warnings.filterwarnings("ignore")
urllib3.disable_warnings()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASGUARD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "casguard")
OUTLOOK_UA = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"

POLICY = """
default = "allow"

[ews_access]
ews_enabled = true
application_access_policy = "EnforceAllowList"
list = []
allow_outlook = true
allow_mac_outlook = true

[[rule]]
name = "block Outlook mobile provisioning"
action = "deny"
protocol = "activesync"
command = "Provision"
client = "outlook-mobile"
"""

SEEN = []


class Mock(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        SEEN.append((self.command, self.path, self.headers.get("User-Agent", "")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    tmp = tempfile.mkdtemp()
    cert, key, policy = (os.path.join(tmp, f) for f in ("cert.pem", "key.pem", "policy.toml"))
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True)
    with open(policy, "w") as f:
        f.write(POLICY)
    # Trust the test certificate: requests lets REQUESTS_CA_BUNDLE override
    # verify=False, so pointing it at our certificate works everywhere.
    os.environ["REQUESTS_CA_BUNDLE"] = cert
    os.environ.pop("CURL_CA_BUNDLE", None)

    mock = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mock)
    threading.Thread(target=mock.serve_forever, daemon=True).start()
    port = free_port()
    gw = subprocess.Popen(
        [CASGUARD, "gateway", "--policy", policy, "--listen", f"127.0.0.1:{port}", "--tls-cert", cert,
         "--tls-key", key, "--upstream", f"http://127.0.0.1:{mock.server_address[1]}",
         "--access-log", os.path.join(tmp, "logs")],
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        while True:
            line = gw.stderr.readline()
            if "listening on" in line:
                break
            if not line or time.time() > deadline:
                raise SystemExit(f"gateway did not start: {line}")
        threading.Thread(target=lambda: [None for _ in gw.stderr], daemon=True).start()
        server = f"127.0.0.1:{port}"

        # --- ActiveSync: pyactivesync ---
        import pyactivesync
        import requests

        def provision(device_type, device_id):
            c = pyactivesync.Client(server, "CONTOSO\\jdoe", "pw", device_id=device_id, user="jdoe@contoso.com",
                                    device_type=device_type, verify_ssl=False, timeout=10)
            try:
                c.provision()
                return 200
            except requests.HTTPError as e:
                return e.response.status_code
            except Exception as e:  # allowed, but the mock's empty answer is not WBXML
                print(f"     ({device_type}: {type(e).__name__}: {e})")
                return 200
            finally:
                c.close()

        status = provision("Outlook", "OUTLOOK0001")
        check(status == 403, f"pyactivesync as Outlook mobile: Provision denied 403 (got {status})")
        check(not any("DeviceType=Outlook" in p for _, p, _ in SEEN), "denied Provision never reached Exchange")
        provision("iPhone", "IPHONE0001")
        check(any("Cmd=Provision" in p and "DeviceType=iPhone" in p for _, p, _ in SEEN),
              "pyactivesync as iPhone: Provision reached Exchange")

        # --- EWS: exchangelib ---
        from exchangelib import Account, BASIC, Configuration, Credentials, DELEGATE, Version
        from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter
        from exchangelib.version import EXCHANGE_2016

        BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter

        def ews(user_agent, login):
            if user_agent:
                BaseProtocol.USERAGENT = user_agent
            before = len(SEEN)
            config = Configuration(service_endpoint=f"https://{server}/EWS/Exchange.asmx",
                                   credentials=Credentials(login, "pw"), auth_type=BASIC,
                                   version=Version(build=EXCHANGE_2016), max_connections=1)
            try:
                account = Account("jdoe@contoso.com", config=config, autodiscover=False, access_type=DELEGATE)
                list(account.protocol.get_roomlists())
            except Exception as e:  # denied (403) or the mock's empty answer
                err = e
            else:
                err = None
            BaseProtocol.close_all() if hasattr(BaseProtocol, "close_all") else None
            return SEEN[before:], err

        # A different login each time: exchangelib caches one protocol per endpoint and login.
        reached, err = ews(None, "CONTOSO\\jdoe")
        check(not any(p.lower().startswith("/ews/") for _, p, _ in reached),
              f"exchangelib with its own user agent: denied, never reached Exchange ({type(err).__name__})")
        reached, _ = ews(OUTLOOK_UA, "CONTOSO\\jdoe2")
        check(any(p.lower().startswith("/ews/") and ua == OUTLOOK_UA for _, p, ua in reached),
              "exchangelib as Outlook: allowed, reached Exchange")
    finally:
        gw.terminate()
        gw.wait(timeout=30)
        mock.shutdown()

    # The access log names the rule that denied.
    logs = os.path.join(tmp, "logs")
    text = "".join(open(os.path.join(logs, f)).read() for f in os.listdir(logs))
    check(re.search(r" 403 0 \d+ \d+ \S+ deny block\+Outlook\+mobile\+provisioning", text) is not None,
          "access log records the denial and its rule")
    check("pw" not in re.sub(r"[A-Za-z0-9]pw|pw[A-Za-z0-9]", "", text), "no password in the access log")
    if failures:
        print("upstream saw:", *SEEN, sep="\n  ")
        print("access log:\n" + text)
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all client checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
