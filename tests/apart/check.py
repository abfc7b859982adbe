#!/usr/bin/env python3
"""Compares what tests/apart/write.py meant (truth.json) with what casguard
reported (`casguard audit --format json` of the same logs).

    python3 tests/apart/check.py TRUTH.json AUDIT.json [--backend-only]
    python3 tests/apart/check.py TRUTH.json POSTURE.json --posture
    python3 tests/apart/check.py TRUTH.json POSTURE.json --posture-doors POLICY.toml
    python3 tests/apart/check.py TRUTH.json SIMULATE.json --simulate POLICY.toml [--devices] [--known-before T]
    python3 tests/apart/check.py TRUTH.json CHANGE.json --simulate TARGET.toml --baseline IN-FORCE.toml

Runs nothing itself. Prints each disagreement as `id: truth says X, casguard
says Y`; exits 1 if any is not a known casguard bug, or if a known bug is no
longer seen (then its line in KNOWN_BUGS should go). With --backend-only the
audit is of the back ends' W3SVC2 folders alone, compared with the truth's
`backend_only` part. With --posture the report is `casguard posture --format
json` of the same logs (any policy), compared on its Basic authentication
in use; with --posture-doors POLICY, `casguard posture --policy POLICY
--format json` of an estate, compared on each user's doors (state, whether
`blocked_by` names a rule, used, requests, reached, denied), Outlook
mobile's Basic and modern sign-ins, the backdoors (risk, level, evidence)
and the gated users without one, the unused doors and the summary's counts
of them, with what expect.py derives from the truth's requests and
the policy. With --simulate the report is `casguard simulate --policy
POLICY --format json` of an estate written with `--httpproxy none`,
compared with what expect.py says that policy must deny, request by
request, from the truth's `requests` (--devices: simulate was given the
estate's devices.json); with --baseline too, `casguard simulate --baseline
IN-FORCE --policy TARGET --format json`. Standard library only.

The truth speaks this writer's words; the maps below translate them into
casguard's report vocabulary (README "Outputs", and the client ids of
data/clients.toml, of which only `id` and `name` were read).
"""

import copy
import ipaddress
import json
import os
import sys
from collections import defaultdict

# Confirmed casguard bugs, one line each. Each has a model below (what
# casguard reports instead, from facts the truth records in `tags`), so the
# rest of the check stays exact while the bug lives. The main session fixes
# casguard and removes the line; check.py fails while a listed bug is no
# longer seen, so the list stays true.
KNOWN_BUGS = {}


BUG_MODELS = {}


def with_bugs(truth, bugs):
    """The truth as casguard reports it while `bugs` live."""
    t = copy.deepcopy(truth)
    for b in sorted(bugs):
        BUG_MODELS[b](t)
    return t


# This writer's client families -> casguard client ids.
CLIENTS = {
    "outlook-mobile-basic": "outlook-mobile",
    "outlook-mobile-hma": "outlook-mobile-hma",
    # Outlook mobile whose sign-in the line cannot tell (no device type, no
    # user: AutoDetect's anonymous autodiscover.json); casguard's
    # `outlook-mobile` is "Basic, or not known" without a device.
    "outlook-mobile-unknown-auth": "outlook-mobile",
    "apple-mail-ios": "ios-mail",
    "android-mail": "android-mail",
    "samsung-email": "samsung-email",
    "windows-mail": "windows-mail",
    "outlook-windows": "outlook-windows",
    "browser": "browser",
    "mobile-browser": "mobile-browser",
    "ews-third-party": "ews-app",
    "macos-mail": "macos-mail",
    "remote-powershell": "remote-powershell",
    "outlook-mac": "outlook-mac",
    "teams": "teams",
    # [fb-hybrid] Exchange Online's availability service (catalog id).
    "exchange-availability": "exchange-availability",
    # [mrs-proxy] Exchange Online's MRS proxy calls carry no user agent;
    # casguard knows them by their page (catalog id).
    "mrs-proxy": "exchange-mrs",
    # [incidents] a client no catalog entry names (a script's library on
    # ActiveSync).
    "unknown-client": "unknown",
}
# This writer's networks -> casguard's built-in network names.
NETWORKS = {"cloud": "microsoft365", "internal": "internal", "external": "external", "loopback": "loopback"}
ATTACK_KINDS = {"exploit-attempt", "web-shell", "data-theft", "outside-vdirs", "scanner"}
PERSON_FINDINGS = ["cloud-credentials", "cloud-token", "ews-non-outlook", "mobile-on-ews"]


def ip(s):
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        return s


def source_ip(finding):
    """A finding's `source`: {"ip", "network", "requests"} (or a bare address)."""
    src = finding.get("source") or ""
    return src.get("ip", "") if isinstance(src, dict) else src


def cloud_sources(tu):
    """The cloud addresses of a user's Outlook mobile (Basic) requests, as
    sorted (ip, network, requests)."""
    rows = defaultdict(int)
    for d in tu["device_sources"].values():
        if d["client"] != "outlook-mobile-basic":
            continue
        for a, n in d["sources"].items():
            rows[ip(a)] += n
    return sorted((a, "microsoft365", n) for a, n in rows.items()
                  if tu["sources"].get(a, {}).get("network") == "cloud")


