#!/usr/bin/env python3
"""What `casguard simulate --policy P --format json` must report for an estate
of tests/apart/write.py, computed from the writer's own truth (its
`requests`: each request as it meant it) and the policy file, by the
semantics Microsoft documents for each mechanism and the README states for
casguard's own rules. Never from casguard's code.

    python3 tests/apart/expect.py TRUTH.json POLICY.toml [--devices] [--known-before TIME]

check.py --simulate compares it with casguard's report. Standard library
only (tomllib: Python 3.11+).

Sources, cited as [name] (and write.py's names):
- [readme-policy] README "The policy file": the syntax; the emulation
  blocks run before the `[[rule]]`s in the order URL Rewrite (global), IP
  restrictions, request filtering, `iis_filter`, URL Rewrite, authentication
  policies, `mailbox_protocols`, `ews_access`, `device_access`; "the first
  rule that matches decides"; conditions ANDed, values ORed; `unless`: each
  condition given is one exception; a path is a prefix or a glob with `*`,
  any case; `user_agent` matching ignores case unless `case_sensitive`.
- [readme-simulate] README "simulate": counting people's requests only, per
  rule; backdoors: "each denied user's mail protocols that stay open ...
  with the clients behind them"; probes and computer accounts apart.
- [iis-rf] IIS request filtering `filteringRules`: deny strings match a
  substring of the whole header (iis-docs "Using enhanced request filtering
  features in IIS"); case: not documented, casguard assumes any case
  [readme-policy], taken here too. Paths: IIS configuration paths are
  case-insensitive and apply to the path and below (whole segments).
- [ews] EWS application access (Set-OrganizationConfig, Set-CASMailbox,
  "How to: Control access to EWS in Exchange"; the evaluation order of
  Exchange's `CallerAccessAllowed` in the reference notes §3a): EwsEnabled
  (mailbox ?? organisation; unset: allow, nothing else checked; $false:
  deny); then a user agent containing "Microsoft Office Outlook" or
  "Microsoft Outlook" is decided by EwsAllowOutlook, else "MacOutlook" by
  EwsAllowMacOutlook, else "Microsoft-Entourage" by EwsAllowEntourage, each
  the mailbox's value ?? the organisation's, when set ("they take
  precedence"); then the mailbox's policy and list if it has a policy, else
  the organisation's; EnforceAllowList: allowed iff an entry matches (an
  empty list blocks all, as documented); EnforceBlockList: allowed iff none
  does. Patterns: `*` any; `*X*` contains; `*X` ends with; `X*` starts
  with (case-sensitive); else equal, ignoring case. Not for a mailbox
  move's `/EWS/MRSProxy.svc`: Exchange's front end routes it to the
  Mailbox Replication Service, which checks only its admin roles, never
  EWS's settings (decompiled `MrsProxyRequestHandler.IsMrsRequest` and
  `MRSProxyAuthorizationManager`, PiratesRE/exchange_diff; apart38).
- [abq] ActiveSync device access (New-ActiveSyncDeviceAccessRule,
  Set-ActiveSyncOrganizationSettings, Set-CASMailbox
  -ActiveSyncAllowedDeviceIDs/-ActiveSyncBlockedDeviceIDs; Exchange 2010 SP1
  "Determining a Mobile Device's Access State"): a signed-in request only
  (its step 1 is "authenticated?"); then personal block, personal
  allow, a Block rule, a Quarantine rule, an Allow rule, then the
  organisation's DefaultAccessLevel. A query string matches exactly ("no
  wildcards or partial matches"); case: not documented, casguard assumes any
  case, taken here too. Quarantine gives the device no mail: a denial.
  DeviceModel is what Exchange logged for the device (`DevModel` in `&Log=`,
  [eas-log]), for all its requests [readme "--devices": "judges all of a
  device's requests by them, as Exchange does"].
- [rewrite] IIS URL Rewrite (iis-docs "URL Rewrite Module Configuration
  Reference"): a rule's `match url` and its conditions ignore case unless
  `ignoreCase="false"` (the default is true); a rule in a virtual
  directory's web.config matches the URL path below that directory,
  without its leading slash; CustomResponse and AbortRequest end the
  request.
- [authpol] authentication policies (New-AuthenticationPolicy,
  Set-User -AuthenticationPolicy, Set-OrganizationConfig
  -DefaultAuthenticationPolicy; README "The policy file": "legacy" is Basic,
  Digest, NTLM and Kerberos, Negotiate carrying them, "modern" OAuth; a
  user's policy replaces the default; OWA is not covered; they decide only
  requests whose authentication type is known, from HttpProxy lines).
- [inventory] README "simulate and inventory build", "--devices": a device
  is known at the cut-over if the logs saw it before (as `inventory build
  --until`) or its partnership's FirstSyncTime is before it; a `device =
  "new"` rule denies the others; grandfathering counts denied Provision
  requests and those of known devices.
- [iis-rf2] IIS request filtering (iis-docs `requestFiltering`:
  `fileExtensions` "the file name extension", 404.7;
  `denyQueryStringSequences`, 404.18, case-insensitive, on the query string
  the client sent).
- [iis-ip] IIS `ipSecurity` (iis-docs `system.webServer/security/ipSecurity`):
  `allowUnlisted` ("processed last in ordering": the entries first, in
  order), `<add ipAddress subnetMask allowed>`, `denyAction`
  (Forbidden: 403.503), `enableProxyMode` (default false: the connection's
  address is checked, not X-Forwarded-For).
- [casmbx] Set-CASMailbox: ActiveSyncEnabled, OWAEnabled; MAPIEnabled $false
  disables MAPI clients (MAPI over HTTP and Outlook Anywhere);
  MapiHttpEnabled (mailbox ?? organisation) MAPI over HTTP only;
  MAPIBlockOutlookRpcHttp Outlook Anywhere only.
"""

