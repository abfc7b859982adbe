// casguard report: builds the tables from the embedded JSON. Every piece of
// log text goes into the page through textContent, never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("casguard-data").textContent);
  var LIMIT = 2000;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmtNum(n) { return typeof n === "number" ? n.toLocaleString("en-US") : ""; }
  function short(t) { return t ? String(t).replace("T", " ").replace("Z", "") : ""; }
  function entries(obj) {
    return Object.keys(obj || {}).map(function (k) { return [k, obj[k]]; });
  }
  function protoText(obj) {
    return entries(obj).sort(function (a, b) { return b[1] - a[1]; })
      .map(function (p) { return p[0] + " " + p[1]; }).join(", ");
  }

  // A sortable, filterable table. cols: {key, label, num, wrap, mono, heat, max}.
  function table(host, cols, rows, opts) {
    opts = opts || {};
    var tools = el("div", "tools");
    var input = el("input");
    input.type = "search";
    input.placeholder = opts.placeholder || "Filter";
    input.setAttribute("aria-label", "Filter " + (opts.name || "rows"));
    var count = el("span", "count");
    tools.appendChild(input);
    tools.appendChild(count);
    var wrap = el("div", "tablewrap");
    var t = el("table", "data");
    if (opts.id) t.id = opts.id;
    var thead = el("thead"), tbody = el("tbody"), hr = el("tr");
    var state = { key: opts.sortKey || null, dir: opts.sortDir || 1, q: "" };
    rows.forEach(function (r) {
      r._text = cols.map(function (c) { var v = r[c.key]; return v === null || v === undefined ? "" : String(v); })
        .join("\u0001").toLowerCase();
    });
    var ths = cols.map(function (c) {
      var th = el("th", c.num ? "num" : "", c.label);
      th.setAttribute("data-key", c.key);
      th.setAttribute("tabindex", "0");
      th.setAttribute("aria-sort", "none");
      function go() {
        if (state.key === c.key) state.dir = -state.dir; else { state.key = c.key; state.dir = c.num ? -1 : 1; }
        render();
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
      hr.appendChild(th);
      return th;
    });
    thead.appendChild(hr);
    t.appendChild(thead);
    t.appendChild(tbody);
    wrap.appendChild(t);
    if (rows.length > 8) host.appendChild(tools);
    host.appendChild(wrap);
    input.addEventListener("input", function () { state.q = input.value.trim().toLowerCase(); render(); });

    function cmp(a, b) {
      var k = state.key, x = a[k], y = b[k];
      var xe = x === null || x === undefined || x === "", ye = y === null || y === undefined || y === "";
      if (xe || ye) return xe === ye ? 0 : (xe ? 1 : -1);
      if (typeof x === "number" && typeof y === "number") return (x - y) * state.dir;
      return String(x).localeCompare(String(y)) * state.dir;
    }
    function render() {
      var shown = state.q ? rows.filter(function (r) { return r._text.indexOf(state.q) >= 0; }) : rows.slice();
      if (state.key) {
        var idx = shown.map(function (r, i) { return [r, i]; });
        idx.sort(function (a, b) { return cmp(a[0], b[0]) || a[1] - b[1]; });
        shown = idx.map(function (p) { return p[0]; });
      }
      ths.forEach(function (th, i) {
        th.setAttribute("aria-sort", cols[i].key === state.key ? (state.dir > 0 ? "ascending" : "descending") : "none");
      });
      var frag = document.createDocumentFragment();
      shown.slice(0, LIMIT).forEach(function (r) {
        var tr = el("tr");
        cols.forEach(function (c) {
          var v = r[c.key];
          var td = el("td", (c.num ? "num" : "") + (c.wrap ? " wrap" : "") + (c.mono ? " mono" : ""));
          if (c.num) {
            td.textContent = fmtNum(v);
            td.setAttribute("data-value", v === undefined || v === null ? "" : String(v));
            if (c.heat && c.max) { td.className += " heat"; td.style.setProperty("--h", String(Math.min(1, (v || 0) / c.max))); }
          } else {
            td.textContent = v === undefined || v === null ? "" : String(v);
            if (c.title && r[c.title]) td.title = String(r[c.title]);
            if (c.cls && r[c.cls]) td.className += " " + r[c.cls];
          }
          tr.appendChild(td);
        });
        frag.appendChild(tr);
      });
      tbody.replaceChildren(frag);
      count.textContent = (shown.length > LIMIT ? "first " + LIMIT + " of " : "") + shown.length +
        (shown.length === rows.length ? " rows" : " of " + rows.length + " rows");
    }
    render();
    return t;
  }

  function host(id) { return document.getElementById(id); }
  function empty(h, text) { h.appendChild(el("p", "empty", text)); }

  function deviceIndex() {
    var idx = {};
    (data.users || []).forEach(function (u) {
      (u.devices || []).forEach(function (d) { idx[u.user + "\u0000" + d.id] = d; });
    });
    return idx;
  }

  function kv(dl, k, v) {
    if (v === null || v === undefined || v === "") return;
    var p = el("div");
    p.appendChild(el("span", "muted", k + ": "));
    p.appendChild(el("span", "mono", v));
    dl.appendChild(p);
  }

  function renderFindings() {
    var h = host("findings-list");
    if (!h) return;
    var devices = deviceIndex();
    var kinds = data.finding_kinds || [];
    var any = false;
    kinds.forEach(function (fk) {
      var list = (data.findings || []).filter(function (f) { return f.kind === fk.kind; });
      if (!list.length) return;
      any = true;
      var h3 = el("h3");
      h3.appendChild(el("span", "badge " + fk.kind + " " + (fk.severity || ""), fk.kind));
      h3.appendChild(document.createTextNode(list.length + " finding(s)"));
      h.appendChild(h3);
      h.appendChild(el("p", "meaning", fk.meaning));
      list.slice(0, 500).forEach(function (f) {
        var d = el("details", "finding");
        var s = el("summary");
        s.appendChild(el("span", null, f.summary));
        s.appendChild(el("span", "muted", "  " + short(f.first_seen) + " \u2013 " + short(f.last_seen)));
        d.appendChild(s);
        var body = el("div");
        if (f.rule) kv(body, "rule", f.rule);
        if (f.source) kv(body, "source", f.source.ip + " (" + f.source.network + ")");
        if (f.sample) kv(body, "sample", f.sample);
        if (f.outcome) kv(body, "outcome", f.outcome + " (" + entries(f.outcomes).map(function (o) { return o[0] + " " + o[1]; }).join(", ") + ")");
        if (f.paths && f.paths.length > 1) kv(body, "paths", f.paths.join(", "));
        if (f.users && f.users.length) kv(body, "users", f.users.join(", "));
        if (f.user_agents && f.user_agents.length) kv(body, "user agents", f.user_agents.join(" | "));
        if (f.sources && f.sources.length) kv(body, "from", f.sources.map(function (x) { return x.ip + " " + x.network + " \u00d7" + x.requests; }).join(", "));
        if (f.peak) kv(body, "worst window", f.peak + " within " + Math.round(f.window_seconds / 60) + " minutes (threshold " + f.threshold + ")");
        if (f.cloud_sources && f.cloud_sources.length) {
          kv(body, "cloud sources", f.cloud_sources.map(function (c) { return c.ip + " " + c.network + " \u00d7" + c.requests; }).join(", ") +
            (f.cloud_sources_more ? " and " + f.cloud_sources_more + " more" : ""));
        }
        var rows = (f.devices || []).map(function (id) {
          var dv = devices[f.user + "\u0000" + id] || { id: id };
          return {
            id: dv.id, type: dv.type, client: dv.client_name || dv.client, requests: dv.requests,
            protocols: protoText(dv.protocols), ua: (dv.user_agents || []).join(" | "),
            sources: (dv.sources || []).map(function (x) { return x.ip + " " + x.network; }).join(", ") +
              (dv.sources_more ? " and " + dv.sources_more + " more" : "")
          };
        });
        if (rows.length) {
          table(body, [
            { key: "id", label: "device", wrap: true, mono: true }, { key: "type", label: "type" },
            { key: "client", label: "client" }, { key: "requests", label: "requests", num: true },
            { key: "protocols", label: "protocols", wrap: true }, { key: "ua", label: "user agents", wrap: true, mono: true },
            { key: "sources", label: "sources", wrap: true, mono: true }
          ], rows, { name: "devices" });
        }
        d.appendChild(body);
        h.appendChild(d);
      });
      if (list.length > 500) h.appendChild(el("p", "muted", (list.length - 500) + " more not shown; see the JSON report."));
    });
    if (!any) empty(h, "No findings.");
  }

  function renderProtocols() {
    var h = host("protocols-table");
    if (!h) return;
    var keys = Object.keys(data.protocols || {});
    var users = data.users || [];
    if (!users.length) return empty(h, "No users.");
    var rows = users.map(function (u) {
      var r = { user: u.user, requests: u.requests, devices: (u.devices || []).length };
      keys.forEach(function (k) { r["p_" + k] = (u.protocols || {})[k] || 0; });
      return r;
    });
    var cols = [{ key: "user", label: "user" }, { key: "requests", label: "requests", num: true },
      { key: "devices", label: "devices", num: true }];
    keys.forEach(function (k) {
      var max = 0;
      rows.forEach(function (r) { max = Math.max(max, r["p_" + k]); });
      cols.push({ key: "p_" + k, label: k, num: true, heat: true, max: max });
    });
    table(h, cols, rows, { id: "protocols-by-user", name: "users", placeholder: "Filter users", sortKey: "requests", sortDir: -1 });
  }

  function renderDevices() {
    var h = host("devices-table");
    if (!h) return;
    var rows = [];
    (data.users || []).forEach(function (u) {
      (u.devices || []).forEach(function (d) {
        rows.push({
          user: u.user, id: d.id, type: d.type, client: d.client_name || d.client, requests: d.requests,
          protocols: protoText(d.protocols),
          networks: Array.from(new Set((d.sources || []).map(function (s) { return s.network; }))).join(", "),
          sources: (d.sources || []).map(function (s) { return s.ip + " (" + s.network + ") \u00d7" + s.requests; }).join("\n") +
            (d.sources_more ? "\n" + d.sources_more + " more" : ""),
          model: [d.model, d.os].filter(Boolean).join(" / "),
          access: d.access ? d.access.state + (d.access.reason ? " (" + d.access.reason + ")" : "") : "",
          ua: (d.user_agents || [])[0] || "", uas: (d.user_agents || []).join("\n"),
          first: short(d.first_seen), last: short(d.last_seen)
        });
      });
    });
    if (!rows.length) return empty(h, "No devices.");
    table(h, [
      { key: "user", label: "user" }, { key: "id", label: "device", wrap: true, mono: true },
      { key: "type", label: "type" }, { key: "client", label: "client" },
      { key: "requests", label: "requests", num: true }, { key: "protocols", label: "protocols", wrap: true },
      { key: "networks", label: "networks", title: "sources" }, { key: "model", label: "model / OS", wrap: true },
      { key: "access", label: "ActiveSync verdict", wrap: true },
      { key: "ua", label: "user agent", wrap: true, mono: true, title: "uas" },
      { key: "first", label: "first seen" }, { key: "last", label: "last seen" }
    ], rows, { id: "users-devices", name: "devices", placeholder: "Filter users, devices, clients, agents" });
  }

  function renderPartnerships() {
    var h = host("partnerships-table");
    if (!h || !data.partnerships) return;
    var p = data.partnerships;
    var rows = (p.partnerships || []).map(function (e) {
      return {
        user: e.user, owner: e.owner, id: e.device_id, type: e.device_type, client: e.client_name || e.client,
        outlook: e.outlook_mobile ? "yes" : "", state: [e.access_state, e.access_state_reason].filter(Boolean).join(" / "),
        first: short(e.first_sync), last: short(e.last_success_sync), attempt: short(e.last_sync_attempt),
        requests: e.requests, seen: short(e.log_last_seen), log_user: e.log_user || "",
        idle: e.idle_days === null ? "" : e.idle_days, stale: e.stale ? "stale" : "",
        model: [e.model, e.os].filter(Boolean).join(" / "), where: e.file + ":" + e.line
      };
    });
    if (!rows.length) empty(h, "The export holds no partnership.");
    else table(h, [
      { key: "user", label: "user", title: "owner" }, { key: "id", label: "device", wrap: true, mono: true, title: "where" },
      { key: "type", label: "type" }, { key: "client", label: "client", title: "model" },
      { key: "outlook", label: "Outlook mobile" }, { key: "state", label: "access" },
      { key: "first", label: "first sync" }, { key: "last", label: "last sync", title: "attempt" },
      { key: "requests", label: "requests in logs", num: true, title: "seen" }, { key: "log_user", label: "logs say user" },
      { key: "idle", label: "idle days", num: true }, { key: "stale", label: "stale" }
    ], rows, { id: "partnership-list", name: "partnerships", placeholder: "Filter users, devices, states", sortKey: "user" });
    var uh = host("unpartnered-table");
    if (!uh) return;
    var lone = (p.without_partnership || []).map(function (d) {
      return { user: d.user, id: d.device_id, type: d.device_type, client: d.client_name || d.client, requests: d.requests,
        first: short(d.first_seen), last: short(d.last_seen) };
    });
    if (!lone.length) return empty(uh, "None: every ActiveSync device in the logs has a partnership.");
    table(uh, [{ key: "user", label: "user" }, { key: "id", label: "device", wrap: true, mono: true },
      { key: "type", label: "type" }, { key: "client", label: "client" }, { key: "requests", label: "requests", num: true },
      { key: "first", label: "first seen" }, { key: "last", label: "last seen" }],
      lone, { id: "unpartnered-list", name: "devices", sortKey: "requests", sortDir: -1 });
  }

  function renderProbes() {
    var h = host("probes-table");
    if (!h || !data.probes) return;
    var rows = (data.probes.user_agents || []).map(function (p) { return { name: p.name, requests: p.requests }; });
    if (!rows.length) return empty(h, "No monitoring probes.");
    table(h, [{ key: "name", label: "user agent", wrap: true, mono: true }, { key: "requests", label: "requests", num: true }],
      rows, { name: "probes" });
  }

  function renderMalformed() {
    var h = host("malformed-table");
    if (!h) return;
    var rows = [];
    (data.malformed || []).forEach(function (m) {
      (m.first || []).forEach(function (l) { rows.push({ file: m.file, line: l.line, reason: l.reason, detail: l.detail }); });
    });
    if (!rows.length) return empty(h, "No malformed lines.");
    table(h, [{ key: "file", label: "file", wrap: true, mono: true }, { key: "line", label: "line", num: true },
      { key: "reason", label: "reason" }, { key: "detail", label: "detail", wrap: true }], rows, { name: "lines" });
  }

  function renderRules() {
    var h = host("rules-table");
    if (!h) return;
    var rows = (data.rules || []).map(function (r) {
      return {
        name: r.name, action: r.action, line: r.line, matched: r.matched_requests, denied: r.denied_requests,
        users: (r.users || []).length, devices: (r.devices || []).length, anonymous: r.anonymous_requests,
        provision: r.provision_denied, known: r.provision_from_known_devices,
        first: short(r.first_seen), last: short(r.last_seen),
        who: (r.users || []).slice(0, 50).join(", ") + ((r.users || []).length > 50 ? ", \u2026" : "")
      };
    });
    if (!rows.length) return empty(h, "No rule matched.");
    table(h, [
      { key: "name", label: "rule", wrap: true }, { key: "action", label: "action" }, { key: "line", label: "line", num: true },
      { key: "matched", label: "matched", num: true }, { key: "denied", label: "denied", num: true },
      { key: "users", label: "users", num: true, title: "who" }, { key: "devices", label: "devices", num: true },
      { key: "anonymous", label: "anonymous", num: true }, { key: "provision", label: "Provision denied", num: true },
      { key: "known", label: "from known devices", num: true }, { key: "first", label: "first denied" },
      { key: "last", label: "last denied" }
    ], rows, { id: "rule-impact", name: "rules" });
    var dh = host("denied-devices-table");
    if (!dh) return;
    var devs = [];
    (data.rules || []).forEach(function (r) {
      (r.devices || []).forEach(function (d) { devs.push({ rule: r.name, user: d.user, id: d.id, requests: d.requests }); });
    });
    if (!devs.length) return empty(dh, "No device would be denied.");
    table(dh, [{ key: "rule", label: "rule", wrap: true }, { key: "user", label: "user" },
      { key: "id", label: "device", wrap: true, mono: true }, { key: "requests", label: "denied requests", num: true }],
      devs, { id: "denied-device-list", name: "devices", placeholder: "Filter users, devices, rules" });
  }

  function renderBackdoors() {
    var h = host("backdoors-table");
    if (!h) return;
    var rows = (data.backdoors || []).map(function (b) {
      return {
        user: b.user, denied_on: (b.denied_on || []).join(", "), still: (b.still_reaches || []).join(", "),
        evidence: entries(b.evidence).map(function (p) {
          return p[0] + ": " + entries(p[1]).map(function (c) { return c[0] + " \u00d7" + c[1]; }).join(", ");
        }).join("; ")
      };
    });
    if (!rows.length) return empty(h, "None: no denied user still reached mail through another protocol.");
    table(h, [{ key: "user", label: "user" }, { key: "denied_on", label: "denied on" },
      { key: "still", label: "still reaches" }, { key: "evidence", label: "evidence (clients \u00d7 requests)", wrap: true }],
      rows, { id: "backdoor-list", name: "backdoors" });
  }

  function renderAffected() {
    var h = host("affected-list");
    if (!h) return;
    var users = data.affected_users || [];
    if (!users.length) return empty(h, "Nobody would be affected.");
    var rows = users.map(function (u) { return { user: u }; });
    table(h, [{ key: "user", label: "user" }], rows, { name: "users", sortKey: "user" });
  }

  // posture: a users x protocols matrix, the backdoors, the unused doors, Basic authentication.
  var DOOR_TEXT = { "open": "open", "lan-only": "LAN only", "gated": "gated", "blocked": "blocked" };

  function renderPosture() {
    var h = host("posture-matrix");
    if (!h) return;
    var protocols = data.protocols || [];
    var rows = (data.users || []).map(function (u) {
      var r = { user: u.user, requests: u.requests };
      (u.doors || []).forEach(function (d) {
        r[d.protocol] = (DOOR_TEXT[d.state] || d.state) + (d.used ? " \u2022" : "");
        r[d.protocol + "_cls"] = "door door-" + d.state + (d.used ? " used" : "");
        var why = [];
        if (d.blocked_by) why.push("refused: " + d.blocked_by);
        entries(d.denied_by).forEach(function (p) { why.push("denied " + p[1] + " by " + p[0]); });
        if (d.used) why.push("clients: " + protoText(d.clients) + "; networks: " + protoText(d.networks));
        r[d.protocol + "_title"] = why.join("\n");
      });
      return r;
    });
    if (!rows.length) return empty(h, "No user in the logs.");
    var cols = [{ key: "user", label: "user" }, { key: "requests", label: "requests", num: true }];
    protocols.forEach(function (p) { cols.push({ key: p, label: p, cls: p + "_cls", title: p + "_title" }); });
    table(h, cols, rows, { id: "posture-users", name: "users", sortKey: "user" });

    var bh = host("posture-backdoors");
    var bd = (data.backdoors || []).map(function (b) {
      return {
        user: b.user, level: b.level, risk: b.risk,
        gated: (b.gated_by || []).map(function (g) { return g.client + " on " + g.protocol + " by " + g.rule + " \u00d7" + g.requests; }).join("; "),
        evidence: (b.evidence || []).map(function (e) { return e.protocol + " by " + e.client + " from " + e.network + " \u00d7" + e.requests; }).join("; "),
        context: (b.context || []).map(function (e) { return e.protocol + " by " + e.client + " from " + e.network; }).join("; ")
      };
    });
    if (!bd.length) empty(bh, "None: no gated user reaches mail from a phone or a third-party client.");
    else table(bh, [{ key: "user", label: "user" }, { key: "level", label: "level" }, { key: "risk", label: "risk", num: true },
      { key: "gated", label: "gated by", wrap: true }, { key: "evidence", label: "still reaches mail", wrap: true },
      { key: "context", label: "approved clients (context)", wrap: true }], bd, { id: "posture-backdoor-list", name: "backdoors" });

    var uh = host("posture-unused");
    var unused = data.unused || {};
    var per = entries(unused.per_protocol).map(function (p) { return { protocol: p[0], users: p[1] }; });
    if (!per.length) empty(uh, "Every open door was used.");
    else {
      table(uh, [{ key: "protocol", label: "protocol" }, { key: "users", label: "users with it open but unused", num: true }],
        per, { name: "protocols" });
      uh.appendChild(el("pre", "mono commands", (unused.commands || []).join("\n")));
    }

    var ah = host("posture-basic");
    var basic = (data.basic_auth || []).map(function (b) {
      return { protocol: b.protocol, client: b.client, requests: b.requests, users: (b.users || []).length,
        who: (b.users || []).slice(0, 50).join(", ") };
    });
    if (!basic.length) empty(ah, "No Basic authentication seen (only HttpProxy logs record it).");
    else table(ah, [{ key: "protocol", label: "protocol" }, { key: "client", label: "client" },
      { key: "requests", label: "requests", num: true }, { key: "users", label: "users", num: true }, { key: "who", label: "who", wrap: true }],
      basic, { name: "clients" });
  }

  [renderFindings, renderProtocols, renderDevices, renderPartnerships, renderProbes, renderMalformed, renderRules,
    renderBackdoors, renderAffected, renderPosture].forEach(function (f) { f(); });
  document.body.setAttribute("data-ready", "1");
})();