def compare(truth, report):
    """Yields (id, truth's value, casguard's value) for each disagreement."""
    out = []

    def differ(key, want, got):
        if want != got:
            out.append((key, want, got))

    s, ts = report["summary"], truth["summary"]
    # HTTP.sys error-log lines are no requests; an audit may skip the file or
    # read it without counting its lines as requests: `lines` and `files`
    # may include them.
    httperr = truth["tags"].get("httperr", {})
    # Exchange's logs of another `#Log-type` (write.py [ews-log]) are named
    # and not read (README "audit"): an audit may count the file in `files`
    # (and its lines, if it counts them); a note must name it.
    other = truth["tags"].get("other-logs", {})
    for k in ("lines", "files"):
        if s.get(k) in {ts[k] + a + b for a in (0, httperr.get(k, 0)) for b in (0, other.get(k, 0))}:
            s = dict(s, **{k: ts[k]})
    if other:
        differ("notes.other-logs", other["name"],
               other["name"] if any(other["name"] in n.replace("\\", "/") for n in report.get("notes", []))
               else report.get("notes"))
    for k in ("lines", "malformed", "requests", "backend_duplicates", "iis_duplicates", "probes", "attacks",
              "exploit_attempts", "failed_sign_ins", "machine", "anonymous", "users", "devices"):
        differ(f"summary.{k}", ts.get(k, 0), s.get(k))
    differ("summary.files", ts["files"], s.get("files"))
    differ("summary.backend_only", False, s.get("backend_only"))

    differ("protocols", truth["protocols"], {k: v for k, v in report["protocols"].items() if v})
    # How people's requests signed in: HttpProxy's AuthenticationType
    # (README "auth_types"), `unknown` for requests counted from IIS lines.
    if "auth_types" in truth:
        differ("auth_types", truth["auth_types"],
               {k: v for k, v in (report.get("auth_types") or {}).items() if v})
    want_clients = defaultdict(int)
    for fam, n in truth["clients"].items():
        want_clients[CLIENTS.get(fam, fam)] += n
    differ("clients", dict(want_clients), {k: v for k, v in report["clients"].items() if v})

    # Users: requests, protocols, clients, sources (over all their devices),
    # ActiveSync devices.
    got_users = {u["user"]: u for u in report["users"]}
    differ("users", sorted(truth["users"]), sorted(got_users))
    for name, tu in truth["users"].items():
        gu = got_users.get(name)
        if gu is None:
            continue
        differ(f"user.{name}.requests", tu["requests"], gu["requests"])
        differ(f"user.{name}.seen", [tu["first_seen"], tu["last_seen"]], [gu.get("first_seen"), gu.get("last_seen")])
        differ(f"user.{name}.protocols", tu["protocols"], {k: v for k, v in gu["protocols"].items() if v})
        clients, sources = defaultdict(int), {}
        for d in gu["devices"]:
            clients[d["client"]] += d["requests"]
            for src in d["sources"]:
                a = ip(src["ip"])
                net, n = sources.get(a, (src["network"], 0))
                sources[a] = (net, n + src["requests"])
        want = defaultdict(int)
        for fam, n in tu["clients"].items():
            want[CLIENTS[fam]] += n
        differ(f"user.{name}.clients", dict(want), dict(clients))
        differ(f"user.{name}.sources",
               {ip(a): (NETWORKS[v["network"]], v["requests"]) for a, v in tu["sources"].items()}, sources)
        by_id = {str(d.get("id") or "").lower(): d for d in gu["devices"]}
        for dev_id, td in tu["devices"].items():
            gd = by_id.get(dev_id.lower())
            key = f"user.{name}.device.{dev_id}"
            if gd is None:
                out.append((key, "present", "absent"))
                continue
            differ(f"{key}.type", td["type"], gd.get("type"))
            differ(f"{key}.client", CLIENTS[td["client"]], gd.get("client"))
            differ(f"{key}.requests", td["requests"], gd.get("requests"))
            differ(f"{key}.commands", td["commands"], {k: v for k, v in (gd.get("commands") or {}).items() if v})
            differ(f"{key}.networks", sorted(NETWORKS[n] for n in td["networks"]),
                   sorted({src["network"] for src in gd["sources"]}))
            if "access" in td:
                differ(f"{key}.access", td["access"], (gd.get("access") or {}).get("state"))
            for k in ("model", "os"):
                if k in td:
                    differ(f"{key}.{k}", td[k], gd.get(k))

    findings = report["findings"]
    for kind in PERSON_FINDINGS:
        differ(f"findings.{kind}", truth["findings"].get(kind, []),
               sorted({f["user"] for f in findings if f["kind"] == kind}))

    # Where Microsoft's cloud syncs Outlook mobile (Basic) from: each cloud
    # address once, with its requests.
    for f in findings:
        if f["kind"] != "cloud-credentials" or f.get("user") not in truth["users"]:
            continue
        differ(f"findings.cloud-credentials.{f['user']}.cloud_sources",
               cloud_sources(truth["users"][f["user"]]),
               sorted((ip(c["ip"]), c["network"], c["requests"]) for c in f.get("cloud_sources") or []))

    # Attacks, per source: requests, exploit attempts, kinds, outcome; and no
    # attack finding from a source the truth does not name.
    by_source = defaultdict(list)
    for f in findings:
        if f["kind"] in ATTACK_KINDS:
            by_source[ip(source_ip(f))].append(f)
    differ("attacks.sources", sorted(ip(a) for a in truth["attacks"]), sorted(by_source))
    for src, ta in truth["attacks"].items():
        fs = by_source.get(ip(src), [])
        if not fs:
            continue
        differ(f"attack.{src}.requests", ta["requests"], sum(f["requests"] for f in fs))
        differ(f"attack.{src}.exploit_attempts", ta["exploit_attempts"],
               sum(f["requests"] for f in fs if f["kind"] == "exploit-attempt"))
        differ(f"attack.{src}.kinds", ta["kinds"], sorted({f["kind"] for f in fs}))
        outcomes = {f.get("outcome") for f in fs}
        got = next((o for o in ("succeeded", "failed", "blocked") if o in outcomes), None)
        differ(f"attack.{src}.outcome", ta["outcome"], got)

    # The password spray (failed sign-ins are compared in the summary).
    sprays = {ip(source_ip(f)): sorted(f.get("users") or []) for f in findings
              if f["kind"] == "password-spray"}
    differ("password_spray", {ip(a): u for a, u in truth["password_spray"].items()}, sprays)
    differ("findings.brute-force", truth["brute_force"],
           sorted({f.get("user") for f in findings if f["kind"] == "brute-force"}))

    differ("probes.requests", truth["probes"]["requests"], report["probes"]["requests"])
    # Managed Availability's user agents, each with its requests (other
    # monitoring, such as a balancer's polls without one, may be listed too).
    got_uas = {x["name"]: x["requests"] for x in report["probes"].get("user_agents", [])}
    differ("probes.user_agents", truth["probes"]["user_agents"],
           {k: got_uas.get(k) for k in truth["probes"]["user_agents"]})

    # Malformed lines: which file, which line.
    got_bad = []
    for m in report.get("malformed", []):
        for first in m.get("first", []):
            got_bad.append((m["file"].replace("\\", "/"), first["line"]))
    want_bad = [(b["file"].replace("\\", "/"), b["line"]) for b in truth["malformed"]]
    matched = [any(g[0].endswith(w[0]) and g[1] == w[1] for g in got_bad) for w in want_bad]
    differ("malformed.where", want_bad, want_bad if all(matched) and len(got_bad) == len(want_bad) else got_bad)
    return out