import fnmatch
import ipaddress
import json
import re
import sys
import tomllib
from collections import defaultdict

import check  # beside this file

# [readme-simulate] the protocols a person reads mail over, for "still
# reaches mail over another protocol": ActiveSync, EWS, OWA, MAPI over HTTP, Outlook Anywhere (posture's
# doors less Autodiscover and remote PowerShell, which carry no mail).
MAIL_PROTOCOLS = ("activesync", "ews", "owa", "mapi", "rpc")
# This writer's client families -> casguard's client ids (check.py's map).
CLIENTS = check.CLIENTS
# This writer's networks -> casguard's built-in names.
NETWORKS = {"cloud": "microsoft365", "internal": "internal", "external": "external", "loopback": "loopback"}


# casguard compiles the mailbox settings into one rule per switch (or per
# group of mailboxes with the same EWS policy), each named by the first
# mailbox's table: what they deny is compared per mechanism, not per
# mailbox's table.
FOLD = {"mailbox_protocols.mailbox": "mailbox_protocols", "ews_access.user": "ews_access",
        "url_rewrite.rule": "url_rewrite",
        "auth_policies.policy": "auth_policies", "auth_policies.user": "auth_policies"}


def as_list(v):
    return [] if v is None else (v if isinstance(v, list) else [v])


def blocks(text):
    """Each table header of the policy file: (line, name), in order."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?", line)
        if m:
            out.append((i, m.group(1)))
    return out


class Policy:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        self.doc = tomllib.loads(self.text)
        self.blocks = blocks(self.text)
        self.default = self.doc.get("default", "allow")
        # For check.py's bug model only: judge requests naming no user by the
        # organisation's mailbox settings, as casguard does.
        self.anonymous_as_org = False
        # For check.py's bug model only: judge a signed-in ActiveSync
        # request that names no device by the device access rules, as
        # casguard does.
        self.deviceless_abq = False

    def line_of(self, name, index=0):
        """The header line of the index-th table called `name`."""
        return [ln for ln, n in self.blocks if n == name][index]

    def block_of(self, line):
        """The header line of the table holding `line` (a rule's line as
        casguard reports it), or None; a mailbox's table is counted with its
        mechanism's (FOLD)."""
        if line is None:
            return None
        best = None
        for ln, name in self.blocks:
            if ln <= line:
                best = (ln, name)
        if best is None:
            return None
        if best[1] in FOLD:
            return self.line_of(FOLD[best[1]])
        return best[0]


def same_user(names, user):
    return user is not None and any(str(n).lower() == user for n in as_list(names))


def own_entry(pol, table, entries, user):
    """The first of `entries` (the `[[table]]`s) naming `user`, and its
    header line; ({}, None) when none does."""
    for i, e in enumerate(entries):
        if same_user(e.get("user"), user):
            return e, pol.line_of(table, i)
    return {}, None


def own_or_org(key, mine, mine_line, org, org_line):
    """A mailbox's own setting when it has one ($null is none), else the
    organisation's, with the line of the table it came from."""
    if mine.get(key) is not None:
        return mine[key], mine_line
    return org.get(key), org_line


def path_matches(patterns, stem):
    """[readme-policy][iis-rf] a prefix by whole segments, or a glob; any case."""
    s = stem.lower()
    for p in as_list(patterns):
        p = p.lower()
        if "*" in p:
            if fnmatch.fnmatchcase(s, p):
                return True
        elif s == p.rstrip("/") or s.startswith(p.rstrip("/") + "/"):
            return True
    return False


def ua_matches(cond, ua):
    ua = ua or ""
    cs = cond.get("case_sensitive", False)
    u = ua if cs else ua.lower()

    def f(x):
        return x if cs else x.lower()

    return (any(f(x) in u for x in as_list(cond.get("contains")))
            or any(u.startswith(f(x)) for x in as_list(cond.get("prefix")))
            or any(u == f(x) for x in as_list(cond.get("exact"))))


def conditions_match(cond, req, ranges):
    """[readme-policy] every condition given holds (values ORed)."""
    for key, v in cond.items():
        if key in ("name", "action", "status", "substatus", "unless"):
            continue
        if key == "protocol":
            ok = req["proto"] in as_list(v)
        elif key == "path":
            ok = path_matches(v, req["stem"])
        elif key == "user_agent":
            ok = ua_matches(v, req["ua"])
        elif key == "user":
            ok = same_user(v, req["user"])
        elif key == "network":
            ok = any(NETWORKS[req["network"]] == n or
                     any(ipaddress.ip_address(req["ip"]) in ipaddress.ip_network(c, strict=False)
                         for c in ranges.get(n, []))
                     for n in as_list(v))
        elif key == "cidr":
            ok = any(ipaddress.ip_address(req["ip"]) in ipaddress.ip_network(c, strict=False) for c in as_list(v))
        elif key == "device_type":
            ok = (req.get("dtype") or "").lower() in [x.lower() for x in as_list(v)]
        elif key == "auth":
            # [readme-policy] `oauth` and `bearer` both mean an OAuth token;
            # an IIS line's type is not known: no auth rule matches it.
            want = {x.lower() for x in as_list(v)}
            if want & MODERN:
                want |= MODERN
            ok = auth_of(req) in want
        elif key == "device":
            # [inventory] "new" or "known" at the cut-over; no ActiveSync
            # device, no match.
            if req.get("known") is None:
                ok = False
            else:
                ok = (v == "known") == req["known"]
        elif key == "client":
            ok = req.get("client") is not None and CLIENTS.get(req["client"], req["client"]) in as_list(v)
        elif key == "command":
            ok = req.get("command") in as_list(v)
        else:
            raise ValueError(f"expect.py does not model the condition `{key}`")
        if not ok:
            return False
    return True


def ews_pattern(p, ua):
    """[ews] Exchange's user-agent patterns."""
    if p in ("*", "**"):
        return True
    if not ua:
        return False
    if len(p) > 1 and p.startswith("*") and p.endswith("*"):
        return p[1:-1] in ua
    if p.startswith("*"):
        return ua.endswith(p[1:])
    if p.endswith("*"):
        return ua.startswith(p[:-1])
    return ua.lower() == p.lower()


def decide(pol, req, models):
    """(action, header line of the deciding table or None for the default,
    why) for one request. The mechanisms only deny: one that lets a request
    through leaves it to the next [readme-policy: they "compile to ordinary
    rules evaluated before the [[rule]]s"]."""
    for mechanism in (ip_restrictions, request_filtering, iis_filter, url_rewrite, auth_policies,
                      mailbox_protocols, ews_access, device_access):
        d = mechanism(pol, req, models)
        if d is not None and d[0] == "deny":
            return d
    return rules(pol, req)


def ip_restrictions(pol, req, models):
    """[iis-ip] IIS IP and Domain Restrictions: the section of the most
    specific path applies alone; the first entry, in the order listed, that
    holds the connection's address decides, else allowUnlisted ("processed
    last in ordering", IPSecuritySection; IIS Manager's "View Ordered
    List"); a denial is
    403.503 (Forbidden). The address is the TCP peer, not X-Forwarded-For
    (`enableProxyMode` defaults to false)."""
    best, best_i = None, None
    for i, r in enumerate(pol.doc.get("ip_restrictions", [])):
        if path_matches(r.get("path", "/"), req["stem"]) and (best is None or len(r["path"]) > len(best["path"])):
            best, best_i = r, i
    if best is None:
        return None
    addr = ipaddress.ip_address(req["ip"] if best.get("enable_proxy_mode") else req["peer"])
    hits = [e for e in best.get("entries", []) if addr in ipaddress.ip_network(e["cidr"], strict=False)]
    allowed = hits[0]["allowed"] if hits else best.get("allow_unlisted", True)
    if not allowed:
        return "deny", pol.line_of("ip_restrictions", best_i), f"ip_restrictions {best['path']}"
    return None


def request_filtering(pol, req, models):
    """[iis-rf] IIS request filtering in force at the most specific path (the
    README's blocks are what is in force there, merged): a denied file
    extension of the last segment (404.7), then query string sequences
    (404.18, case-insensitive), on the request's own query: Exchange's
    `&CorrelationID=<empty>;&cafeReqId=...;` is added to the log line after
    the fact [hp-join], never part of what IIS filtered."""
    best, best_i = None, None
    for i, r in enumerate(pol.doc.get("request_filtering", [])):
        if path_matches(r.get("path", "/"), req["stem"]) and (best is None or len(r["path"]) > len(best["path"])):
            best, best_i = r, i
    if best is None or best.get("enabled") is False:
        return None
    line = pol.line_of("request_filtering", best_i)
    last = req["stem"].rstrip("/").rsplit("/", 1)[-1]
    ext = "." + last.rsplit(".", 1)[1].lower() if "." in last else ""
    for e in best.get("file_extensions", []):
        if ext and e["extension"].lower() == ext and not e.get("allowed", True):
            return "deny", line, f"request_filtering {best['path']} extension {ext}"
    q = (req.get("query") or "").lower()
    for seq in best.get("deny_query_string_sequences", []):
        if seq.lower() in q:
            return "deny", line, f"request_filtering {best['path']} query {seq!r}"
    return None


def iis_filter(pol, req, models):
    doc = pol.doc
    ua = req["ua"] or ""

    # [iis-rf] request filtering rules on a path, on the user agent.
    for i, r in enumerate(doc.get("iis_filter", {}).get("rule", [])):
        if not path_matches(r.get("path", "/"), req["stem"]):
            continue
        if any(h.lower() == "user-agent" for h in r.get("scan_headers", [])) and \
                any(s.lower() in ua.lower() for s in r.get("deny_strings", [])):
            return "deny", pol.line_of("iis_filter.rule", i), f"iis_filter {r['name']!r}"
    return None


def url_rewrite(pol, req, models):
    """[rewrite] URL Rewrite rules of a virtual directory (not global), in
    order: the URL pattern on the path below the directory (no leading
    slash), every condition on the user agent (MatchAll), both ignoring case
    (`ignoreCase` defaults to true); CustomResponse and AbortRequest answer
    the request themselves."""
    stem = req["stem"]
    for i, block in enumerate(pol.doc.get("url_rewrite", [])):
        if block.get("global") or not path_matches(block.get("path", "/"), stem):
            continue
        below = stem[len(block["path"].rstrip("/")):].lstrip("/")
        for r in block.get("rule", []):
            if not re.search(r.get("url", ".*"), below, re.IGNORECASE):
                continue
            conds = r.get("conditions", [])
            if any(c["input"] != "{HTTP_USER_AGENT}" for c in conds):
                raise ValueError("expect.py models URL Rewrite conditions on {HTTP_USER_AGENT} only")
            if all(re.search(c["pattern"], req["ua"] or "", re.IGNORECASE) for c in conds):
                if r.get("action") in ("CustomResponse", "AbortRequest"):
                    return "deny", pol.line_of("url_rewrite", i), f"url_rewrite {r['name']!r}"
    return None


# [authpol] New-AuthenticationPolicy's protocols, as casguard's policy
# file names them, and this writer's protocols.
AUTH_PROTOCOLS = {"activesync": "activesync", "webservices": "ews", "autodiscover": "autodiscover",
                  "mapi": "mapi", "offlineaddressbook": "oab", "rpc": "rpc"}