def compare_backend_only(truth, report):
    """README: with only back-end logs, their hops are people's requests
    (computer accounts apart), `backend_only` is true."""
    out = []
    want = truth["backend_only"]
    for k, v in want["summary"].items():
        if report["summary"].get(k) != v:
            out.append((f"backend_only.summary.{k}", v, report["summary"].get(k)))
    got = {k: v for k, v in report["protocols"].items() if v}
    if got != want["protocols"]:
        out.append(("backend_only.protocols", want["protocols"], got))
    clients = defaultdict(int)
    for fam, n in want["clients"].items():
        clients[CLIENTS.get(fam, fam)] += n
    got = {k: v for k, v in report["clients"].items() if v}
    if got != dict(clients):
        out.append(("backend_only.clients", dict(clients), got))
    got = {u["user"]: u["requests"] for u in report["users"]}
    if got != want["users"]:
        out.append(("backend_only.users", want["users"], got))
    return out


def compare_posture(truth, report):
    """README posture: "Basic authentication in use", per protocol and
    client, with its users; users' requests whose authentication type is
    known (from HttpProxy lines)."""
    out = []
    for k, v in truth["posture"].items():
        if report["summary"].get(k) != v:
            out.append((f"posture.summary.{k}", v, report["summary"].get(k)))
    want = sorted((b["protocol"], CLIENTS.get(b["client"], b["client"]), b["requests"], b["users"])
                  for b in truth["basic_auth"])
    got = sorted((b["protocol"], b["client"], b["requests"], sorted(b["users"])) for b in report["basic_auth"])
    if want != got:
        out.append(("posture.basic_auth", want, got))
    return out


# Confirmed casguard bugs in simulate, one line each, with a model as above
# (what casguard reports instead): BUG_MODELS_SIMULATE[bug](expectation,
# truth) changes the expectation in place.
KNOWN_BUGS_SIMULATE = {
    "httpproxy-twin-drops-connection-address": "(rests on the writer's assumption that HttpProxy's "
    "ClientIpAddress is the client behind a balancer, as X-Forwarded-For names it) with IIS and HttpProxy "
    "logs of the same front end, IP restrictions (IIS `ipSecurity`, which checks the connection's address, "
    "c-ip, unless enableProxyMode) judge a request counted from its HttpProxy line by ClientIpAddress, "
    "though its IIS twin logged the connection's address: seed 7 --httpproxy also, ip-restrictions.toml "
    "(/owa from 10.0.0.0/8 only): heidi's day-2 and judy's OWA through the balancer and Application "
    "Gateway (c-ip 10.0.5.5, 10.0.6.4) are denied, 108 requests for 55, where the IIS logs alone give 55; "
    "the README keeps the twin's `Log=` facts and substatus, not its c-ip",
}