# [authpol] "legacy" sign-ins: Basic, Digest, NTLM, Kerberos (Negotiate
# carries NTLM or Kerberos); "modern": OAuth tokens (Bearer).
LEGACY = {"basic", "digest", "ntlm", "kerberos", "negotiate"}
MODERN = {"oauth", "bearer"}


def auth_of(req):
    """The request's authentication type as its line gives it: HttpProxy's
    AuthenticationType, lower-cased; None for IIS lines or an empty field."""
    return (req.get("auth") or "").lower() or None


def auth_policies(pol, req, models):
    """[authpol] Exchange 2019 CU2+ authentication policies
    (New-AuthenticationPolicy -BlockLegacyAuth*, Set-User
    -AuthenticationPolicy, Set-OrganizationConfig
    -DefaultAuthenticationPolicy): the user's policy, else the default; a
    protocol blocked for legacy (or modern) sign-ins refuses them. Only a
    request whose authentication type its line gives can be judged (IIS
    logs do not record it: README). They act before authentication, on the
    credentials presented ("authentication policies operate
    pre-authentication", Microsoft's Exchange Online documentation of them),
    so a sign-in that failed is refused too; one whose account the line
    does not name (an HttpProxy 401) is judged by the default policy."""
    ap = pol.doc.get("auth_policies")
    auth, user = auth_of(req), req["user"]
    if ap is None or auth is None:
        return None
    name = ap.get("default")
    for u in ap.get("user", []):
        if same_user(u.get("user"), user):
            name = u.get("policy")
    for i, p in enumerate(ap.get("policy", [])):
        if p.get("name") != name:
            continue
        line = pol.line_of("auth_policies.policy", i)
        for key, kinds in (("block_legacy", LEGACY), ("block_modern", MODERN)):
            protos = {AUTH_PROTOCOLS.get(x.lower()) for x in p.get(key, [])}
            if req["proto"] in protos and auth in kinds:
                return "deny", line, f"{name}: {key} {req['proto']}"
    return None


def mailbox_protocols(pol, req, models):
    """[casmbx] the mailbox's protocol switches; MapiHttpEnabled is the
    mailbox's value, else the organisation's. A request naming no user
    (the anonymous first legs of an NTLM or Negotiate sign-in) is no
    mailbox's: Exchange checks a mailbox's settings once it knows the
    mailbox, after IIS authenticated the request, so none applies."""
    doc = pol.doc
    proto, user = req["proto"], req["user"]
    mp = doc.get("mailbox_protocols")
    if mp is None or (user is None and not pol.anonymous_as_org):
        return None
    mine, line = own_entry(pol, "mailbox_protocols.mailbox", mp.get("mailbox", []), user)
    if line is None:
        line = pol.line_of("mailbox_protocols")
    if proto == "activesync" and mine.get("activesync_enabled") is False:
        return "deny", line, "ActiveSyncEnabled $false"
    if proto == "owa" and mine.get("owa_enabled") is False:
        return "deny", line, "OWAEnabled $false"
    if proto in ("mapi", "rpc") and mine.get("mapi_enabled") is False:
        return "deny", line, "MAPIEnabled $false"
    if proto == "mapi":
        http, where = own_or_org("mapi_http_enabled", mine, line, mp, pol.line_of("mailbox_protocols"))
        if http is False:
            return "deny", where, "MapiHttpEnabled $false"
    if proto == "rpc" and mine.get("mapi_block_outlook_rpc_http") is True:
        return "deny", line, "MAPIBlockOutlookRpcHttp $true"
    return None


def ews_access(pol, req, models):
    doc = pol.doc
    proto, user, ua = req["proto"], req["user"], req["ua"] or ""
    # [ews] the EWS application access policy.
    ews = doc.get("ews_access")
    # Exchange judges the caller once it is authenticated: a request naming
    # no user (an NTLM leg) is answered by IIS's challenge, not by this.
    # The URL's segments as Exchange reads them: "/", "EWS/", "MRSProxy.svc" (a "/" after it aside).
    segments = req["stem"].lower().split("/")
    mrs = segments[:2] == ["", "ews"] and segments[2:] in (["mrsproxy.svc"], ["mrsproxy.svc", ""])
    if ews is not None and proto == "ews" and not mrs and (user is not None or pol.anonymous_as_org):
        org_line = pol.line_of("ews_access")
        mine, mine_line = own_entry(pol, "ews_access.user", ews.get("user", []), user)

        def setting(key):
            return own_or_org(key, mine, mine_line, ews, org_line)

        enabled, line = setting("ews_enabled")
        if enabled is None:
            return "allow", line, "EwsEnabled $null"
        if enabled is False:
            return "deny", line, "EwsEnabled $false"
        switch = None
        if "Microsoft Office Outlook" in ua or "Microsoft Outlook" in ua:
            switch = "allow_outlook"
        elif "MacOutlook" in ua:
            switch = "allow_mac_outlook"
        elif "Microsoft-Entourage" in ua:
            switch = "allow_entourage"
        if switch:
            v, line = setting(switch)
            if v is not None:
                return ("allow" if v else "deny"), line, f"{switch} {v}"
        if mine.get("application_access_policy") is not None:
            kind, lst, line = mine["application_access_policy"], mine.get("list", []), mine_line
        else:
            kind, lst, line = ews.get("application_access_policy"), ews.get("list", []), org_line
        if kind == "EnforceAllowList" and not any(ews_pattern(p, ua) for p in lst):
            return "deny", line, "not on the EwsAllowList"
        if kind == "EnforceBlockList" and any(ews_pattern(p, ua) for p in lst):
            return "deny", line, "on the EwsBlockList"
    return None