def connection_from_httpproxy(truth):
    """casguard judges IP restrictions of a request counted from its
    HttpProxy line on ClientIpAddress, not on its IIS twin's c-ip."""
    if truth.get("httpproxy") != "also":
        return truth
    return dict(truth, requests=[dict(r, peer=r["ip"]) if r.get("view") == "hp" else r for r in truth["requests"]])


# Bug models that change what the requests are taken to be (the truth); the
# expectation is computed from the result, before the models above.
TRUTH_MODELS_SIMULATE = {"httpproxy-twin-drops-connection-address": connection_from_httpproxy}
# Bug models that are a way of computing the expectation (expect.expect's
# keyword arguments).
EXPECT_MODELS_SIMULATE = {}


BUG_MODELS_SIMULATE = {}


# The same for `simulate --baseline`: BUG_MODELS_BASELINE[bug](expectation,
# truth).
KNOWN_BUGS_BASELINE = {
}
# Bug models that change the truth, for --baseline.
TRUTH_MODELS_BASELINE = {}
# Bug models that are a way of computing the expectation (expect.expect_baseline's keyword arguments).
EXPECT_MODELS_BASELINE = {}


BUG_MODELS_BASELINE = {}


def simulate_view(exp):
    """The expectation (expect.py) in the terms compared."""
    rules = {line: {"denied_requests": r["denied_requests"], "anonymous_requests": r["anonymous_requests"],
                    "users": sorted(r["users"]), "devices": dict(sorted(r["devices"].items())),
                    "provision_denied": r.get("provision_denied", 0)}
             for line, r in exp["rules"].items()}
    backdoors = {b["user"]: {"denied_on": b["denied_on"], "still_reaches": b["still_reaches"],
                             "evidence": {p: {CLIENTS.get(c, c): n for c, n in sorted(cs.items())}
                                          for p, cs in b["evidence"].items()}}
                 for b in exp["backdoors"]}
    return {"requests": exp["requests"], "denied_requests": exp["denied_requests"],
            "grandfathering": exp["grandfathering"],
            "affected_users": exp["affected_users"], "rules": dict(sorted(rules.items(), key=str)),
            "backdoors": backdoors,
            "probes": [exp["probes"]["requests"], exp["probes"]["denied_requests"]],
            "machines": [exp["machines"]["requests"], exp["machines"]["denied_requests"],
                         sorted(exp["machines"]["accounts"])]}


def simulate_got(report, pol, eas_devices):
    """casguard's simulate JSON in the same terms: its rules by the policy
    table holding each rule's line (None: the default), ActiveSync devices
    only (a device of another protocol is keyed by its user agent)."""
    rules = {}
    for r in report["rules"]:
        if r["action"] != "deny" or not r["denied_requests"]:
            continue
        key = pol.block_of(r.get("line"))
        g = rules.setdefault(key, {"denied_requests": 0, "anonymous_requests": 0, "users": set(), "devices": {},
                                   "provision_denied": 0})
        g["denied_requests"] += r["denied_requests"]
        g["provision_denied"] += r.get("provision_denied") or 0
        g["anonymous_requests"] += r.get("anonymous_requests") or 0
        g["users"].update(r["users"])
        for d in r["devices"]:
            if (d["user"], d["id"]) in eas_devices:
                g["devices"][(d["user"], d["id"])] = g["devices"].get((d["user"], d["id"]), 0) + d["requests"]
    for g in rules.values():
        g["users"] = sorted(g["users"])
        g["devices"] = dict(sorted(g["devices"].items()))
    backdoors = {b["user"]: {"denied_on": sorted(b["denied_on"]), "still_reaches": sorted(b["still_reaches"]),
                             "evidence": {p: dict(sorted(cs.items())) for p, cs in b["evidence"].items()}}
                 for b in report["backdoors"]}
    m = report["machines"]
    gf = report.get("grandfathering") or {}
    cut = gf.get("cutover")
    return {"requests": report["summary"]["requests"], "denied_requests": report["denied_requests"],
            "grandfathering": {"cutover": cut and cut.replace("+00:00", "Z"),
                               "provision_denied": gf.get("provision_denied"),
                               "provision_from_known_devices": gf.get("provision_from_known_devices")},
            "affected_users": sorted(report["affected_users"]), "rules": dict(sorted(rules.items(), key=str)),
            "backdoors": backdoors,
            "probes": [report["probes"]["requests"], report["probes"]["denied_requests"]],
            "machines": [m["requests"], m["denied_requests"],
                         sorted({a for r in m.get("rules", []) for a in r.get("accounts", [])})]}


_EXPECTED = {}


def expectation(truth, policy_path, devices, known_before, how):
    """expect.py's expectation, computed once per run and copied (the bug
    models change it)."""
    import expect  # beside this file
    key = (id(truth["requests"]), policy_path, devices, known_before, tuple(sorted(how.items())))
    if key not in _EXPECTED:
        exp = expect.expect(truth, policy_path, devices, known_before, **how)
        exp["args"] = (policy_path, devices, known_before)
        _EXPECTED[key] = (exp, truth)
    exp = _EXPECTED[key][0]
    return dict(copy.deepcopy({k: v for k, v in exp.items() if k != "policy"}), policy=exp["policy"])


def compare_simulate(truth, report, policy_path, bugs, devices=False, known_before=None):
    """Yields (id, expected, casguard's) for each disagreement of simulate
    with expect.py's reading of the truth, with the simulate bugs `bugs`
    (`devices`: simulate was given the estate's devices.json;
    `known_before`: its --known-before)."""
    for b in sorted(bugs & set(TRUTH_MODELS_SIMULATE)):
        truth = TRUTH_MODELS_SIMULATE[b](truth)
    how = {}
    for b in sorted(bugs & set(EXPECT_MODELS_SIMULATE)):
        how.update(EXPECT_MODELS_SIMULATE[b])
    exp = expectation(truth, policy_path, devices, known_before, how)
    for b in sorted(bugs - set(TRUTH_MODELS_SIMULATE) - set(EXPECT_MODELS_SIMULATE)):
        BUG_MODELS_SIMULATE[b](exp, truth)
    eas_devices = {(r["user"], r["device"]) for r in truth["requests"] if r["proto"] == "activesync" and r["device"]}
    want, got = simulate_view(exp), simulate_got(report, exp["policy"], eas_devices)
    if want["grandfathering"]["cutover"] == "export" and got["grandfathering"]["cutover"]:
        got["grandfathering"]["cutover"] = "export"
    out = []
    for k in ("requests", "denied_requests", "affected_users", "probes", "machines", "grandfathering"):
        if want[k] != got[k]:
            out.append((f"simulate.{k}", want[k], got[k]))
    for line in sorted(set(want["rules"]) | set(got["rules"]), key=str):
        w, g = want["rules"].get(line), got["rules"].get(line)
        for k in ("denied_requests", "anonymous_requests", "users", "devices", "provision_denied"):
            wv, gv = (w or {}).get(k), (g or {}).get(k)
            if k == "devices":
                wv = {f"{u}/{d}": n for (u, d), n in (wv or {}).items()}
                gv = {f"{u}/{d}": n for (u, d), n in (gv or {}).items()}
            if wv != gv:
                why = ", ".join(exp["rules"].get(line, {}).get("why", [])) or "-"
                out.append((f"simulate.rule@{line}.{k} ({why})", wv, gv))
    for user in sorted(set(want["backdoors"]) | set(got["backdoors"])):
        w, g = want["backdoors"].get(user), got["backdoors"].get(user)
        if w != g:
            out.append((f"simulate.backdoor.{user}", w, g))
    # A DeviceModel/DeviceOS rule with devices whose model is known from
    # neither the logs nor an export: a note says it can miss requests.
    noted = any("can miss" in n for n in report.get("notes", []))
    if exp["model_note"] != noted:
        out.append(("simulate.notes.rule-can-miss",
                    {"note": exp["model_note"], "devices without model or OS": exp["unjudged_devices"]}, noted))
    return out


# Confirmed casguard bugs in posture's doors and Outlook mobile, one line
# each, with a model: the keyword arguments of expect.expect_posture that
# compute what casguard reports instead (EXPECT_MODELS_POSTURE).
KNOWN_BUGS_POSTURE = {
    "httpproxy-twin-drops-connection-address": "as in KNOWN_BUGS_SIMULATE, posture's tally too: seed 7 "
    "--httpproxy also, ip-restrictions.toml: heidi's OWA 2 reached and 58 denied (the IIS logs alone: 31 and "
    "29), judy's 0 and 24 (24 and 0, `lan-only`), and judy gated without a backdoor",
}
# Bug models that change what the requests are taken to be (the truth), as
# TRUTH_MODELS_SIMULATE.
TRUTH_MODELS_POSTURE = {"httpproxy-twin-drops-connection-address": connection_from_httpproxy}
EXPECT_MODELS_POSTURE = {}


def posture_doors_view(users):
    """expect.expect_posture's expectation in the terms compared."""
    return {u: {"doors": {p: {k: d[k] for k in ("state", "blocked", "used", "requests", "reached", "denied")}
                          for p, d in v["doors"].items()},
                "outlook_mobile": {s: {k: o[k] for k in ("state", "reached", "denied")}
                                   for s, o in v["outlook_mobile"].items()}}
            for u, v in users.items()}