def device_access(pol, req, models):
    doc = pol.doc
    proto, user, ua = req["proto"], req["user"], req["ua"] or ""
    # [abq] ActiveSync device access. Its first step is "authenticated?"
    # (Determining a Mobile Device's Access State, step 1): a request that
    # names nobody gets IIS's challenge, not a device access state.
    da = doc.get("device_access")
    # A request naming no device (an OPTIONS without a query) has no access
    # state to determine: the flow reads its DeviceId first. And "OPTIONS is
    # always allowed" (decompiled Command.DetermineDeviceAccessState), naming
    # a device or not; one naming another command than Options is judged.
    options = ((req.get("method") or "").upper() == "OPTIONS"
               and (req.get("command") or "").lower() in ("", "options"))
    if (da is not None and proto == "activesync" and (req.get("device") or pol.deviceless_abq) and user is not None
            and not options):
        dev = (req.get("device") or "").lower()
        for i, p in enumerate(da.get("personal", [])):
            if same_user(p.get("user"), user) and dev in [d.lower() for d in p.get("blocked_device_ids", [])]:
                return "deny", pol.line_of("device_access.personal", i), "ActiveSyncBlockedDeviceIDs"
        for p in da.get("personal", []):
            if same_user(p.get("user"), user) and dev in [d.lower() for d in p.get("allowed_device_ids", [])]:
                return "allow", None, "ActiveSyncAllowedDeviceIDs"
        known = models.get((user, req.get("device")), {})
        have = {"devicetype": req.get("dtype"), "devicemodel": known.get("model"), "deviceos": known.get("os"),
                "useragent": ua}
        for level in ("Block", "Quarantine", "Allow"):
            for i, r in enumerate(da.get("rule", [])):
                if r["access_level"] != level:
                    continue
                v = have.get(r["characteristic"].lower())
                if v is not None and v.lower() == r["query_string"].lower():
                    why = f"{level} {r['characteristic']} {r['query_string']!r}"
                    return ("allow" if level == "Allow" else "deny"), pol.line_of("device_access.rule", i), why
        level = da.get("default_access_level", "Allow")
        if level != "Allow":
            return "deny", pol.line_of("device_access"), f"DefaultAccessLevel {level}"
    return None


def rules(pol, req):
    doc = pol.doc
    ranges = doc.get("ranges", {})
    # [readme-policy] the [[rule]]s, in order; the first that matches decides.
    for i, r in enumerate(doc.get("rule", [])):
        if not conditions_match(r, req, ranges):
            continue
        unless = r.get("unless") or {}
        if any(conditions_match({k: v}, req, ranges) for k, v in unless.items()):
            continue
        return r["action"], pol.line_of("rule", i), f"rule {r['name']!r}"
    return pol.default, None, "default"


def device_models(truth, devices=False):
    """[abq] each device's model and OS, (user, device id) -> {"model", "os"}:
    as Exchange logged them (`DevModel`, `DevOS`), then, with `devices` (the
    estate's device export given to simulate), as its partnership says
    [readme "--devices": "first from the logs ... then from the export"]."""
    out = defaultdict(dict)
    for u, tu in truth["users"].items():
        for d, v in tu["devices"].items():
            for k in ("model", "os"):
                if k in v:
                    out[(u, d)][k] = v[k]
    if devices:
        for p in truth["partnerships"]:
            for k in ("model", "os"):
                out[(p["user"], p["device"])].setdefault(k, p[k])
    return out


def inventory(truth, devices, known_before, kinds=("person", "probe", "machine")):
    """[inventory] the ActiveSync devices known at the cut-over: first seen
    in the logs before it (README `inventory build --until`: "the devices
    first seen before the cut-over", any request's, Managed Availability's
    test device included: it existed), or, with the export, whose
    partnership's FirstSyncTime is before it ("a device is known if either
    the logs saw it or its partnership synced before T")."""
    known = set()
    for r in truth["requests"]:
        if r["kind"] in kinds and r["proto"] == "activesync" and r.get("device") and r["time"] < known_before:
            known.add(r["device"].lower())
    if devices:
        known |= {p["device"].lower() for p in truth["partnerships"] if p["first_sync"] < known_before}
    return known


def with_inventory(requests, known):
    """Each request with `known` (its ActiveSync device is in the
    inventory), None without an inventory or a device."""
    for r in requests:
        if known is None or r["proto"] != "activesync" or not r.get("device"):
            yield r
        else:
            yield dict(r, known=r["device"].lower() in known)