def posture_doors_got(report):
    """casguard posture's JSON in the same terms (README "posture": users[].doors,
    users[].outlook_mobile by `sign_in`)."""
    return {u["user"]: {"doors": {d["protocol"]: dict({k: d.get(k) for k in ("state", "used", "requests", "reached",
                                                                               "denied")},
                                                      blocked=d.get("blocked_by") is not None)
                                  for d in u["doors"]},
                        "outlook_mobile": {o["sign_in"]: {k: o.get(k) for k in ("state", "reached", "denied")}
                                           for o in u.get("outlook_mobile") or []}}
            for u in report["users"]}


# README "posture", "Open and unused": the switch `emit --target exchange`
# writes for each door (Autodiscover never reported).
UNUSED_SWITCHES = {"activesync": "ActiveSyncEnabled", "ews": "EwsEnabled", "owa": "OWAEnabled",
                   "mapi": "MapiHttpEnabled", "rpc": "MAPIBlockOutlookRpcHttp",
                   "powershell": "RemotePowerShellEnabled"}


def posture_findings(users):
    """The unused doors ("a door that is `open` or `lan-only` for a user who
    sent no request over it") and the summary's Outlook mobile counts (Basic
    open to; synced with it: reached mail) from expect.expect_posture."""
    unused = sorted((u, p, UNUSED_SWITCHES[p]) for u, v in users.items() for p, d in v["doors"].items()
                    if p in UNUSED_SWITCHES and d["state"] in ("open", "lan-only") and not d["used"])
    basic = [v["outlook_mobile"]["basic"] for v in users.values()]
    return {"unused": unused, "outlook_mobile_basic_open": sum(b["state"] == "open" for b in basic),
            "outlook_mobile_basic_used": sum(b["reached"] > 0 for b in basic)}


def compare_posture_doors(truth, report, policy_path, bugs):
    """Each user's doors and Outlook mobile sign-ins in `casguard posture
    --policy P --format json` against expect.py's reading of the truth and
    the policy, with the posture bugs `bugs`."""
    import expect  # beside this file
    for b in sorted(bugs & set(TRUTH_MODELS_POSTURE)):
        truth = TRUTH_MODELS_POSTURE[b](truth)
    how = {}
    for b in sorted(bugs - set(TRUTH_MODELS_POSTURE)):
        how.update(EXPECT_MODELS_POSTURE[b])
    exp = expect.expect_posture(truth, policy_path, **how)
    want, got = posture_doors_view(exp), posture_doors_got(report)
    out = []
    if sorted(report.get("protocols") or []) != sorted(expect.DOORS):
        out.append(("posture.protocols", sorted(expect.DOORS), sorted(report.get("protocols") or [])))
    if sorted(want) != sorted(got):
        out.append(("posture.users", sorted(want), sorted(got)))
    f = posture_findings(exp)
    got_unused = sorted((d["user"], d["protocol"], d["switch"]) for d in report["unused"]["doors"])
    if f["unused"] != got_unused:
        out.append(("posture.unused.doors", f["unused"], got_unused))
    per_protocol = defaultdict(int)
    for _, p, _ in f["unused"]:
        per_protocol[p] += 1
    got_per = {k: v for k, v in report["unused"]["per_protocol"].items() if v}
    if dict(per_protocol) != got_per:
        out.append(("posture.unused.per_protocol", dict(per_protocol), got_per))
    for k, v in (("unused_doors", len(f["unused"])), ("outlook_mobile_basic_open", f["outlook_mobile_basic_open"]),
                 ("outlook_mobile_basic_used", f["outlook_mobile_basic_used"])):
        if report["summary"].get(k) != v:
            out.append((f"posture.summary.{k}", v, report["summary"].get(k)))
    want_b, want_without = expect.expect_backdoors(truth, policy_path, **how)
    got_b = {b["user"]: (b["risk"], b["level"], sorted((e["protocol"], e["client"], e["network"], e["requests"],
                                                         e["risk"]) for e in b["evidence"]))
             for b in report["backdoors"]}
    for user in sorted(set(want_b) | set(got_b)):
        if want_b.get(user) != got_b.get(user):
            out.append((f"posture.backdoor.{user}", want_b.get(user), got_b.get(user)))
    if want_without != sorted(report["gated_without_backdoor"]):
        out.append(("posture.gated_without_backdoor", want_without, sorted(report["gated_without_backdoor"])))
    for user in sorted(set(want) & set(got)):
        w, g = want[user], got[user]
        for proto in sorted(set(w["doors"]) | set(g["doors"])):
            wd, gd = w["doors"].get(proto), g["doors"].get(proto)
            if wd != gd:
                why = exp[user]["doors"].get(proto, {}).get("why")
                out.append((f"posture.{user}.{proto} (standard client: {why})", wd, gd))
        for sign_in in sorted(set(w["outlook_mobile"]) | set(g["outlook_mobile"])):
            wo, go = w["outlook_mobile"].get(sign_in), g["outlook_mobile"].get(sign_in)
            if wo != go:
                why = exp[user]["outlook_mobile"].get(sign_in, {}).get("why")
                out.append((f"posture.{user}.outlook_mobile.{sign_in} ({why})", wo, go))
    return out