def expect(truth, policy_path, devices=False, known_before=None,
           inventory_kinds=("person", "probe", "machine"), anonymous_as_org=False, deviceless_abq=False):
    """What simulate's JSON must say, in this module's terms (`devices`: the
    estate's device export was given; `known_before`: the cut-over;
    `inventory_kinds`, `anonymous_as_org`, `deviceless_abq`: for check.py's bug models)."""
    pol = Policy(policy_path)
    pol.anonymous_as_org = anonymous_as_org
    pol.deviceless_abq = deviceless_abq
    models = device_models(truth, devices)
    known = inventory(truth, devices, known_before, inventory_kinds) if known_before else None
    if devices and not known_before:
        # [inventory] "Without a cut-over every partnership is known."
        known = {p["device"].lower() for p in truth["partnerships"]}
    denied = []
    people = defaultdict(lambda: {"denied": defaultdict(int), "allowed": defaultdict(lambda: defaultdict(int))})
    per_rule = defaultdict(lambda: {"denied_requests": 0, "anonymous_requests": 0, "users": set(),
                                    "provision_denied": 0, "devices": defaultdict(int), "why": set()})
    other = {k: {"requests": 0, "denied_requests": 0, "accounts": set()} for k in ("probe", "machine")}
    requests = 0
    provision = {"denied": 0, "known": 0}
    for req in with_inventory(truth["requests"], known):
        action, line, why = decide(pol, req, models)
        if req["kind"] != "person":
            o = other[req["kind"]]
            o["requests"] += 1
            if action == "deny":
                o["denied_requests"] += 1
                if req["user"]:
                    o["accounts"].add(req["user"])
            continue
        requests += 1
        user = req["user"]
        if action == "deny":
            line = pol.block_of(line)
            denied.append(req)
            r = per_rule[line]
            r["denied_requests"] += 1
            r["why"].add(why)
            if req.get("command") == "Provision":
                # [readme-simulate] grandfathering: denied Provision requests,
                # and those of devices that existed at the cut-over.
                r["provision_denied"] += 1
                provision["denied"] += 1
                provision["known"] += bool(req.get("known"))
            if user is None:
                r["anonymous_requests"] += 1
            else:
                r["users"].add(user)
                people[user]["denied"][req["proto"]] += 1
                if req["proto"] == "activesync" and req["device"]:
                    r["devices"][(user, req["device"])] += 1
        elif user is not None and req.get("status", 200) < 400:
            # A request answered 400 or more reaches no mail, whatever the policy:
            # a sign-in refused (401), a 503 while the back end recycles, 449.
            people[user]["allowed"][req["proto"]][req["client"]] += 1
    # [readme "--devices"]: "with neither, a note says the rule can miss
    # requests": some ActiveSync device a DeviceModel or DeviceOS rule must
    # judge has no model or OS from the logs nor from an export.
    chars = {r["characteristic"].lower() for r in (pol.doc.get("device_access") or {}).get("rule", [])}
    unjudged = sorted({(r["user"], r["device"]) for r in truth["requests"]
                       if r["kind"] == "person" and r["proto"] == "activesync" and r["device"]
                       and any(k not in models.get((r["user"], r["device"]), {})
                               for k in {"devicemodel": "model", "deviceos": "os"}.values()
                               if ("device" + k) in chars)})
    backdoors = []
    for user, p in sorted(people.items()):
        if not p["denied"]:
            continue
        # [readme-simulate] "still reaches mail over another protocol": a
        # protocol the user is denied on is no backdoor, even where some of
        # the user's requests on it pass (a second device, another client).
        still = [x for x in MAIL_PROTOCOLS if p["allowed"].get(x) and x not in p["denied"]]
        if still:
            backdoors.append({"user": user, "denied_on": sorted(p["denied"]), "still_reaches": sorted(still),
                              "evidence": {x: dict(p["allowed"][x]) for x in sorted(still)}})
    return {
        "policy": pol,
        "requests": requests,
        "denied_requests": len(denied),
        "affected_users": sorted(u for u, p in people.items() if p["denied"]),
        # The cut-over simulate names when only an export gives one is its
        # own choice: "export" stands for any.
        "grandfathering": {"cutover": known_before or ("export" if devices else None),
                           "provision_denied": provision["denied"],
                           "provision_from_known_devices": provision["known"] if known is not None else None},
        "rules": {line: {"denied_requests": r["denied_requests"], "anonymous_requests": r["anonymous_requests"],
                         "provision_denied": r["provision_denied"],
                         "users": sorted(r["users"]), "devices": dict(r["devices"]), "why": sorted(r["why"])}
                  for line, r in per_rule.items()},
        "backdoors": backdoors,
        "probes": other["probe"],
        "machines": other["machine"],
        "unjudged_devices": unjudged,
        "known_models": sum(1 for v in models.values() if v),
        "model_note": bool(unjudged),
    }


# [readme-simulate] mobile clients, for a backdoor's `mobile` (this writer's
# client families).
MOBILE = {"outlook-mobile-basic", "outlook-mobile-hma", "outlook-mobile-unknown-auth", "apple-mail-ios",
          "android-mail", "samsung-email", "mobile-browser"}


def doors(denied, allowed):
    """A user's backdoor under one policy: the mail protocols the user still
    reaches, other than those denied, with their clients; empty when the
    user is denied nowhere [readme-simulate]."""
    if not denied:
        return {}
    return {p: dict(allowed[p]) for p in MAIL_PROTOCOLS if allowed.get(p) and p not in denied}