def main_posture_doors(truth, report, policy_path):
    return report_known_bugs(lambda known: compare_posture_doors(truth, report, policy_path, known),
                             KNOWN_BUGS_POSTURE, "KNOWN_BUGS_POSTURE", f"posture ({policy_path})")


def report_known_bugs(compare, bugs, table, what):
    """Print the disagreements of `compare(known)` with and without the known
    `bugs` (name -> description, from the dict named `table`); 1 if any is
    left unexplained or a known bug no longer shows."""
    raw = compare(set())
    left = compare(set(bugs))
    left_keys = {k for k, _, _ in left}
    for key, want, got in raw:
        if key not in left_keys:
            print(f"known bug {key}: expected {json.dumps(want, ensure_ascii=False)}, "
                  f"casguard {json.dumps(got, ensure_ascii=False)}")
    for key, want, got in left:
        print(f"DISAGREE {key}: expected {json.dumps(want, ensure_ascii=False)} (with the known bugs), "
              f"casguard {json.dumps(got, ensure_ascii=False)}")
    fixed = []
    for bug in sorted(bugs):
        if compare({bug}) == raw:
            continue  # the bug cannot show here
        if len(compare(set(bugs) - {bug})) <= len(left):
            fixed.append(bug)
            print(f"FIXED? {bug}: casguard no longer shows it; remove its line from {table}")
        else:
            print(f"known bug {bug}: {bugs[bug]}")
    print(f"{len(raw)} disagreements of {what} with the truth; {len(left)} not explained by the "
          f"{len(bugs)} known bugs; {len(fixed)} known bugs not seen")
    return 1 if left or fixed else 0


def main_simulate(truth, report, policy_path, devices, known_before):
    return report_known_bugs(
        lambda known: compare_simulate(truth, report, policy_path, known, devices, known_before),
        KNOWN_BUGS_SIMULATE, "KNOWN_BUGS_SIMULATE", f"simulate ({policy_path})")


def compare_baseline(truth, report, baseline_path, target_path, bugs):
    """`simulate --baseline B --policy T` against expect.py's reading of the
    truth under both policies, with the simulate bugs `bugs`."""
    import expect  # beside this file
    for b in sorted(bugs & set(TRUTH_MODELS_BASELINE)):
        truth = TRUTH_MODELS_BASELINE[b](truth)
    how = {}
    for b in sorted(bugs & set(EXPECT_MODELS_BASELINE)):
        how.update(EXPECT_MODELS_BASELINE[b])
    exp = expect.expect_baseline(truth, baseline_path, target_path, **how)
    for b in sorted(bugs - set(TRUTH_MODELS_BASELINE) - set(EXPECT_MODELS_BASELINE)):
        BUG_MODELS_BASELINE[b](exp, truth)
    out = []

    def differ(key, want, got):
        if want != got:
            out.append((key, want, got))

    s = report["summary"]
    for k in ("requests", "unchanged_allowed", "already_denied_requests", "newly_denied_requests",
              "newly_allowed_requests"):
        differ(f"baseline.summary.{k}", exp["summary"].get(k, 0), s.get(k))
    differ("baseline.summary.widens_access", exp["summary"].get("newly_allowed_requests", 0) > 0,
           s.get("widens_access"))
    for k in ("newly_cut_off_users", "already_cut_off_users", "newly_allowed_users"):
        differ(f"baseline.{k}", exp[k], sorted(report[k]))
    for status in ("closed", "still_open", "new"):
        differ(f"baseline.summary.backdoors_{status}",
               sum(b["status"] == status for b in exp["backdoors"].values()), s.get(f"backdoors_{status}"))

    def users(us):
        return {u["user"]: {"requests": u["requests"], "clients": u["clients"]} for u in us}

    def mapped(users_):
        return {u: {"requests": v["requests"],
                    "clients": {p: {CLIENTS.get(c, c): n for c, n in cs.items()} for p, cs in v["clients"].items()}}
                for u, v in users_.items()}

    # Newly cut off per rule of the target, already cut off per rule of the
    # policy in force (by the table holding the rule's line).
    for kind, pol in (("newly_cut_off", exp["target"]), ("already_cut_off", exp["baseline"])):
        got = {}
        for r in report[kind]:
            key = pol.block_of(r.get("line"))
            g = got.setdefault(key, {"requests": 0, "anonymous_requests": 0, "users": {}})
            g["requests"] += r["requests"]
            g["anonymous_requests"] += r["anonymous_requests"]
            for u, v in users(r["users"]).items():
                x = g["users"].setdefault(u, {"requests": 0, "clients": {}})
                x["requests"] += v["requests"]
                for p, cs in v["clients"].items():
                    for c, n in cs.items():
                        x["clients"].setdefault(p, {})
                        x["clients"][p][c] = x["clients"][p].get(c, 0) + n
        want = {k: dict(v, users=mapped(v["users"])) for k, v in exp[kind].items()}
        for key in sorted(set(want) | set(got), key=str):
            differ(f"baseline.{kind}@{key}", want.get(key), got.get(key))
    # Newly allowed: per user (casguard groups them by the name of the rule
    # that denies them today), summed over the groups: one user's devices
    # can be denied today by two rules (ivan's iPhone by his personal block,
    # his iPad by the default access level).
    def add(into, u, v):
        x = into.setdefault(u, {"requests": 0, "clients": {}})
        x["requests"] += v["requests"]
        for p, cs in v["clients"].items():
            for c, n in cs.items():
                x["clients"].setdefault(p, {})
                x["clients"][p][c] = x["clients"][p].get(c, 0) + n

    want, got = {}, {}
    for g in exp["newly_allowed"].values():
        for u, v in mapped(g["users"]).items():
            add(want, u, v)
    for r in report["newly_allowed"]:
        for u, v in users(r["users"]).items():
            add(got, u, v)
    differ("baseline.newly_allowed.users", want, got)
    want_b = {u: dict(b, evidence={p: {CLIENTS.get(c, c): n for c, n in cs.items()} for p, cs in b["evidence"].items()})
              for u, b in exp["backdoors"].items()}
    got_b = {b["user"]: {k: (sorted(v) if isinstance(v, list) else v) for k, v in b.items() if k != "user"}
             for b in report["backdoors"]}
    for u in sorted(set(want_b) | set(got_b)):
        differ(f"baseline.backdoor.{u}", want_b.get(u), got_b.get(u))
    for k in ("probes", "machines"):
        e = exp[k]
        differ(f"baseline.{k}", [e["requests"], e["denied_today"], e["denied_after"]],
               [report[k]["requests"], report[k]["denied_today"], report[k]["denied_after"]])
    return out