def expect_baseline(truth, baseline_path, target_path, devices=False, deviceless_abq=False):
    """What `simulate --baseline B --policy T` must say [readme-simulate "The
    change on top of what is in force"]: each request decided under both."""
    base, target = Policy(baseline_path), Policy(target_path)
    base.deviceless_abq = target.deviceless_abq = deviceless_abq
    models = device_models(truth, devices)
    summary = defaultdict(int)
    groups = {k: defaultdict(lambda: {"requests": 0, "anonymous_requests": 0,
                                      "users": defaultdict(lambda: {"requests": 0,
                                                                    "clients": defaultdict(lambda: defaultdict(int))})})
              for k in ("newly_cut_off", "already_cut_off", "newly_allowed")}
    per_user = defaultdict(lambda: {"today": [set(), defaultdict(lambda: defaultdict(int))],
                                    "after": [set(), defaultdict(lambda: defaultdict(int))]})
    other = {k: {"requests": 0, "denied_today": 0, "denied_after": 0} for k in ("probe", "machine")}
    for req in truth["requests"]:
        a, la, _ = decide(base, req, models)
        b, lb, _ = decide(target, req, models)
        if req["kind"] != "person":
            o = other[req["kind"]]
            o["requests"] += 1
            o["denied_today"] += a == "deny"
            o["denied_after"] += b == "deny"
            continue
        summary["requests"] += 1
        user = req["user"]
        for when, action in (("today", a), ("after", b)):
            if user is not None:
                pu = per_user[user][when]
                if action == "deny":
                    pu[0].add(req["proto"])
                elif req.get("status", 200) < 400:   # reached mail (not 401, 449, 503)
                    pu[1][req["proto"]][req["client"]] += 1
        if a == "allow" and b == "allow":
            summary["unchanged_allowed"] += 1
            continue
        if a == "allow":
            kind, key = "newly_cut_off", target.block_of(lb)
            summary["newly_denied_requests"] += 1
        elif b == "deny":
            kind, key = "already_cut_off", base.block_of(la)
            summary["already_denied_requests"] += 1
        else:
            # grouped by the rule that denies them today; casguard names it,
            # so the check compares these per user.
            kind, key = "newly_allowed", base.block_of(la)
            summary["newly_allowed_requests"] += 1
        g = groups[kind][key]
        g["requests"] += 1
        if user is None:
            g["anonymous_requests"] += 1
        else:
            g["users"][user]["requests"] += 1
            g["users"][user]["clients"][req["proto"]][req["client"]] += 1
    backdoors = {}
    for user, pu in sorted(per_user.items()):
        today, after = doors(*pu["today"]), doors(*pu["after"])
        if not today and not after:
            continue
        status = "closed" if not after else ("still_open" if today else "new")
        backdoors[user] = {
            "status": status,
            "denied_on_today": sorted(pu["today"][0]),
            "denied_on_after": sorted(pu["after"][0]),
            "open_today": sorted(today),
            # the doors the change closes: open today, refused after
            "closed": sorted(p for p in today if p in pu["after"][0]),
            "still_open": sorted(after),
            "mobile": any(c in MOBILE for cs in after.values() for c in cs),
            "evidence": after,
        }

    def plain(g):
        return {k: {"requests": v["requests"], "anonymous_requests": v["anonymous_requests"],
                    "users": {u: {"requests": x["requests"],
                                  "clients": {p: dict(cs) for p, cs in x["clients"].items()}}
                              for u, x in v["users"].items()}}
                for k, v in g.items()}

    out = {k: plain(v) for k, v in groups.items()}
    for k in ("newly_cut_off", "already_cut_off", "newly_allowed"):
        out[f"{k}_users"] = sorted({u for g in out[k].values() for u in g["users"]})
    out.update(summary=dict(summary), backdoors=backdoors, probes=other["probe"], machines=other["machine"],
               baseline=base, target=target)
    return out


# [readme-posture] the doors posture lists, and the standard client it tries
# on each (README "posture": "an iPhone's Mail app (device type `iPhone`)
# for ActiveSync, Outlook for Windows for EWS, MAPI, Autodiscover, a desktop
# browser for OWA, `MSRPC` for RPC, the WinRM client for PowerShell"), as
# this writer writes those clients: (path, user agent, device type, client).
DOORS = {
    "activesync": ("/Microsoft-Server-ActiveSync/default.eas", "Apple-iPhone14C2/2101.101", "iPhone",
                   "apple-mail-ios"),
    "ews": ("/EWS/Exchange.asmx", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
            None, "outlook-windows"),
    "owa": ("/owa/", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/119.0.0.0 Safari/537.36", None, "browser"),
    "mapi": ("/mapi/emsmdb/", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
             None, "outlook-windows"),
    "rpc": ("/rpc/rpcproxy.dll", "MSRPC", None, "outlook-windows"),
    "autodiscover": ("/Autodiscover/Autodiscover.xml",
                     "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
                     None, "outlook-windows"),
    "powershell": ("/powershell", "Microsoft WinRM Client", None, "remote-powershell"),
}
# [readme-posture] "once from a private address (10.0.0.10) and once from
# outside (203.0.113.10)"; Outlook mobile "from an Exchange Online address
# (40.96.0.10)" [m365: 40.96.0.0/13].
LAN, OUTSIDE, EXO = ("10.0.0.10", "internal"), ("203.0.113.10", "external"), ("40.96.0.10", "cloud")
# [readme-posture] Outlook for iOS and Android tried twice, as a new device:
# Basic (DeviceType `Outlook`) and hybrid modern auth (`OutlookService`, a
# Bearer token); (user agent, device type, authentication, client).
OUTLOOK_MOBILE = {
    "basic": ("Outlook-iOS-Android/1.0", "Outlook", "Basic", "outlook-mobile-basic"),
    "hma": ("Outlook-iOS/2.0", "OutlookService", "Bearer", "outlook-mobile-hma"),
}
# A device id no partnership of the estate has: a new device.
NEW_DEVICE = "CASGUARDAPARTNEWDEVICE0000000001"


def tried(user, proto, path, ua, dtype, client, where, auth=None):
    """A request as the writer's truth holds one: a new client of `user`."""
    addr, network = where
    device = NEW_DEVICE if proto == "activesync" else None
    return {"kind": "person", "user": user, "owner": user, "proto": proto, "client": client, "ua": ua,
            "device": device, "dtype": dtype, "command": "Sync" if device else None, "ip": addr, "peer": addr,
            "network": network, "method": "POST", "stem": path, "status": 200, "auth": auth, "view": "iis",
            "query": "", "logged_query": ""}


def expect_posture(truth, policy_path, logged_models=True, hma_agent=None, lan_only_when_denied=True,
                   deviceless_abq=False):
    """What `casguard posture --policy P --format json` must say of each
    user's doors and of Outlook mobile, from the truth's requests and the
    policy [readme-posture]: per user and door, the standard client tried
    from the LAN and from outside, and the user's own requests (requests,
    reached: allowed and answered below 400, denied); per user, Outlook
    mobile's two sign-ins tried from Exchange Online, with the user's own
    ActiveSync requests of that client. (`logged_models`, `hma_agent`,
    `lan_only_when_denied`, `deviceless_abq`: for check.py's bug models.)"""
    pol = Policy(policy_path)
    pol.deviceless_abq = deviceless_abq
    models = device_models(truth) if logged_models else {}
    own = defaultdict(lambda: {"requests": 0, "reached": 0, "denied": 0})
    for req in truth["requests"]:
        if req["kind"] != "person" or req["user"] is None:
            continue
        action = decide(pol, req, models)[0]
        keys = [(req["user"], req["proto"])]
        if req["proto"] == "activesync":
            keys.append((req["user"], "olm", req["client"]))
        for k in keys:
            o = own[k]
            o["requests"] += 1
            if action == "deny":
                o["denied"] += 1
            elif req["status"] < 400:
                o["reached"] += 1
    users = {}
    for user in sorted(truth["users"]):
        doors_ = {}
        for proto, (path, ua, dtype, client) in DOORS.items():
            lan, out = (decide(pol, tried(user, proto, path, ua, dtype, client, w), models)
                        for w in (LAN, OUTSIDE))
            o = dict(own[(user, proto)])
            # [readme-posture] `gated`: "some of the user's requests or
            # clients are refused, others get through" (the standard client
            # or the user's own requests).
            if lan[0] == "allow" and out[0] == "allow":
                state = "gated" if o["denied"] else "open"
            elif lan[0] == "allow" and (lan_only_when_denied or not o["denied"]):
                # [readme-posture] `lan-only`: "refused from outside, allowed
                # from the LAN", the user's own requests refused from outside
                # included: the network is what refuses them.
                state = "lan-only"
            elif lan[0] == "allow":
                state = "gated"
            elif out[0] == "allow" or o["reached"]:
                state = "gated"
            else:
                state = "blocked"
            # [readme-posture] `blocked_by`: "the rule that refused the
            # standard client", from either address.
            blocked = lan[0] != "allow" or out[0] != "allow"
            doors_[proto] = dict(o, state=state, used=o["requests"] > 0, blocked=blocked, why=[lan[2], out[2]])
        olm = {}
        for sign_in, (ua, dtype, auth, client) in OUTLOOK_MOBILE.items():
            if sign_in == "hma" and hma_agent:
                ua = hma_agent
            d = decide(pol, tried(user, "activesync", DOORS["activesync"][0], ua, dtype, client, EXO, auth), models)
            o = own[(user, "olm", client)]
            olm[sign_in] = {"state": "open" if d[0] == "allow" else "blocked", "reached": o["reached"],
                            "denied": o["denied"], "why": d[2]}
        users[user] = {"doors": doors_, "outlook_mobile": olm}
    return users


# [readme-posture] "Approved clients are Outlook for Windows and Mac, the new
# Outlook, Teams, Skype for Business and desktop browsers" (casguard's ids,
# of those this writer writes); the doors a backdoor is "over".
APPROVED = {"outlook-windows", "outlook-mac", "teams", "browser", "exchange-availability", "exchange-mrs"}
BACKDOOR_PROTOCOLS = ("ews", "owa", "mapi", "rpc")
# [readme-posture] a risk's network weight: "a named cloud range (Microsoft
# 365) weighs 2, the internet 1, the LAN 0".
NETWORK_WEIGHT = {"microsoft365": 2, "external": 1, "internal": 0, "loopback": 0}


def expect_backdoors(truth, policy_path, logged_models=True, deviceless_abq=False, **_):
    """[readme-posture] "Open backdoor": a user is gated when the policy
    refuses their ActiveSync requests or a mobile client of theirs
    anywhere; a gated user who still reaches mail over EWS, OWA, MAPI or RPC
    from a mobile or unapproved client is a backdoor, each piece of evidence
    (protocol, client, network, requests) with its risk (client weight 2
    for a mobile or third-party client here, × 3, + the network's weight;
    `high` from 7); the others are `gated_without_backdoor`. Returns
    ({user: (risk, level, sorted evidence)}, sorted gated users without)."""
    pol = Policy(policy_path)
    pol.deviceless_abq = deviceless_abq
    models = device_models(truth) if logged_models else {}
    gated = set()
    evidence = defaultdict(lambda: defaultdict(int))
    for req in truth["requests"]:
        if req["kind"] != "person" or req["user"] is None:
            continue
        action = decide(pol, req, models)[0]
        if action == "deny":
            if req["proto"] == "activesync" or req["client"] in MOBILE:
                gated.add(req["user"])
        elif req["status"] < 400 and req["proto"] in BACKDOOR_PROTOCOLS:
            client = CLIENTS[req["client"]]
            if client not in APPROVED:
                evidence[req["user"]][(req["proto"], client, NETWORKS[req["network"]])] += 1
    backdoors, without = {}, []
    for user in sorted(gated):
        if not evidence[user]:
            without.append(user)
            continue
        rows = sorted(k + (n, 2 * 3 + NETWORK_WEIGHT[k[2]]) for k, n in evidence[user].items())
        risk = max(r[-1] for r in rows)
        backdoors[user] = (risk, "high" if risk >= 7 else "medium", rows)
    return backdoors, without


def main(argv):
    devices = "--devices" in argv
    argv = [a for a in argv if a != "--devices"]
    known_before = None
    if "--known-before" in argv:
        i = argv.index("--known-before")
        known_before = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        truth = json.load(f)
    e = expect(truth, argv[2], devices, known_before)
    e.pop("policy")
    for r in e["rules"].values():
        r["devices"] = {f"{u}/{d}": n for (u, d), n in r["devices"].items()}
    for k in ("probes", "machines"):
        e[k]["accounts"] = sorted(e[k]["accounts"])
    e["rules"] = {str(k): v for k, v in e["rules"].items()}
    print(json.dumps(e, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