def main_baseline(truth, report, baseline_path, target_path):
    return report_known_bugs(
        lambda known: compare_baseline(truth, report, baseline_path, target_path, known),
        KNOWN_BUGS_BASELINE, "KNOWN_BUGS_BASELINE", "simulate --baseline")


def report_disagreements(found, what):
    """Print each disagreement of a check without known bugs; 1 if any."""
    for key, want, got in found:
        print(f"DISAGREE {key}: truth {json.dumps(want)}, casguard {json.dumps(got)}")
    print(f"{len(found)} disagreements with the truth ({what})")
    return 1 if found else 0


def main(argv):
    backend_only = "--backend-only" in argv
    posture = "--posture" in argv
    policy = baseline = known_before = None
    doors = None
    for flag in ("--simulate", "--baseline", "--known-before", "--posture-doors"):
        if flag in argv:
            i = argv.index(flag)
            if i + 1 >= len(argv):
                print(__doc__, file=sys.stderr)
                return 2
            if flag == "--simulate":
                policy = argv[i + 1]
            elif flag == "--baseline":
                baseline = argv[i + 1]
            elif flag == "--posture-doors":
                doors = argv[i + 1]
            else:
                known_before = argv[i + 1]
            argv = argv[:i] + argv[i + 2:]
    devices = "--devices" in argv
    argv = [a for a in argv if a not in ("--backend-only", "--posture", "--devices")]
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        truth = json.load(f)
    with open(argv[2], encoding="utf-8") as f:
        report = json.load(f)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if doors is not None:
        return main_posture_doors(truth, report, doors)
    if policy is not None and baseline is not None:
        return main_baseline(truth, report, baseline, policy)
    if policy is not None:
        return main_simulate(truth, report, policy, devices, known_before)
    if posture:
        return report_disagreements(compare_posture(truth, report), "posture")
    if backend_only:
        return report_disagreements(compare_backend_only(truth, report), "back ends only")
    unknown = [b for b in KNOWN_BUGS if b not in BUG_MODELS]
    assert not unknown, f"KNOWN_BUGS without a model: {unknown}"
    raw = compare(truth, report)
    left = compare(with_bugs(truth, KNOWN_BUGS), report)
    left_keys = {k for k, _, _ in left}
    for key, want, got in raw:
        if key not in left_keys:
            print(f"known bug {key}: truth {json.dumps(want)}, casguard {json.dumps(got)}")
    for key, want, got in left:
        print(f"DISAGREE {key}: expected {json.dumps(want)} (the truth, with the known bugs), "
              f"casguard {json.dumps(got)}")
    fixed = []
    for bug in sorted(KNOWN_BUGS):
        if with_bugs(truth, {bug}) == truth:
            continue  # the bug cannot show in these logs (say, IIS logs alone)
        if len(compare(with_bugs(truth, set(KNOWN_BUGS) - {bug}), report)) <= len(left):
            fixed.append(bug)
            print(f"FIXED? {bug}: casguard no longer shows it; remove its line from KNOWN_BUGS")
    for bug, what in sorted(KNOWN_BUGS.items()):
        if bug not in fixed and with_bugs(truth, {bug}) != truth:
            print(f"known bug {bug}: {what}")
    print(f"{len(raw)} disagreements with the truth; {len(left)} not explained by the "
          f"{len(KNOWN_BUGS)} known bugs; {len(fixed)} known bugs not seen")
    return 1 if left or fixed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
