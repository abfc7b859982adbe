#!/usr/bin/env python3
"""An independent writer of Exchange IIS logs, with the truth an audit must find.

casguard's own generator (crates/loggen) shares casguard's understanding of
Exchange, so its agreement with casguard proves little. This writer was made
apart from it: its model of Exchange comes only from the public sources named
beside each choice (and the repository's README for the shape of casguard's
report), never from casguard's or loggen's code.

    python3 tests/apart/write.py --seed 7 [--httpproxy also|only] --out DIR

writes DIR/logs/ (a small estate: one front end, two back ends, two days),
DIR/devices.json (its ActiveSync partnerships, for `--devices`) and
DIR/truth.json. The truth is what the writer *meant* each line to be, recorded
as the line is written; it is never read back from the logs.

Standard library only; the same seed gives the same bytes.

Sources, cited in the comments as [name]:
- [iis-fields] IIS 10 default W3C fields and header, MicrosoftDocs/iis-docs
  `iis/configuration/system.applicationHost/sites/site/logFile/index.md` and the
  sample logs there: `#Software: Microsoft Internet Information Services 10.0`,
  `#Version: 1.0`, `#Date:`, `#Fields: date time s-ip cs-method cs-uri-stem
  cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status
  sc-substatus sc-win32-status time-taken`; times in UTC; `-` for empty.
- [iis-plus] spaces in logged values written as `+` (iis-docs
  `iis/manage/configuring-security/using-dynamic-ip-restrictions.md`).
- [iis-custom] IIS 8.5+ custom fields (`X-Forwarded-For`, sourceType
  RequestHeader) are written after the standard fields and the file name gets
  `_x` (iis-docs `.../logFile/customFields/index.md`).
- [w3c] W3C draft WD-logfile: directives may be repeated; a new `#Fields`
  applies to the entries after it. IIS writes a fresh header block when
  logging restarts (service or site restart) in the same file.
- [exo-sites] Exchange 2013+ "Default Web Site" = W3SVC1 on 443 (front end),
  "Exchange Back End" = W3SVC2 on 444; Microsoft: feed W3SVC1 or W3SVC2, not
  both (double counting) (OfficeDocs-Exchange
  `iis-logs-and-log-parser-studio-reports-exchange-2013-help.md`,
  `troubleshooting-ews-protocol-health-set.md`).
- [eas-log] Exchange appends `&Log=` + `_`-separated `Key:value` / `KeyNNN`
  tokens to the ActiveSync cs-uri-query; values URL-encoded (`@` -> %40);
  back-end lines carry `PrxFrom:` and stem `/Microsoft-Server-ActiveSync/Proxy/default.eas`
  (public sample lines quoted in the reference notes; MS support KB on the iOS 9
  MeetingResponse loop; TechNet bb201675 for the token table).
- [eas-fe] Exchange 2013+: the front end (HttpProxy) only proxies
  ActiveSync, so its IIS line has no `&Log=`: every public 2013+ line with
  one carries `PrxFrom` (a back-end line), and the public front-end lines
  with `cafeReqId` (Microsoft Q&A, tests/data/iis) have none. Corrected on
  2026-12-03: this writer had put `&Log=` on both.
- [ashttp-plain] MS-ASHTTP 2.2.1.1.1.1: `Cmd=&User=&DeviceId=&DeviceType=`, any order.
- [ashttp-b64] MS-ASHTTP 2.2.1.1.1.1.1: base64 query: ProtocolVersion(1),
  CommandCode(1), Locale(2, LE), DeviceIdLength(1), DeviceId,
  PolicyKeyLength(1, 0 or 4), PolicyKey(4), DeviceTypeLength(1), DeviceType,
  then Tag(1) Length(1) Value; command codes 0 Sync ... 9 FolderSync, 18 Ping,
  20 Provision; tag 8 User. Only for protocol 12.1 and later.
- [iis-401] IIS status: 401.1 with Windows error 1326 = logon failed (bad user
  name or password); 401.2 with error 5 = the anonymous first leg of an
  NTLM/Negotiate challenge (IIS status-code documentation).
- [m365] Microsoft 365 endpoints, Exchange Online IDs 1/2 (40.96.0.0/13,
  52.96.0.0/14, 2603:1036::/36 ...) and AutoDetect 52.125.128.0/20
  ("Microsoft 365 URLs and IP address ranges"; additional-office365-ip-addresses-and-urls.md).
- [olm-basic] Outlook for iOS and Android with Basic auth: DeviceType `Outlook`,
  user agent `Outlook-iOS-Android/1.0`; Exchange Online syncs from Microsoft's
  cloud (OfficeDocs-Exchange `manage-devices.md`, `use-basic-auth.md`).
- [olm-hma] With hybrid modern auth: DeviceType `OutlookService`, Bearer tokens,
  user agents `Outlook-iOS/2.0`, `Outlook-Android/2.0`; AutoDetect asks
  `/autodiscover/autodiscover.json?Email=...&Protocol=activesync&RedirectCount=3`
  anonymously (`use-hybrid-modern-auth.md`, `secure-outlook-for-ios-and-android.md`).
- [ntlm-legs] An NTLM sign-in in IIS logs is three lines: `401 2 5` and
  `401 1 2148074254`, both with cs-username `-`, then the request with the
  user (David Wang, "HOWTO: Diagnose 401.x HTTP errors on IIS", MSDN blogs,
  learn.microsoft.com archive; Microsoft support 907273; a failed NTLM logon
  is `401 1 2148074252` (Splunk "Decoding IIS Logs").
- [appgw] Azure Application Gateway writes X-Forwarded-For as `IP:port`
  (learn.microsoft.com "How an application gateway works": "X-Forwarded-For
  ... client IP address and port").
- [utf8] IIS logs in UTF-8 by default (`logInUTF8` true, iis-docs
  `system.applicationHost/log`); Windows account names are case-insensitive,
  non-ASCII letters included.
- [notshell] ProxyNotShell (CVE-2022-41040): `/autodiscover/autodiscover.json`
  with `Powershell` in the query; Microsoft's first URL Rewrite mitigation
  (`.*autodiscover\.json.*\@.*Powershell.*`) was bypassed without `@`
  (`?a..foo.var/owa/&Email=autodiscover/autodiscover.json?a..foo.var&Protocol=XYZ&FooProtocol=Powershell`)
  and replaced by one without it (MSRC guidance for CVE-2022-41040, updated).
- [mac-mail] Apple Mail for macOS on EWS: `Mac OS X/<ver> (<build>);
  ExchangeWebServices/<ver> (<build>); Mail/<ver> (<build>)` (user agents
  quoted in Apple and Exchange forum threads; CSS-Exchange
  `Calendar/CalLogHelpers/ShortClientNameFunctions.ps1` maps `Mac OS X`/`Mail`).
- [rps] Exchange Management Shell: `POST /powershell` with
  `serializationLevel=Full;ExchClientVer=...;clientApplication=ManagementShell;...`
  and user agent `Microsoft WinRM Client` (public IIS samples of remote
  PowerShell; ProxyShell write-ups contrast it with autodiscover.json).
- [rpc] Outlook Anywhere: `RPC_IN_DATA`/`RPC_OUT_DATA /rpc/rpcproxy.dll`
  with `<mailbox guid>@<domain>:6001` in the query, user agent `MSRPC`
  (the Windows RPC over HTTP client Outlook uses).
- [ecp] the Exchange admin center: `/ecp/`, `/ecp/default.aspx`,
  `/ecp/DDI/DDIService.svc/GetList?schema=...&msExchEcpCanary=...`: shipped
  by Exchange, an admin's work, not an attack (only ProxyLogon's
  `SetObject` with `ResetOABVirtualDirectory` is one).
- [sentinel-spray] Microsoft Sentinel: password spray = 5+ accounts from one
  address within 20 minutes; brute force = 100+ failures for one user within
  10 minutes (the thresholds casguard's README names as its defaults).
- [ad-names] pre-Windows 2000 logon names may hold spaces but none of
  `" / \\ [ ] : ; | = , + * ? < >` (Microsoft "Naming conventions in Active Directory").
- [lb-health] Exchange 2013+ serves `/<protocol>/healthcheck.htm` on each
  virtual directory for load balancers, answered 200 while Managed
  Availability finds the protocol healthy (Microsoft "Load balancing in
  Exchange Server"; Exchange Team Blog "Load Balancing in Exchange 2013").
  A balancer polls them anonymously every few seconds: monitoring.
- [gzip] RFC 1952 2.2: "A gzip file consists of a series of members";
  `gzip -d` and `zcat` read them all (compressing a log in parts, or
  appending, gives several).
- [proxylogon] ProxyLogon (CVE-2021-26855/27065) in IIS logs: `POST
  /ecp/<x>.js` and `/ecp/DDI/DDIService.svc/SetObject` with
  `schema=ResetOABVirtualDirectory` (Microsoft "HAFNIUM targeting Exchange
  Servers" hunting queries; Azure Sentinel ProxyLogon IIS rules).
- [dfir] stolen files (dumps, archives) fetched from a folder under the
  site (public DFIR write-up, reference notes §6).
- [scanner] `zgrab` is the ZMap project's banner grabber; its default user
  agent `Mozilla/5.0 zgrab/0.x` is in Sigma's and others' scanner lists.
- [oab] Outlook downloads the offline address book as `oab.xml` and
  LZX-compressed `.lzx` files under `/OAB/<guid>/` (Microsoft "Offline
  address books in Exchange Server").
- [owa-files] OWA and ECP serve their own static files from versioned
  folders: `/owa/auth/<build>/themes/resources/...`,
  `/owa/prem/<build>/scripts/...`, `/ecp/<build>/themes/resources/...`
  (seen in every Exchange 2013+ IIS log; the folders under
  `FrontEnd\HttpProxy\owa\auth\<build>` of an installed server).
- [cve-2020-0688] CVE-2020-0688: `/ecp/default.aspx` with `__VIEWSTATEGENERATOR`
  and `__VIEWSTATE` in the query, signed in (ZDI write-up; Azure Sentinel
  and Sigma rules for it).
- [httperr] HTTP.sys error logs: `%SystemRoot%\\System32\\LogFiles\\HTTPERR\\httperrN.log`,
  `#Software: Microsoft HTTP API 2.0`, fields `date time c-ip c-port s-ip
  s-port cs-version cs-method cs-uri streamid sc-status s-siteid s-reason
  s-queuename`; errors HTTP.sys handles itself instead of passing the request
  to the application (Microsoft KB 820729 "Error logging in HTTP APIs";
  learn.microsoft.com "Format of the HTTP Server API Error Logs").
- [mac-outlook] Outlook for Mac's EWS user agent contains `MacOutlook`
  (the string Exchange's EwsAllowMacOutlook switch tests, reference notes
  §3a), e.g. `MacOutlook/16.78.23100802 (Intelx64 Mac OS X 14.1.1 (Build 23B81))`.
- [teams] Teams reaches on-premises EWS for calendars with
  `MicrosoftNinja/1.0 Teams/1.0 (ExchangeServicesClient/0.0.0.0) SkypeSpaces/1.0a$*+`
  (CSS-Exchange `Calendar/CalLogHelpers/ShortClientNameFunctions.ps1`);
  Microsoft's own service, which the README counts among approved clients,
  so not `ews-non-outlook`. It calls from Microsoft addresses outside the
  Exchange Online list (here 52.112.0.0/14, Teams'): "external" to the
  built-in networks.
- [http-redirect] Exchange's Default Web Site also listens on port 80 and
  answers plain-HTTP visits with a redirect to HTTPS (Microsoft "Simplify
  the Outlook on the web URL"): s-port 80 on W3SVC1, a front-end line.
- [owa-logoff] Exchange 2013 and 2016 ship `LogonSettings.SignOutKind =
  LegacyLogOff` in OWA's web.config, so signing out of OWA goes to
  `/owa/auth/logoff.aspx?Cmd=logoff&src=exch` (Exchange Team Blog "OWA
  Forms Based Auth Logoff Changes in Exchange 2013 Cumulative Update 9",
  updated 1/19/16; reverse-proxy vendors' "logoff string", e.g. Kemp ESP).
- [autodv2] Autodiscover v2: `GET /autodiscover/autodiscover.json/v1.0/<address>?Protocol=<EWS|AutodiscoverV1|ActiveSync>`,
  anonymous, used by Outlook, Teams and Office (Microsoft "Autodiscover for
  Exchange" / "Autodiscover V2" developer docs; AADInternals
  `Get-AADIntEASAutoDiscover`). The `@` here is in the path, after
  `/v1.0/`, not ProxyShell's `autodiscover.json?@` query.
- [probes] Managed Availability: user agent `AMProbe/Local/ClientAccess` from
  127.0.0.1 / ::1; accounts `HealthMailbox` + 32 hex digits; EAS probe
  DeviceType `EASProbeDeviceType` (troubleshooting-owa-health-set.md,
  managed-availability.md; reference notes §5).
- [proxyshell] ProxyShell in IIS logs: stem `/autodiscover/autodiscover.json`,
  query starting `@host/...` with `Email=autodiscover/autodiscover.json%3F@host`
  and `/powershell/?X-Rps-CAT=` (Azure Sentinel "Exchange SSRF Autodiscover
  ProxyShell - Detection"; Splunk "Exchange PowerShell Abuse via SSRF").
- [webshell] web shells dropped in `/owa/auth/` and reached with command
  parameters (public ProxyLogon write-ups; Sigma web-shell rules).
- [ews-ua] EWS Managed API's default user agent `ExchangeServicesClient/15.00.0913.015`.
- [outlook-ua] Outlook for Windows: `Microsoft Office/16.0 (Windows NT 10.0;
  Microsoft Outlook 16.0.NNNNN; Pro)`; MAPI over HTTP at `/mapi/emsmdb/` with
  `mailboxId=<guid>@<domain>` in the query.
- [xff] With a load balancer in front, c-ip is the balancer; the client is in
  X-Forwarded-For, comma-separated, the balancer appending the address it saw
  on the right (so the right-most public address is the client).
- [hp-where] Exchange 2013+ front ends log every request their HttpProxy
  module handles in `%ExchangeInstallPath%Logging\\HttpProxy\\<Protocol>\\
  HttpProxy_yyyyMMddHH-N.LOG` (folders Autodiscover, Eas, Ecp, Ews, Mapi,
  Oab, Owa, PowerShell, RpcHttp), one file per hour, rolled by size into
  `-2`, `-3` (Qazeer/artefacts.help `pages/others/microsoft_exchange.md`;
  CSS-Exchange `Security/src/Test-ProxyLogon.ps1` reads these folders).
- [hp-fields] CSV with `#Software: Microsoft Exchange Server`, `#Version`,
  `#Log-type: HttpProxy Logs`, `#Date: <ISO time>`, `#Fields:`; the 74
  columns of Exchange 2016 CU23 (artefacts.help's files, in
  tests/data/httpproxy/artefacts-help/); times ISO 8601 UTC with
  milliseconds; `UrlQuery` keeps its `?`; `IsAuthenticated` true/false;
  `AuthenticatedUser` `DOMAIN\\user` or a UPN; `AnchorMailbox` `Sid~...`.
- [hp-csv] Exchange's CSV writer replaces `,` (and CR/LF) in each value by
  a space (`(KHTML  like Gecko)` in artefacts.help's Owa and RpcHttp lines;
  tests/data/SOURCES-real.md, "What the HttpProxy lines show").
- [hp-real] the real lines themselves: Eas with Basic from
  `Outlook-iOS-Android/1.0`; Autodiscover NTLM from Apple's
  `AppleExchangeWebServices`; Ews and Mapi probes `AMProbe/Local/ClientAccess`
  and `MapiHttpClient` as `HealthMailbox...`, Negotiate, `UrlHost`
  localhost; MAPI's `ClientRequestId` `R:...;RT:Execute;CI:...;CID:...`;
  PowerShell Kerberos with the cmdlet in `ProtocolAction`
  (`Get-Mailbox:Command`); Ecp scanned by zgrab, FBA, not authenticated;
  Owa before sign-in FBA, not authenticated; RpcHttp `GET /rpc` NTLM, not
  authenticated, 401, `BackEndStatus` and `ProxyAction` empty (not
  proxied); Outlook mobile's cloud in `ClientIpAddress` with a port
  (`52.96.16.37:49660`, Microsoft Q&A 158847).
- [hp-join] the front end appends `&cafeReqId=<RequestId>;` to the IIS
  line's query (README "HttpProxy", from decompiled `ProxyModule`; one id
  per request); `&Log=` and `&CorrelationID=<empty>;` are IIS logging's
  additions (`AppendToLog`), not the client's URL, so not in `UrlQuery`.
- [hp-auth] `AuthenticationType` values seen: Basic, NTLM, Negotiate, FBA,
  OAuth, Bearer, Kerberos, empty (reference notes §1, from artefacts.help
  and Elastic's sample); Outlook mobile with hybrid modern auth presents
  Bearer tokens [olm-hma].
- [hp-401] a request IIS or Exchange turned down with 401 is logged in
  HttpProxy not authenticated, no user (artefacts.help's RpcHttp line);
  HttpProxy has no substatus nor Windows error, so the line cannot tell a
  bad password from a challenge.
- [readme] what casguard says it counts (README "Outputs"): a failed sign-in
  is still a person's request for the user it names; anonymous first legs are
  people's requests of no user; Outlook mobile's Autodiscover joins the
  user's one ActiveSync device of that app; users keyed by lower-cased
  account name.
- [ex03-fields] IIS logging set by hand (what `more()` writes on EX03): the
  W3C fields an admin can tick are those of `logExtFileFlags` (iis-docs
  `.../logFile/index.md`; xWebAdministration's LogFlags: SiteName,
  ComputerName, ProtocolVersion, Cookie, Host, BytesSent, BytesRecv ...),
  written in IIS's fixed order whatever the order ticked; an hourly rollover
  names the file `exyymmddhh.log` ("rolled over every hour, based on GMT",
  learn.microsoft.com `HTTP_LOGGING_ROLLOVER_TYPE`), `u_` for UTF-8.
- [iis-size] a log rolled by size (`period="MaxSize"`) is named
  `extendnn.log` ("W3C Extended Log File Format | Size | extendnn.log",
  `HTTP_LOGGING_ROLLOVER_TYPE`), `u_extend1.log` with UTF-8; each new file
  starts with its header.
- [crash] README "audit": NUL bytes are what "a server that crashed or lost
  power leaves where its next lines were to be" (the file's length was
  written, its last block was not); IIS appends its header block to the
  same file when it starts again [w3c].
- [eas-503] ActiveSync answered 503 while the back end cannot serve it:
  "In the W3SVC logs, you will see HTTP 409 and 503 responses returned for
  Microsoft-Server-ActiveSync requests", with the user named, `503 0 0`
  (Microsoft KB 2469722).
- [owa-cookie] Exchange 2013+'s routing cookie as clients send it back:
  `X-BackEndCookie=S-1-5-21-...=<base64>` (a Provision request quoted on
  Stack Overflow 26855197, "Implementing Provision on Exchange ActiveSync
  client"); OWA also keeps `X-OWA-CANARY` and `ClientId`. IIS writes the
  Cookie header with `+` for its spaces [iis-plus].
- [scanner-404] Internet-wide scanners ask every server for other products'
  files (`/.env`, `/wp-login.php`, `/phpmyadmin/`, PHPUnit's
  `eval-stdin.php` of CVE-2017-9841, `/.git/config`): 404.0 with error 2
  (file not found) on IIS, paths under none of Exchange's virtual
  directories (README `outside-vdirs`).
- [aosp-eas] Android's own Email app's Exchange client: user agent
  `Android/<release>-EAS-1.3` (`Android/4.0.4-EAS-1.3`, `Android/4.1.1-EAS-1.3`
  in a public ActiveSync server's list of user agents), DeviceType
  `Android`, device ids `androidc<digits>`; its ActiveSync 12.1 is assumed
  (AOSP's change "Minimal support for Exchange ActiveSync 12.1").
- [eas-449] MS-ASPROV Appendix A <3>: "When the MS-ASProtocolVersion header
  is set to 12.1, the server sends an HTTP 449 response to request a
  Provision command from the client" (14.0 and later: Status 142 in the
  body); the client then provisions (policy, acknowledgement) and retries.
- [owa-fba] OWA's forms sign-in as IIS logs it: `POST /owa/auth.owa`, the
  query starting `&ClientId=...&CorrelationID=<empty>;&cafeReqId=...;`,
  the account typed in cs-username, answered 302; turned down, the query
  also holds `&LogoffReason=NoCookiesGetOrE14AuthPost` (tests/data/iis:
  IPBan's "invalid credentials" line, and Microsoft Q&A 228014's accepted
  sign-in; README "failed sign-in").
- [simulate] for expect.py (casguard simulate): each request an audit
  counts apart from attacks (people's, probes', computer accounts'), as
  meant: user, protocol, client, user agent, ActiveSync device and command,
  client address and network, the connection's address (`peer`), path,
  the client's query and the query as the counted line logged it (an IIS
  front-end line's ends with Exchange's `&CorrelationID=<empty>;&cafeReqId=
  ...;` [hp-join]), status, the authentication type its
  counted line gives (HttpProxy only), and the person behind a request that
  names no user (`owner`, this writer's knowledge, for evidence only).
- [fb-hybrid] Exchange Online's free/busy lookups of on-premises mailboxes
  in a hybrid (Exchange 2013+ with OAuth, not the 2010 WSSecurity
  endpoints): Autodiscover with user agent `ASAutoDiscover/CrossForest/
  EmailDomain/...`, then EWS with `ASProxy/CrossForest/EmailDomain/...`
  (MicrosoftDocs/OfficeDocs-Support "Resolve free/busy errors in Exchange
  hybrid": look in the HttpProxy Autodiscover and Ews logs for them; "Some
  entries that have the HTTP status code `401 Unauthorized` are normal":
  the token's challenge); `ASProxy/CrossForest/EmailDomain/EXCH/08.03.0083.000`
  and `/EWS/Exchange.asmx` with `&ClientId=...&cafeReqId=...;` in an IIS line
  of KB 3082946; from Exchange Online's addresses [m365]. The token acts for
  the cloud user who asked (decompiled EWS: an OAuth identity "known from
  same org Exchange" with `ASProxy/CrossForest`). Assumed, no public line
  found: IIS writes that user's address in cs-username, as for Outlook
  mobile's Bearer requests [olm-hma], and HttpProxy's AuthenticationType is
  `OAuth`.
- [mrs-proxy] a hybrid mailbox move from Exchange Online calls the
  on-premises MRS proxy, `POST /EWS/mrsproxy.svc`, with the migration
  endpoint's stored credentials, an on-premises administrator's, with
  Windows authentication ("Exchange Online requires Windows authentication
  for the MRS proxy endpoint", OfficeDocs-Exchange `mrs-proxy-endpoint.md`,
  pull request 2009); the one public IIS line (tests/data/iis/
  jpmessaging-hybrid-agent-mrsproxy-503.log) has no user agent and the
  account `miry\\administrator`; `Test-MigrationServerAvailability` leaves
  "two 401s and then 200s" (the same post): NTLM's legs [ntlm-legs].
- [adfs-owa] OWA with AD FS claims-based authentication (Exchange 2013 SP1
  and later, `Set-OwaVirtualDirectory -AdfsAuthentication $true`,
  OfficeDocs-Exchange `ad-fs-claims-based-auth.md`): `/owa/` sends the
  browser to AD FS (a 302 of no user), the browser posts the token back to
  `/owa/` and is then signed in under the UPN claim, which IIS logs as
  `user@domain`; the AD FS server's own requests are not in Exchange's logs.
- [hma-challenge] with hybrid modern auth the first request to on-premises
  ActiveSync carries an empty Bearer challenge and is answered 401 with
  `WWW-Authenticate: Bearer authorization_uri=...` (`use-hybrid-modern-auth.md`;
  reference notes section 4), from the AutoDetect range [m365]; an
  application's 401, not IIS's: `401 0 0`, no user.
- [ipv6] a client on IPv6 is logged with its IPv6 address in c-ip (IIS's
  own sample logs; tests/data has `fe80::...` s-ip lines).
- [devices] the estate's ActiveSync partnerships as `Get-MobileDevice |
  Get-MobileDeviceStatistics | ConvertTo-Json` (PowerShell 7: an array, ISO
  dates) writes them, with the columns the README's `--devices` names
  (Identity `<domain>/Users/<name>/ExchangeActiveSyncDevices/<type>§<id>`,
  DeviceId, DeviceType, DeviceModel, DeviceOS, FirstSyncTime,
  LastSuccessSync, LastSyncAttemptTime, DeviceAccessState, SamAccountName,
  PrimarySmtpAddress; office-docs-powershell `Get-MobileDeviceStatistics`);
  Outlook for iOS and Android's DeviceModel `Outlook for iOS and Android`
  (OfficeDocs-Exchange `manage-devices.md`).
- [incidents] attacks as public incident reports show them (`incidents()`):
- [volexity-css] ProxyLogon's SSRF (CVE-2021-26855) POSTed to OWA's own
  static files, `POST /owa/auth/Current/themes/resources/logon.css`,
  `owafont_ja.css`, `lgnbotl.gif`, with crawlers' user agents
  (`DuckDuckBot/1.0;+(+http://duckduckgo.com/duckduckbot.html)`,
  `facebookexternalhit/1.1`) (Volexity, "Operation Exchange Marauder",
  2021-03-02; Neo23x0 signature-base `EXPL_LOG_CVE_2021_26858_Exchange_
  Forensic_Artefacts_Mar21_1`, which matches these POSTs in IIS logs).
- [webshell-paths] web shells dropped where IIS runs them: `\inetpub\
  wwwroot\aspnet_client\` (served as `/aspnet_client/`, a folder of the
  Default Web Site, not an Exchange virtual directory: no HttpProxy line),
  `\FrontEnd\HttpProxy\owa\auth\`, `...\ecp\auth\` (Splunk "Detect
  Exchange Web Shell", after Microsoft's HAFNIUM and ProxyShell guidance;
  CISA AA21-062A's names such as `supp0rt.aspx`); China Chopper carries its
  command in the POST body, others in the query (`cmd=`).
- [proxyshell-chain] ProxyShell (CVE-2021-34473/34523/31207) end to end:
  `autodiscover.json?@foo.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@foo.com`
  for the LegacyDN, `/autodiscover/autodiscover.xml`, `/mapi/emsmdb` for the
  SID, `/EWS/` as SYSTEM, `/powershell/?X-Rps-CAT=` with a forged token
  naming the `-500` administrator (Orange Tsai, ZDI "From Pwn2Own 2021: A
  New Attack Surface on Microsoft Exchange - ProxyShell!"; kh4sh3i/ProxyShell
  README; Neo23x0 `EXPL_Exchange_ProxyShell_Successful_Aug21_1`: `/(mapi/nspi|EWS/)`
  answered `200 0 0`), then `New-MailboxExportRequest -FilePath ...aspx`
  writes the shell into aspnet_client (ANSSI's ProxyShell Sigma rules, in
  mthcht's ThreatHunting-Keywords `ProxyShell.yara`).
- [mbx-export] mailboxes exported with `New-MailboxExportRequest` to a PST
  under the site and downloaded (README `data-theft`: "mailbox exports
  fetched from web paths"; HAFNIUM's use of Exchange PowerShell to export
  mailboxes, Microsoft Security blog 2021-03-02).
- [notshell-gtsc] ProxyNotShell (CVE-2022-41040/41082) needs a mailbox
  user's password: `autodiscover.json` with `@` and `Powershell` in the URL,
  signed in (GTSC's report, 2022-09-28; Microsoft's mitigation regex
  `.*autodiscover\.json.*\@.*Powershell.*`; MSRC guidance). The signed-in
  user is the victim whose password was stolen, not the requester.
- [owassrf] OWASSRF (CVE-2022-41080 with 41082, Play ransomware, Rackspace):
  `POST /owa/mastermailbox%40outlook.com/powershell` with a user's
  password, answered 200 (CrowdStrike "OWASSRF: CrowdStrike Identifies New
  Method for Bypassing ProxyNotShell Mitigations", 2022-12; Neo23x0
  `expl_proxynotshell_owassrf_dec22.yar`, which matches `%40` or `@`).
  Written `%40` as CrowdStrike quotes it; whether IIS writes cs-uri-stem
  decoded there was not found.
- [nmap-nse] Microsoft's nmap script `http-vuln-cve2021-26855.nse`
  (CSS-Exchange/Security): `GET /owa/auth/x.js` with `Cookie: X-AnonResource=true;
  X-AnonResource-Backend=localhost/ecp/default.flt?~3; X-BEResource=localhost/owa/auth/logon.aspx?~3;`,
  nmap's user agent `Mozilla/5.0 (compatible; Nmap Scripting Engine;
  https://nmap.org/book/nse.html)`; CSS-Exchange's BackendCookieMitigation:
  those cookies "were found to be used in the SSRF attacks in the wild".
- [exch-version] the build read from ECP's eDiscovery export tool manifest,
  `/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application`
  (righel's `ms-exchange-version.nse`, an nmap script; a file Exchange ships).
- [censys] Censys's scanner: `Mozilla/5.0 (compatible; CensysInspect/1.1;
  +https://about.censys.io/)` (scanner user-agent lists).
- [nuclei] Nuclei's user agent in its request builder
  `Nuclei - Open-source project (github.com/projectdiscovery/nuclei)` (newer
  versions send random browsers' agents); its CVE-2021-26855 template asks
  `/owa/auth/x.js` with the [nmap-nse] cookies (backend
  `somethingnonexistent`), its ProxyShell check is Kevin Beaumont's
  `autodiscover.json?@test.com/owa/?&Email=autodiscover/autodiscover.json%3F@test.com`
  (302 = vulnerable; exchange-proxyshell.nse).
- [spray-slow] Midnight Blizzard's password spray, "a limited number of
  attempts to evade detection", from "a distributed residential proxy
  infrastructure" (Microsoft Security blog, "Midnight Blizzard: Guidance for
  responders", 2024-01-25); the README judges a spray per source address
  (`--spray-users` within `--spray-window`), so a pool that never sends five
  accounts from one address in 20 minutes makes failed sign-ins only.
  Doors: EWS with Basic through the EWS Managed API (MailSniper's
  `Invoke-PasswordSprayEWS`), ActiveSync with Basic from a script
  (`OPTIONS` answered 401.1, 1326), OWA's forms with PowerShell's
  `Invoke-WebRequest` user agent (MailSniper's `Invoke-PasswordSprayOWA`
  posts `/owa/auth.owa` with it).
- [mailsniper] MailSniper (dafthack): `Invoke-SelfSearch` and the EWS
  spray drive the EWS Managed API (`New-Object Microsoft.Exchange.
  WebServices.Data.ExchangeService`), whose user agent is [ews-ua]: a
  mailbox searched and read in bulk over EWS is the signed-in user's EWS
  requests from an EWS client other than Outlook (README `ews-non-outlook`);
  nothing in an IIS line tells FindItem from GetItem.
- [real-files] what copies of real servers' log folders hold (`real_files()`):
- [mrs-route] the front end proxies `/EWS/MRSProxy.svc` not to the back
  end's EWS (`Exchange Back End`, 444) but to the Mailbox Replication
  service's own WCF endpoint, `https://<mailbox server>:443/Microsoft.
  Exchange.MailboxReplicationService.ProxyService` (decompiled Exchange
  `Microsoft.Exchange.FrontEndHttpProxy/HttpProxy/MrsProxyRequestHandler.cs`,
  `GetTargetBackEndServerUrl`: port 444 made 443, path replaced; PiratesRE/
  exchange_diff, happygitty/codediff), which HTTP.sys hands to
  MSExchangeMailboxReplication, not to IIS: no back-end IIS line. The
  service authorizes its callers by admin roles (`MRSProxyAuthorizationManager`:
  RecipientAdmins, Exchange Servers, LocalSystem, BUILTIN\\Administrators),
  never through EWS's `CallContext`. Corrected on 2026-12-04 (stop 38):
  `hybrid()` had written a W3SVC2 hop for each call.
- [ms02-fe] Exchange 2016+ has no separate Client Access server: every
  Mailbox server runs the front end's services too (Default Web Site,
  W3SVC1), and Managed Availability probes each server's own front end from
  the loopback whether or not the balancer sends it clients (OfficeDocs-
  Exchange `architecture/architecture.md`; [probes]).
- [local-rollover] IIS `logFile localTimeRollover="true"`: "a new log file
  is created based on local time" (iis-docs `.../sites/site/logFile/
  index.md`); the W3C lines' `date time` stay in UTC ([iis-fields]), so on a
  server at UTC+1 `u_ex261110.log` runs from 2026-11-09 23:00 to
  2026-11-10 22:59 UTC and holds two dates.
- [ps51-bom] Windows PowerShell 5.1's `Set-Content -Encoding UTF8` (and
  `Out-File -Encoding utf8`) writes UTF-8 *with* a byte-order mark
  (learn.microsoft.com `about_Character_Encoding`: "UTF8: Encodes in UTF-8
  format (with BOM)" in Windows PowerShell); a log an admin filtered that
  way before sending it starts `EF BB BF #Software`.
- [live-copy] HTTP.sys buffers log entries and writes them in blocks
  (`netsh http flush logbuffer`, "Flushes the internal buffers for the
  logfiles", learn.microsoft.com "Netsh http commands"): the file of the
  current hour, copied while IIS writes it, can end inside a line, without
  its CRLF. README: "a line they cut short is malformed".
- [ad-redirect] the Autodiscover HTTP redirect method: outside the domain
  Outlook tries `http://autodiscover.<domain>/Autodiscover/Autodiscover.xml`
  with GET and follows a 302 (MS-OXDISCO 3.1.5.4 "Locations Found by an HTTP
  Redirect"; the Exchange 2010 hosting guide's "AutoDiscover redirection"
  site; Steve Goodman, "Using AutoDiscover with large numbers of accepted
  domains", TechGenix: a separate IIS site with an HTTP redirect on the
  Exchange servers): a second web site, W3SVC3, port 80, anonymous, `302 0
  0`, answered by IIS's `httpRedirect` itself (no HttpProxy line).
- [ansi-logs] IIS's `logInUTF8` (server-wide, `system.applicationHost/log`,
  default true; IIS Manager's Logging "Encoding: UTF-8 | ANSI"): set
  false, IIS writes its logs in the system's ANSI code page (Windows-1252 on
  a Western European server) and names them without `u_` (`exyymmdd.log`;
  the `u_` prefix marks UTF-8, [ex03-fields]), so `Jürgen` is the byte
  0xFC, no UTF-8. EX04 is an Exchange 2016 server (15.1) kept beside the
  2019 ones, its IIS set up that way years ago; only its Default Web
  Site's folder was collected. Its per-server InternalUrl
  (`https://ex04.contoso.com/owa`, Exchange's default: the server's FQDN)
  is still in jürgen's bookmarks: his OWA on day 2 goes through EX04,
  which proxies it to his mailbox on EX02 (that hop logged in UTF-8).
  The truth: jürgen's requests, one user with his UTF-8 ones.
- [ews-log] Exchange's EWS log beside the HttpProxy logs in a `Logging`
  folder given whole: `Logging\\Ews\\Ews_yyyyMMddHH-N.LOG`, `#Log-type: EWS
  Logs` (so written, capitals), a CSV of 108 columns (`DateTime,RequestId,
  ...,SoapAction,HttpStatus,...`, no `UrlStem`), Managed Availability's
  `Ews_AM_Probe/Local (ExchangeServicesClient/15.01.2375.007)` calling
  `GetFolder` from ::1 (Qazeer/artefacts.help `pages/others/
  microsoft_exchange.md`, "Exchange Web Services (EWS) logs", Exchange 2016
  CU23). README: another `#Log-type` is named and not read.
"""

import argparse
import base64
import gzip
import ipaddress
import json
import os
import random
import re
import struct
import sys
import uuid
from collections import defaultdict
from urllib.parse import quote

DOMAIN = "CONTOSO"
MAILDOMAIN = "contoso.com"
HOST = "mail.contoso.com"
# One front end (EX01) and two back ends (EX01 and EX02 hold mailboxes).
FE_IP = "10.0.0.21"
BE_IPS = {"EX01": "10.0.0.21", "EX02": "10.0.0.22"}
# [more] a second front end, EX03 (no mailboxes), added on day 2 behind the
# same name; its IIS logging was set up by hand [ex03-fields].
# [real-files] EX02's own front end [ms02-fe], EX04 the Exchange 2016 server [ansi-logs].
FE_IPS = {"EX01": FE_IP, "EX03": "10.0.0.23", "EX02": "10.0.0.22", "EX04": "10.0.0.24"}
DAYS = ["2026-11-09", "2026-11-10"]

# [iis-fields] the default field list, which Exchange setup leaves unchanged.
FIELDS = [
    "date", "time", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port",
    "cs-username", "c-ip", "cs(User-Agent)", "cs(Referer)", "sc-status",
    "sc-substatus", "sc-win32-status", "time-taken",
]
# [iis-custom] day 2's front end also logs X-Forwarded-For (enabled between days).
FIELDS_XFF = FIELDS + ["X-Forwarded-For"]
# IIS's fixed order when more standard fields are ticked (the order of the
# `logExtFileFlags` list in iis-docs): s-computername after date time
# s-sitename, cs-host after cs(Referer), sc-bytes cs-bytes before time-taken.
FIELDS_MORE = [
    "date", "time", "s-computername", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port",
    "cs-username", "c-ip", "cs(User-Agent)", "cs(Referer)", "cs-host", "sc-status", "sc-substatus",
    "sc-win32-status", "sc-bytes", "cs-bytes", "time-taken", "X-Forwarded-For",
]

# Networks of the truth, in this writer's words. The check maps them to
# casguard's names (cloud -> microsoft365).
M365 = [ipaddress.ip_network(n) for n in (
    "40.96.0.0/13", "52.96.0.0/14", "40.104.0.0/15", "52.125.128.0/20",
    "52.127.96.0/23", "2603:1036::/36", "2603:1026::/36", "132.245.0.0/16",
)]


# "Private ranges" as RFC 1918 and RFC 4193 define them. The documentation
# ranges (RFC 5737 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; RFC 3849
# 2001:db8::/32) stand for Internet addresses here, as they do in RFCs.
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]


def is_private(ip):
    a = ipaddress.ip_address(ip)
    return a.is_loopback or any(a in n for n in PRIVATE)


def network_of(ip):
    a = ipaddress.ip_address(ip)
    if a.is_loopback:
        return "loopback"
    if any(a in n for n in M365):
        return "cloud"
    if any(a in n for n in PRIVATE):
        return "internal"
    return "external"


def plus(s):
    """[iis-plus] how IIS writes a value with spaces."""
    return "-" if s is None or s == "" else s.replace(" ", "+")


def log_escape(v):
    """[eas-log] HttpUtility.UrlEncode of a Log value, `_` as %5F."""
    return quote(str(v), safe="").replace("%20", "+").replace("_", "%5F")


def eas_log(tokens):
    out = []
    for k, v in tokens:
        out.append(k if v is None else f"{k}:{v}" if isinstance(v, int) else f"{k}:{log_escape(v)}")
    return "_".join(out) + "_"


EAS_CODES = {"Sync": 0, "SendMail": 1, "GetAttachment": 4, "FolderSync": 9, "GetItemEstimate": 14,
             "ItemOperations": 19, "Ping": 18, "Provision": 20, "Settings": 17}


def eas_base64(cmd, device_id, device_type, user, policy_key=None, version=141):
    """[ashttp-b64] the binary query, base64 (RFC 2045 alphabet), then
    percent-encoded as a URI query must carry `+ / =`."""
    b = bytes([version, EAS_CODES[cmd]]) + struct.pack("<H", 0x0409)
    did = device_id.encode("ascii")
    b += bytes([len(did)]) + did
    b += b"\x00" if policy_key is None else b"\x04" + struct.pack("<I", policy_key)
    dt = device_type.encode("ascii")
    b += bytes([len(dt)]) + dt
    u = user.encode("utf-8")
    b += bytes([8, len(u)]) + u
    return quote(base64.b64encode(b).decode("ascii"), safe="")


class Truth:
    def __init__(self):
        self.summary = defaultdict(int)
        self.protocols = defaultdict(int)
        self.clients = defaultdict(int)
        self.users = {}
        self.attacks = defaultdict(lambda: {"requests": 0, "exploit": 0, "kinds": set(), "statuses": []})
        self.failed = defaultdict(int)
        self.spray = defaultdict(set)
        self.brute_force = set()
        self.backend = {"requests": 0, "probes": 0, "lines": 0, "protocols": defaultdict(int),
                        "clients": defaultdict(int), "users": defaultdict(int)}
        self.findings = defaultdict(set)
        self.malformed = []
        self.probe_user_agents = defaultdict(int)
        # People's requests by HttpProxy's AuthenticationType, lower-cased
        # ("none" when it is empty), "unknown" for those counted from IIS.
        self.auth_types = defaultdict(int)
        # (protocol, client) -> Basic sign-ins counted from HttpProxy lines.
        self.basic_auth = defaultdict(lambda: {"requests": 0, "users": set()})
        # Lines of a kind worth naming, by protocol: NTLM challenge legs,
        # load-balancer health checks.
        self.tags = defaultdict(lambda: defaultdict(int))

    def user(self, key):
        return self.users.setdefault(key, {"requests": 0, "protocols": defaultdict(int),
                                           "clients": defaultdict(int), "devices": {},
                                           "sources": defaultdict(lambda: [None, 0]),
                                           "failed_sign_ins": 0, "device_keys": set(), "device_sources": {},
                                           "first_seen": None, "last_seen": None})


class Estate:
    def __init__(self, seed, httpproxy="none"):
        self.rng = random.Random(seed)
        self.truth = Truth()
        # (server, site, day) -> list of (seconds, line)
        self.lines = defaultdict(list)
        # [hp-*] HttpProxy logs: "none" (IIS only, as before), "also" (the
        # front end's HttpProxy logs beside its IIS logs) or "only" (the
        # HttpProxy logs alone). Their own random numbers, so the IIS logs of
        # "none" keep their bytes.
        self.hp_mode = httpproxy
        self.hp_rng = random.Random(seed * 7919 + 17)
        self.hp_lines = []          # (day, seconds, {field: value})
        self.hp_ids = set()
        # [simulate] every request an audit counts apart from attacks, as
        # meant: what a policy judges it on (expect.py).
        self.requests = []

    def record(self, kind, day, t, **kw):
        """[simulate] one request (`person`, `probe` or `machine`) for
        expect.py: who sent it, what it asked, from where; `ua` as the line it
        counts from has it (in an HttpProxy line its commas are spaces)."""
        stamp = f"{day}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
        self.requests.append({"kind": kind, "time": stamp, **kw})

    def guid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def write(self, server, site, day, t, method, stem, query, port, user, cip, ua, status,
              sub=0, win32=0, referer=None, xff=None, taken=None, hp=None, cookie=None):
        """Keeps the line's values by field name: emit() writes them in the
        order of the `#Fields` in force where the line lands. With `hp` (what
        Exchange's HttpProxy module knows of the request) and HttpProxy logs
        on, the front end also logs the request in HttpProxy, and the IIS
        line carries its `RequestId` as `&cafeReqId=` [hp-join]. Returns
        whether it did."""
        hh, mm, ss = t // 3600, t // 60 % 60, t % 60
        taken = taken if taken is not None else self.rng.randint(15, 900)
        # Only EX01's HttpProxy logs were collected: EX03's IIS lines carry
        # their `cafeReqId` with no twin given [readme "a line whose
        # HttpProxy file is not given"].
        twin = hp is not None and self.hp_mode != "none" and site == "W3SVC1" and server == "EX01"
        if twin:
            query = self.hp_line(day, t, method, stem, query, cip, ua, status, xff, hp)
        s_ip = BE_IPS.get(server, FE_IP) if site == "W3SVC2" else FE_IPS.get(server, FE_IP)
        vals = {
            "date": day, "time": f"{hh:02d}:{mm:02d}:{ss:02d}", "s-ip": s_ip, "cs-method": method,
            "cs-uri-stem": stem, "cs-uri-query": query or "-", "s-port": str(port), "cs-username": plus(user),
            "c-ip": cip, "cs(User-Agent)": plus(ua), "cs(Referer)": plus(referer), "sc-status": str(status),
            "sc-substatus": str(sub), "sc-win32-status": str(win32), "time-taken": str(taken),
            "X-Forwarded-For": plus(xff), "s-computername": server, "cs-host": HOST if site == "W3SVC1" else
            f"{server.lower()}.{MAILDOMAIN}:444", "sc-bytes": str(self.rng.randint(200, 90000)),
            "cs-bytes": str(self.rng.randint(200, 9000)),
            # [ex03-fields] only EX03 logs these
            "s-sitename": site, "cs-version": "HTTP/1.1", "cs(Cookie)": plus(cookie),
        }
        self.lines[(server, site, day)].append((t, vals))
        self.logged_query = query or ""
        return twin

    def hp_line(self, day, t, method, stem, query, cip, ua, status, xff, hp):
        """[hp-fields] the HttpProxy line of a front-end request; returns the
        IIS query with `&cafeReqId=<RequestId>;` [hp-join]: the one Exchange
        already wrote there, or a new one (one id per request: an NTLM
        sign-in's three IIS lines are three requests)."""
        ids = CAFE_ID.findall(query or "")
        if ids and ids[-1] not in self.hp_ids:
            rid = ids[-1]
        else:
            rid = str(uuid.UUID(int=self.hp_rng.getrandbits(128), version=4))
            if ids:
                cut = (query or "").rindex(ids[-1])
                query = query[:cut] + rid + query[cut + len(rid):]
            else:
                query = (query or "") + f"&CorrelationID=<empty>;&cafeReqId={rid};"
        self.hp_ids.add(rid)
        ms = self.hp_rng.randint(0, 999)
        stamp = f"{day}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}.{ms:03d}Z"
        begin = f"{day}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}.000Z"
        target = hp.get("target")
        proxied = target is not None and status != 401
        src = hp.get("ip") or client_address(cip, xff)
        real_q = url_query(query)
        user = hp.get("user") or ""
        vals = {
            "DateTime": stamp, "RequestId": rid, "MajorVersion": "15", "MinorVersion": "2",
            "BuildVersion": "1544", "RevisionVersion": "4",
            "ClientRequestId": hp.get("client_request_id", ""), "Protocol": hp["folder"],
            "UrlHost": "localhost" if hp.get("probe") else HOST, "UrlStem": stem,
            "ProtocolAction": hp.get("action", ""), "AuthenticationType": hp.get("auth", ""),
            "IsAuthenticated": "true" if user else "false", "AuthenticatedUser": user,
            "AnchorMailbox": hp.get("anchor") or (
                f"Sid~S-1-5-21-1004336348-1177238915-682003330-{1100 + len(user)}" if user else ""),
            "UserAgent": ua or "", "ClientIpAddress": src, "ServerHostName": "EX01",
            "HttpStatus": str(status), "BackEndStatus": str(status) if proxied else "",
            "Method": method, "ProxyAction": "Proxy" if proxied else "",
            "TargetServer": f"{target.lower()}.{MAILDOMAIN}" if proxied else "",
            "TargetServerVersion": "15.02.1544.000" if proxied else "",
            "RoutingType": "IntraForest" if proxied else "",
            "RoutingHint": hp.get("routing_hint") or ("WindowsIdentity" if proxied and user else ""),
            "RequestBytes": str(self.hp_rng.randint(0, 9000)), "ResponseBytes": str(self.hp_rng.randint(90, 90000)),
            "UrlQuery": "?" + real_q if real_q else "",
            "GenericInfo": f"BeginRequest={begin};CorrelationID=<empty>;ProxyState-Run=None;"
                           f"SharedCacheGuard=0;EndRequest={stamp};",
            # [hp-real] a back end's error answer: the .NET exception in
            # GenericErrors, in the server's language (artefacts.help's Eas
            # line, French: non-ASCII UTF-8 in a field).
            "GenericErrors": f"WebExceptionStatus=ProtocolError;ResponseStatusCode={status};"
                             f"WebException=System.Net.WebException: Le serveur distant a retourné une erreur : "
                             f"({status}) Interdit.    à System.Net.HttpWebRequest.EndGetResponse(IAsyncResult "
                             f"asyncResult);" if proxied and status >= 400 else "",
            "RoutingStatus": "CafeV1" if proxied else "",
        }
        # [hp-csv] Exchange's CSV writer puts a space for each comma (and
        # CR/LF) in a value, so no field needs quoting.
        vals = {k: v.replace(",", " ").replace("\r", " ").replace("\n", " ") for k, v in vals.items()}
        self.hp_lines.append((day, t, vals))
        return query

    # -- what a request means, recorded as it is written ---------------------

    def person(self, day, t, *, method, stem, query, user, ukey, cip, ua, proto, client,
               status=200, sub=0, win32=0, referer=None, xff=None, device=None, dtype=None,
               command=None, mailbox="EX01", be_query=None, be_stem=None, taken=None, join_device=None,
               owner=None, fe="EX01", hop=True, cookie=None, fba_failed=False):
        """A person's front-end request, and its back-end hop when Exchange
        proxies it (anything that got past IIS authentication). `owner`: the
        person behind a request that names no user (an NTLM leg), known to
        this writer only, for the evidence of a check."""
        hp = {"folder": HP_FOLDERS[proto], "auth": auth_of(proto, client, cip, ukey, status, win32),
              "user": user if status != 401 else "", "target": mailbox,
              "ip": hp_client_ip(client_address(cip, xff), client)}
        if proto == "mapi":
            # [hp-real] MAPI's ClientRequestId: `R:<guid>:n;RT:Execute;CI:<guid>:n;CID:<guid>`.
            g = str(uuid.UUID(int=self.hp_rng.getrandbits(128), version=4))
            hp["client_request_id"] = f"R:{g}:{self.hp_rng.randint(1, 99)};RT:Execute;CI:{g}:1;CID:{g}"
        if proto == "powershell":
            hp["action"] = "Get-Mailbox:Command"   # [hp-real] the cmdlet is logged
        twin = self.write(fe, "W3SVC1", day, t, method, stem, query, 443, user, cip, ua, status, sub, win32,
                          referer, xff, taken, hp=hp, cookie=cookie)
        logged_query = self.logged_query
        if self.hp_mode == "only" and not twin:
            return
        tr = self.truth
        # Which line an audit counts the request from [readme "HttpProxy"]:
        # IIS alone; beside HttpProxy logs its HttpProxy twin, except a 401,
        # counted from IIS (its substatus and error tell a failed sign-in);
        # HttpProxy alone, its HttpProxy line.
        view = "hp" if twin and (self.hp_mode == "only" or status != 401) else "iis"
        if twin and self.hp_mode == "also":
            tr.summary["iis_duplicates"] += 1
        tr.summary["requests"] += 1
        tr.protocols[proto] += 1
        tr.clients[client] += 1
        # An empty AuthenticationType says nothing of how the request signed
        # in (Exchange writes the scheme even of requests it turned away,
        # [hp-real]): unknown, as for IIS lines.
        tr.auth_types[(hp["auth"].lower() or "unknown") if view == "hp" else "unknown"] += 1
        basic = view == "hp" and hp["auth"] == "Basic"
        # [iis-401] a failed sign-in is a 401 whose Windows error says the
        # logon failed: 1326 (Basic: bad user name or password) or
        # 2148074252 = 0x8009030C SEC_E_LOGON_DENIED (NTLM/Negotiate). Not
        # 401.1 with 2148074254 = 0x8009030E: that is NTLM's challenge leg,
        # logged on every good NTLM sign-in [ntlm-legs].
        failed = status == 401 and win32 in (1326, 2148074252)
        # [owa-fba] OWA's forms sign-in turned down: only the IIS line says
        # so (`LogoffReason=NoCookiesGetOrE14AuthPost`, answered 302).
        # With HttpProxy logs beside, the request counts from its HttpProxy
        # line, and casguard keeps its IIS twin's word (as it keeps the
        # twin's substatus): still a failed sign-in. Corrected on 2026-12-04
        # (incidents): the writer had followed the README's "not found then".
        failed = failed or (fba_failed and (view == "iis" or (twin and self.hp_mode == "also")))
        if view == "hp" and status == 401:
            # [hp-401] HttpProxy's line of a 401 names no authenticated user
            # and has no substatus nor Windows error: not a failed sign-in
            # that can be told; its user is ActiveSync's `User=`, if any
            # [readme "HttpProxy lines give"].
            failed = False
            m = re.search(r"[?&]User=([^&]*)", "&" + url_query(query))
            ukey = m.group(1).replace("%5C", "\\").split("\\")[-1].split("@")[0].lower() if m else None
        if failed:
            tr.summary["failed_sign_ins"] += 1
        if status == 401 and sub == 1 and not failed and view == "iis":
            tr.tags["ntlm-challenge-leg"][proto] += 1
        src = client_address(cip, xff)
        self.record("person", day, t, user=ukey, proto=proto, client=client,
                    ua=ua.replace(",", " ") if view == "hp" else ua, device=device, dtype=dtype, command=command,
                    ip=src, network=network_of(src), method=method, stem=stem, status=status,
                    owner=owner if ukey is None else ukey, auth=hp["auth"] if view == "hp" else None,
                    view=view, query=url_query(query), logged_query=logged_query if view == "iis" else url_query(query),
                    # the connection's address: IIS's c-ip, also of a request
                    # counted from its HttpProxy line, whose IIS twin logged
                    # it; with HttpProxy logs alone, ClientIpAddress (taken
                    # to be the client, above)
                    peer=src if self.hp_mode == "only" else cip)
        if ukey is not None and basic:
            # README posture "Basic authentication in use": per protocol and
            # client, users' requests and the users (posture is "for every
            # user seen": a request naming none is no user's).
            tr.basic_auth[(proto, client)]["requests"] += 1
            tr.basic_auth[(proto, client)]["users"].add(ukey)
        if ukey is not None and view == "hp" and hp["auth"]:
            tr.summary["posture_auth_known"] += 1
        if ukey is None:
            tr.summary["anonymous"] += 1
        else:
            u = tr.user(ukey)
            u["requests"] += 1
            # README: a request without an ActiveSync device is grouped under
            # a device keyed by its user agent (in an HttpProxy line, with
            # its commas made spaces [hp-csv]).
            ua_key = ua.replace(",", " ") if view == "hp" else ua
            u["device_keys"].add(device or join_device or ua_key)
            # Per device and address, for the cloud addresses Outlook mobile
            # (Basic) is synced from: the `cloud_sources` of its finding.
            dk = device or join_device or ua_key
            u["device_sources"].setdefault(dk, {"client": client, "sources": defaultdict(int)})
            u["device_sources"][dk]["sources"][src] += 1
            stamp = f"{day}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
            u["first_seen"] = min(u["first_seen"] or stamp, stamp)
            u["last_seen"] = max(u["last_seen"] or stamp, stamp)
            u["protocols"][proto] += 1
            u["clients"][client] += 1
            s = u["sources"][src]
            s[0], s[1] = network_of(src), s[1] + 1
            if failed:
                u["failed_sign_ins"] += 1
                tr.failed[ukey] += 1
            dev_key = device or join_device
            if dev_key:
                d = u["devices"].setdefault(dev_key, {"type": dtype, "client": client, "requests": 0,
                                                      "commands": defaultdict(int), "networks": set()})
                d["requests"] += 1
                d["networks"].add(network_of(src))
                if command:
                    d["commands"][command] += 1
        # [exo-sites] the proxied hop on the mailbox server's back end; the
        # forms sign-in pages under /owa/auth are the front end's own.
        # `hop=False`: the back end never answered (the front end's 503).
        if status != 401 and ukey is not None and not stem.lower().startswith("/owa/auth/") and hop:
            self.write(mailbox, "W3SVC2", day, t, method, be_stem or stem, be_query or query, 444, user,
                       FE_IPS[fe], ua, status, 0, 0, referer, None, max(1, (taken or 100) - 5), cookie=cookie)
            if self.hp_mode == "only":
                return
            tr.summary["backend_duplicates"] += 1
            # What an audit of the back ends alone must say [readme]: each
            # hop is then the person's request.
            be = tr.backend
            be["requests"] += 1
            be["protocols"][proto] += 1
            be["clients"][client] += 1
            be["users"][ukey] += 1

    def person_tally(self, day, t, *, proto, client, cip, ua, stem, status):
        """An anonymous person's request already written (by write()), which
        IIS answered itself (no HttpProxy line)."""
        tr = self.truth
        if self.hp_mode == "only":
            return
        tr.summary["requests"] += 1
        tr.summary["anonymous"] += 1
        tr.protocols[proto] += 1
        tr.clients[client] += 1
        tr.auth_types["unknown"] += 1
        self.record("person", day, t, user=None, proto=proto, client=client, ua=ua, device=None, dtype=None,
                    command=None, ip=cip, network=network_of(cip), method="GET", stem=stem, status=status, peer=cip,
                    query="", logged_query="")

    def probe(self, day, t, *, stem, query, user, ua, site="W3SVC1", server="EX01", method="GET", device=None,
              dtype=None):
        port = 443 if site == "W3SVC1" else 444
        cip = self.rng.choice(["127.0.0.1", "::1"])
        # [hp-real] Managed Availability's probes in HttpProxy: UrlHost
        # localhost, Negotiate (ActiveSync's test: Basic).
        folder = HP_FOLDERS[proto_of(stem)]
        hp = {"folder": folder, "auth": "Basic" if folder == "Eas" else "Negotiate", "user": user,
              "target": server, "probe": True}
        twin = self.write(server, site, day, t, method, stem, query, port, user, cip, ua, 200, hp=hp)
        if self.hp_mode == "only" and not twin:
            return
        if twin and self.hp_mode == "also":
            self.truth.summary["iis_duplicates"] += 1
        self.truth.summary["probes"] += 1
        if site == "W3SVC2":
            self.truth.backend["probes"] += 1
        self.truth.probe_user_agents[ua] += 1
        self.record("probe", day, t, user=user.split("\\")[-1].split("@")[0].lower(), proto=proto_of(stem),
                    ua=ua, device=device, dtype=dtype, ip=cip, network=network_of(cip), stem=stem, site=site,
                    auth=hp["auth"] if twin else None, peer=cip, query=url_query(query),
                    logged_query=url_query(query) if twin else self.logged_query)

    def attack(self, day, t, *, method, stem, query, cip, ua, status, kind, user=None, sub=0, win32=0,
               server="EX01", ssrf=False, cookie=None):
        # [hp-real] Exchange's proxy logs what reaches a virtual directory
        # (the zgrab scan of /ecp in artefacts.help); IIS answers `/` itself,
        # and the site's own folders, such as /aspnet_client [webshell-paths].
        hp = None
        if stem != "/" and server == "EX01" and stem.lower().strip("/").split("/")[0] in VDIRS:
            folder = HP_FOLDERS[proto_of(stem)]
            hp = {"folder": folder, "auth": "FBA" if folder in ("Owa", "Ecp") else "",
                  "user": user if status != 401 else "", "target": "EX01"}
            if stem == "/ecp/y.js" or ssrf:
                # [proxylogon] the SSRF as HttpProxy logs it: routed by the
                # attacker's `X-BEResource` cookie, the anchor a server URL
                # (HelseCERT's Test-ProxyLogon excerpt, SOURCES-real.md).
                hp.update(anchor=f"ServerInfo~a]@ex01.{MAILDOMAIN}:444/autodiscover/autodiscover.xml?#",
                          routing_hint="X-BEResource-Cookie")
        twin = self.write(server, "W3SVC1", day, t, method, stem, query, 443, user, cip, ua, status, sub, win32,
                          hp=hp, cookie=cookie)
        if self.hp_mode == "only" and not twin:
            return
        if twin and self.hp_mode == "also":
            self.truth.summary["iis_duplicates"] += 1
        a = self.truth.attacks[cip]
        a["requests"] += 1
        a["kinds"].add(kind)
        # [hp-fields] an HttpProxy line has no substatus: counted from it,
        # a 404.19 (request filtering) reads as a plain 404.
        a["statuses"].append((status, 0 if twin and self.hp_mode == "only" else sub))
        self.truth.summary["attacks"] += 1
        if kind == "exploit-attempt":
            a["exploit"] += 1
            self.truth.summary["exploit_attempts"] += 1

    def machine(self, day, t, *, stem, query, user, cip, ua):
        hp = {"folder": HP_FOLDERS[proto_of(stem)], "auth": "Negotiate", "user": user, "target": "EX02"}
        twin = self.write("EX01", "W3SVC1", day, t, "POST", stem, query, 443, user, cip, ua, 200, hp=hp)
        if twin and self.hp_mode == "also":
            self.truth.summary["iis_duplicates"] += 1
        self.truth.summary["machine"] += 1
        self.record("machine", day, t, user=user.split("\\")[-1].lower(), proto=proto_of(stem),
                    ua=ua.replace(",", " ") if twin else ua, ip=cip, network=network_of(cip), stem=stem,
                    auth=hp["auth"] if twin else None, peer=cip, query=url_query(query),
                    logged_query=url_query(query) if twin else self.logged_query)


# [hp-where] HttpProxy's protocol folders, by this writer's protocol names.
HP_FOLDERS = {"activesync": "Eas", "ews": "Ews", "owa": "Owa", "ecp": "Ecp", "mapi": "Mapi", "rpc": "RpcHttp",
              "autodiscover": "Autodiscover", "oab": "Oab", "powershell": "PowerShell"}


# The virtual directories of Exchange's front end (Default Web Site).
VDIRS = ("microsoft-server-activesync", "ews", "owa", "ecp", "mapi", "rpc", "autodiscover", "oab", "powershell")


def proto_of(stem):
    """The virtual directory of a path, as this writer names protocols."""
    first = stem.lower().strip("/").split("/")[0]
    return {"microsoft-server-activesync": "activesync", "ews": "ews", "owa": "owa", "ecp": "ecp",
            "mapi": "mapi", "rpc": "rpc", "autodiscover": "autodiscover", "oab": "oab",
            "powershell": "powershell"}[first]


def auth_of(proto, client, cip, ukey, status, win32):
    """[hp-auth] how each client signs in, as HttpProxy's AuthenticationType
    says it: ActiveSync clients Basic (the artefacts.help Eas line), Outlook
    mobile with hybrid modern auth a Bearer token [olm-hma]; Outlook for
    Windows Negotiate on the LAN (the Elastic MAPI sample), NTLM from outside
    and on Outlook Anywhere (the RpcHttp line); OWA and ECP forms (FBA, also
    before sign-in: the Owa and Ecp lines); Apple's EWS clients NTLM (the
    Autodiscover line of AppleExchangeWebServices); remote PowerShell
    Kerberos (the PowerShell lines); Teams' calendar service an OAuth token
    (Exchange hybrid OAuth); an anonymous request none (empty). A failed
    Basic sign-in (1326) is Basic; other 401s of Outlook the NTLM challenge."""
    if proto in ("owa", "ecp"):
        return "FBA"
    if status == 401:
        # [hma-challenge][fb-hybrid] a token's challenge is no NTLM leg.
        return "" if win32 == 0 else "Basic" if win32 == 1326 else "NTLM"
    if ukey is None:
        return ""
    if client == "outlook-mobile-hma":
        return "Bearer"
    if client == "outlook-windows":
        return "NTLM" if proto == "rpc" or not is_private(cip) else "Negotiate"
    return {"remote-powershell": "Kerberos", "teams": "OAuth", "macos-mail": "NTLM",
            "outlook-mac": "NTLM", "exchange-availability": "OAuth", "mrs-proxy": "NTLM"}.get(client, "Basic")


def hp_client_ip(src, client):
    """[hp-real] `ClientIpAddress` of Outlook mobile's cloud carries the
    port (Q&A 158847's Eas line: `52.96.16.37:49660`)."""
    if client == "outlook-mobile-basic" and ":" not in src:
        return f"{src}:{49152 + sum(map(int, src.split('.'))) % 1000}"
    return src


CAFE_ID = re.compile(r"&cafeReqId=([0-9a-fA-F-]{36});")


def url_query(q):
    """The query the client sent, as HttpProxy's `UrlQuery` has it: without
    what IIS logging was given on top (`&Log=...` [eas-log], `&CorrelationID=
    <empty>;&cafeReqId=...;` [hp-join])."""
    q = q or ""
    if q.startswith("&"):
        # [owa-fba] OWA's forms post has no query: what IIS logs there
        # (`&ClientId=...`, `&LogoffReason=...`, `&encoding=;`, each after a
        # `&`) is all OWA's own logging. Corrected on 2026-12-04 (incidents):
        # the spray through EX01 had HttpProxy's UrlQuery carry LogoffReason.
        return ""
    q = re.sub(r"&CorrelationID=[^;&]*;", "", q)
    q = CAFE_ID.sub("", q)
    q = re.sub(r"&Log=[^&]*", "", q)
    return q


def client_address(cip, xff):
    """[xff] c-ip, unless it is the (private) balancer and X-Forwarded-For
    names a public address: then the right-most public one."""
    if xff and is_private(cip):
        for a in reversed([x.strip() for x in xff.split(",")]):
            # [appgw] `IP:port`, `[v6]:port`: the address without its port.
            if a.startswith("[") and "]" in a:
                a = a[1:a.index("]")]
            elif a.count(":") == 1:
                a = a.split(":")[0]
            try:
                if not is_private(a):
                    return a
            except ValueError:
                pass
    return cip


def cafe(est):
    """Exchange 2013+ front-end lines end their query with the correlation and
    the proxy's request id (`&CorrelationID=<empty>;&cafeReqId=<guid>;`)."""
    return f"&CorrelationID=<empty>;&cafeReqId={est.guid()};"


def times(rng, n, start=6 * 3600, end=23 * 3600):
    return sorted(rng.randint(start, end) for _ in range(n))


# -- the people -----------------------------------------------------------------

UA_IPHONE = "Apple-iPhone14C2/2101.101"          # iOS Mail: Apple-<model>/<build>
UA_OUTLOOK_BASIC = "Outlook-iOS-Android/1.0"     # [olm-basic]
UA_OUTLOOK_HMA = "Outlook-iOS/2.0"               # [olm-hma]
UA_GMAIL = "Android-Mail/2023.10.29.578135443.release"
UA_SAMSUNG = "SAMSUNG-SM-G991B/101.200001"
UA_WINMAIL = "MSFT-WIN-3/10.0.19045"
UA_OUTLOOK_WIN = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
UA_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/119.0.0.0 Safari/537.36")
UA_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"
UA_SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1")
UA_EWS_APP = "ExchangeServicesClient/15.00.0913.015"   # [ews-ua]
# [mac-mail] Apple Mail for macOS on EWS.
UA_MAC_MAIL = "Mac OS X/14.1.1 (23B81); ExchangeWebServices/14.0 (274); Mail/16.0 (3774.200.91.1.1)"
UA_EDGE = UA_CHROME + " Edg/119.0.2151.58"
# [mac-outlook] Outlook for Mac on EWS.
UA_MAC_OUTLOOK = "MacOutlook/16.78.23100802 (Intelx64 Mac OS X 14.1.1 (Build 23B81))"
# [teams] Teams' calendar service on EWS; note the literal `+` at its end.
UA_TEAMS = "MicrosoftNinja/1.0 Teams/1.0 (ExchangeServicesClient/0.0.0.0) SkypeSpaces/1.0a$*+"
UA_WINRM = "Microsoft WinRM Client"           # [rps]
UA_MSRPC = "MSRPC"                            # [rpc]

EAS_CMDS = ["Sync", "Sync", "Sync", "Ping", "Ping", "FolderSync", "GetItemEstimate", "ItemOperations",
            "SendMail"]


def eas_device(est, day, *, ukey, user, user_param, device_id, dtype, ua, client, ips, n, mailbox,
               b64=False, version="161", as_state=None, dev_os=None, dev_model=None, provision=False,
               stem="/Microsoft-Server-ActiveSync/default.eas", options=False):
    """An ActiveSync device's day: plain [ashttp-plain] or base64 [ashttp-b64]
    queries, Exchange's &Log= on the back end only [eas-log] [eas-fe]."""
    rng = est.rng
    ts = times(rng, n)
    if options:
        # An account set-up asks OPTIONS first: the device's parameters, no
        # Cmd (MS-ASHTTP 2.2.1.2 HTTP OPTIONS), no &Log= (no command ran).
        q = f"User={quote(user_param, safe='@')}&DeviceId={device_id}&DeviceType={dtype}"
        est.person(day, ts[0] - 5, method="OPTIONS", stem=stem, query=q, user=user, ukey=ukey, cip=ips[0], ua=ua,
                   proto="activesync", client=client, device=device_id, dtype=dtype, mailbox=mailbox)
    for i, t in enumerate(ts):
        cmd = "Provision" if provision and i == 0 else rng.choice(EAS_CMDS)
        cip = rng.choice(ips)
        toks = [("SC1", "1"), ("V" + version, None), ("HH", HOST),
                ("SmtpAdrs", f"{ukey}@{MAILDOMAIN}")]
        if cmd == "Ping":
            toks += [("Hb", 1680), ("Rto", 2), ("Cpo", rng.randint(100, 900)), ("Fet", 1680000)]
        else:
            toks += [("Fet", rng.randint(20, 900))]
        if cmd == "Provision":
            toks += [("Pk", rng.getrandbits(31))]
            # 14.1+: the device says what it is in Provision [eas-log].
            if dev_model:
                toks += [("DevModel", dev_model)]
            if dev_os:
                toks += [("DevOS", dev_os)]
        if as_state:
            toks += [("As", as_state)]
        toks += [("Mbx", f"{mailbox}.{MAILDOMAIN}"), ("Throttle", 0)]
        # [eas-fe] the front end's line has no `&Log=`: the back end, where
        # ActiveSync runs, writes it.
        be_log = eas_log([("PrxFrom", FE_IP)] + toks)
        if b64:
            q = eas_base64(cmd, device_id, dtype, user_param, None if cmd == "Provision" else 3141592653,
                           version=int(version[:3]) if len(version) == 3 else 141)
        else:
            q = f"Cmd={cmd}&User={quote(user_param, safe='@')}&DeviceId={device_id}&DeviceType={dtype}"
        fe_q = q
        be_q = f"{q}&Log={be_log}"
        taken = 1680000 + rng.randint(0, 900) if cmd == "Ping" else None
        est.person(day, t, method="POST", stem=stem, query=fe_q,
                   user=user, ukey=ukey, cip=cip, ua=ua, proto="activesync", client=client,
                   device=device_id, dtype=dtype, command=cmd, mailbox=mailbox,
                   be_query=be_q, be_stem="/Microsoft-Server-ActiveSync/Proxy/default.eas", taken=taken)
    if est.hp_mode == "only":
        # HttpProxy's UrlQuery has no `&Log=` (IIS logging's addition), so
        # the device's access state, model and OS are not in those logs.
        return
    if as_state:
        # [eas-log] `As:` is ActiveSync's access state and reason; `AllowedG`
        # = Allowed, by the Global (organisation) default; the last one
        # logged is the device's state.
        est.truth.users[ukey]["devices"][device_id]["access"] = as_state.rstrip("GIRPU").lower()
    if provision and dev_model:
        est.truth.users[ukey]["devices"][device_id]["model"] = dev_model
    if provision and dev_os:
        est.truth.users[ukey]["devices"][device_id]["os"] = dev_os


def outlook_desktop(est, day, *, ukey, user, ips, n, mailbox, xff=None):
    """[outlook-ua] Outlook for Windows on the LAN: MAPI over HTTP with an
    anonymous NTLM first leg per connection [iis-401], EWS for free/busy,
    Autodiscover, OAB."""
    rng = est.rng
    mbx_guid = est.guid()
    for t in times(rng, n):
        cip = rng.choice(ips)
        r = rng.random()
        if r < 0.6:
            stem, proto, q = rng.choice(["/mapi/emsmdb/", "/mapi/nspi/"]), "mapi", f"mailboxId={mbx_guid}@{MAILDOMAIN}" + cafe(est)
        elif r < 0.75:
            stem, proto, q = "/EWS/Exchange.asmx", "ews", cafe(est)
        elif r < 0.9:
            stem, proto, q = "/Autodiscover/Autodiscover.xml", "autodiscover", cafe(est)
        else:
            # [oab] the manifest, then LZX-compressed address-book files.
            stem = rng.choice([f"/OAB/{OAB_GUID}/oab.xml", f"/OAB/{OAB_GUID}/{OAB_GUID}-data-{rng.randint(1, 40)}.lzx",
                               f"/OAB/{OAB_GUID}/{OAB_GUID}-lng0409-{rng.randint(1, 40)}.lzx"])
            proto, q = "oab", cafe(est)
        method = "GET" if proto == "oab" else "POST"
        if proto in ("mapi", "ews") and rng.random() < 0.2:
            # [ntlm-legs] a new connection signs in: the anonymous first leg
            # (401.2, error 5), NTLM's challenge leg (401.1, 2148074254), both
            # of no user; neither is a failed sign-in.
            for sub, win32 in ((2, 5), (1, 2148074254)):
                est.person(day, t, method=method, stem=stem, query=q, user=None, ukey=None, cip=cip,
                           ua=UA_OUTLOOK_WIN, proto=proto, client="outlook-windows", status=401, sub=sub,
                           win32=win32, xff=xff, owner=ukey)
        est.person(day, t, method=method, stem=stem, query=q, user=user, ukey=ukey, cip=cip,
                   ua=UA_OUTLOOK_WIN, proto=proto, client="outlook-windows", mailbox=mailbox, xff=xff)


def owa(est, day, *, ukey, user, ua, client, ips, n, mailbox, xff=None):
    rng = est.rng
    ts = times(rng, n)
    for i, t in enumerate(ts):
        cip = rng.choice(ips)
        if i == 0:
            # the sign-in page, anonymous (forms-based authentication), with
            # its own files from the versioned folder under /owa/auth [owa-files].
            est.person(day, t, method="GET", stem="/owa/auth/logon.aspx",
                       query="url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=0" + cafe(est), user=None,
                       ukey=None, cip=cip, ua=ua, proto="owa", client=client, xff=xff)
            for f in ("themes/resources/favicon.ico", "themes/resources/segoeui-regular.ttf"):
                est.person(day, t, method="GET", stem=f"/owa/auth/{BUILD}/{f}", query=None, user=None, ukey=None,
                           cip=cip, ua=ua, proto="owa", client=client, xff=xff,
                           referer=f"https://{HOST}/owa/auth/logon.aspx")
            continue
        if i == 1:
            # after sign-in, the app's scripts from /owa/prem/<build>/ [owa-files]
            est.person(day, t, method="GET", stem=f"/owa/prem/{BUILD}/scripts/boot.worldwide.0.mouse.js", query=None,
                       user=user, ukey=ukey, cip=cip, ua=ua, proto="owa", client=client, xff=xff, mailbox=mailbox,
                       referer=f"https://{HOST}/owa/")
            continue
        action = rng.choice(["GetFolderMruConfiguration", "FindItem", "GetItem", "GetConversationItems",
                             "GetTime", "CreateItem"])
        q = f"action={action}&EP=1&ID=-{rng.randint(1, 99)}&AC=1" + cafe(est)
        est.person(day, t, method="POST", stem="/owa/service.svc", query=q, user=user, ukey=ukey, cip=cip,
                   ua=ua, proto="owa", client=client, referer=f"https://{HOST}/owa/", xff=xff, mailbox=mailbox)


KATE_MBX = "5b6a0c1e-9d41-4c1f-a3a2-7e5f0d9c2b11"
OAB_GUID = "9e2b3a0c-44d1-4f7e-8a2b-6c1d0e9f8a7b"
BUILD = "15.2.1544.4"


def fail(est, day, t, *, v, cip, stem="/Autodiscover/Autodiscover.xml", proto="autodiscover", fe="EX01"):
    """A Basic sign-in with a bad password [iis-401], for account form `v`."""
    ukey = v.split("\\")[-1].split("@")[0].lower()
    est.person(day, t, method="POST", stem=stem, query=cafe(est), user=v, ukey=ukey, cip=cip, ua=UA_OUTLOOK_WIN,
               proto=proto, client="outlook-windows", status=401, sub=1, win32=1326, fe=fe)
    return ukey


def build(seed, httpproxy="none"):
    est = Estate(seed, httpproxy)
    rng = est.rng
    tr = est.truth
    d1, d2 = DAYS
    for day in DAYS:
        xff_ok = day == d2
        # alice: iPhone Mail over ActiveSync from her carrier (IPv4 and IPv6),
        # OWA in Chrome from the LAN.
        eas_device(est, day, ukey="alice", user=f"{DOMAIN}\\alice", user_param=f"{DOMAIN}\\alice",
                   device_id="ApplF17ZK3N1Q1GH", dtype="iPhone", ua=UA_IPHONE, client="apple-mail-ios",
                   ips=["198.51.100.23", "2001:db8:85a3::8a2e:370:7334"], n=60, mailbox="EX01",
                   as_state="AllowedG", dev_os="iOS 17.1.2 21B101", dev_model="iPhone14C2", provision=(day == d1), options=(day == d1))
        owa(est, day, ukey="alice", user=f"{DOMAIN}\\alice", ua=UA_CHROME, client="browser",
            ips=["10.1.20.31"], n=25, mailbox="EX01")
        # bob: Outlook mobile with Basic: Microsoft's cloud polls from
        # Exchange Online addresses [olm-basic][m365]; its Autodiscover too,
        # joined to the device [readme]. Outlook for Windows on the LAN.
        bob_dev = "8C1E2F0A7B3D4C5E9F60718293A4B5C6"
        eas_device(est, day, ukey="bob", user=f"bob@{MAILDOMAIN}", user_param=f"bob@{MAILDOMAIN}",
                   device_id=bob_dev, dtype="Outlook", ua=UA_OUTLOOK_BASIC, client="outlook-mobile-basic",
                   ips=["52.98.33.17", "40.99.12.5", "2603:1036:304:8c1::2"], n=70, mailbox="EX02")
        for t in times(rng, 4):
            est.person(day, t, method="POST", stem="/Autodiscover/Autodiscover.xml", query=cafe(est),
                       user=f"bob@{MAILDOMAIN}", ukey="bob", cip="52.98.33.17", ua=UA_OUTLOOK_BASIC,
                       proto="autodiscover", client="outlook-mobile-basic", mailbox="EX02", join_device=bob_dev)
        outlook_desktop(est, day, ukey="bob", user=f"{DOMAIN}\\bob", ips=["10.1.20.44"], n=50, mailbox="EX02")
        # carol: Outlook mobile with hybrid modern auth [olm-hma]: Bearer
        # ActiveSync from Exchange Online, anonymous AutoDetect lookups of
        # autodiscover.json (legitimate: `Protocol=` present, no `/` path).
        eas_device(est, day, ukey="carol", user=f"carol@{MAILDOMAIN}", user_param=f"carol@{MAILDOMAIN}",
                   device_id="OLMA7F3C2B1D0E9F8A7B6C5D4E3F2A1B0", dtype="OutlookService", ua=UA_OUTLOOK_HMA,
                   client="outlook-mobile-hma", ips=["40.97.140.9", "52.96.88.201"], n=50, mailbox="EX01")
        for i, t in enumerate(times(rng, 3)):
            email = f"carol@{MAILDOMAIN}" if i == 0 else f"carol%40{MAILDOMAIN}"
            est.person(day, t, method="GET", stem="/autodiscover/autodiscover.json",
                       query=f"Email={email}&Protocol=activesync&RedirectCount=3" + cafe(est), user=None,
                       ukey=None, cip="52.125.128.44", ua=UA_OUTLOOK_HMA, proto="autodiscover",
                       client="outlook-mobile-unknown-auth")
        # dave: Gmail for Android from outside, Outlook for Windows inside.
        eas_device(est, day, ukey="dave", user=f"dave@{MAILDOMAIN}", user_param="dave",
                   device_id="androidc1849305526", dtype="Android", ua=UA_GMAIL, client="android-mail",
                   ips=["203.0.113.41"], n=40, mailbox="EX02", stem="/Microsoft-Server-ActiveSync")
        outlook_desktop(est, day, ukey="dave", user=f"{DOMAIN}\\Dave", ips=["10.1.21.7"], n=30, mailbox="EX02")
        # erin: Samsung Email, and OWA in Safari on her iPhone (a mobile
        # client on OWA: README's `mobile-on-ews`).
        eas_device(est, day, ukey="erin", user=f"{DOMAIN}\\erin", user_param=f"{DOMAIN}\\erin",
                   device_id="SEC1F0B2C3D4E5A6", dtype="SAMSUNGSMG991B", ua=UA_SAMSUNG, client="samsung-email",
                   ips=["198.51.100.88"], n=40, mailbox="EX01",
                   # its app writes the path in lower case: IIS paths are
                   # case-insensitive, so it is ActiveSync all the same
                   stem="/microsoft-server-activesync/default.eas",
                   # quarantined by the organisation's default on day 1,
                   # then allowed individually by the admin [eas-log]
                   as_state="QuarantinedG" if day == d1 else "AllowedI")
        owa(est, day, ukey="erin", user=f"{DOMAIN}\\erin", ua=UA_SAFARI_IPHONE, client="mobile-browser",
            ips=["198.51.100.88"], n=12, mailbox="EX01")
        # frank: a third-party EWS application, and Firefox on OWA.
        # IIS paths are case-insensitive; the app writes `/ews/exchange.asmx`
        # half the time. On day 2 it sends X-Forwarded-For: 10.1.1.1 itself:
        # c-ip is public, so the header is the client's say, not a proxy's [xff].
        for i, t in enumerate(times(rng, 35)):
            est.person(day, t, method="POST", stem="/ews/exchange.asmx" if i % 2 else "/EWS/Exchange.asmx",
                       query=cafe(est), user=f"frank@{MAILDOMAIN}", ukey="frank", cip="203.0.113.90", ua=UA_EWS_APP,
                       proto="ews", client="ews-third-party", mailbox="EX02", xff="10.1.1.1" if xff_ok else None)
        owa(est, day, ukey="frank", user=f"{DOMAIN}\\frank", ua=UA_FIREFOX, client="browser",
            ips=["10.1.22.15"], n=15, mailbox="EX02")
        # grace: Windows Mail, whose ActiveSync queries are base64 [ashttp-b64].
        eas_device(est, day, ukey="grace", user=f"{DOMAIN}\\grace", user_param=f"grace@{MAILDOMAIN}",
                   device_id="6F24CAD599A5BF1A690246B8C68FAE8D", dtype="WindowsMail", ua=UA_WINMAIL,
                   client="windows-mail", ips=["10.1.23.3"], n=30, mailbox="EX01", b64=True, version="141")
        outlook_desktop(est, day, ukey="grace", user=f"grace@{MAILDOMAIN}", ips=["10.1.23.3"], n=40,
                        mailbox="EX01")
        # heidi: OWA from home through the load balancer: c-ip is the
        # balancer, X-Forwarded-For the client [xff] (day 2 only logs it).
        owa(est, day, ukey="heidi", user=f"heidi@{MAILDOMAIN}", ua=UA_CHROME, client="browser",
            ips=["10.0.5.5"] if xff_ok else ["192.0.2.77"], n=30, mailbox="EX02",
            xff="192.0.2.77, 10.0.5.9" if xff_ok else None)
        # ivan: four failed sign-ins [iis-401] on ActiveSync, then his iPhone syncs.
        for t in times(rng, 4, 7 * 3600, 7 * 3600 + 600):
            q = f"Cmd=FolderSync&User=ivan&DeviceId=ApplDNPQ8K2L0M9X&DeviceType=iPhone"
            est.person(day, t, method="POST", stem="/Microsoft-Server-ActiveSync/default.eas", query=q,
                       user=f"{DOMAIN}\\ivan", ukey="ivan", cip="203.0.113.12", ua=UA_IPHONE,
                       proto="activesync", client="apple-mail-ios", status=401, sub=1, win32=1326,
                       device="ApplDNPQ8K2L0M9X", dtype="iPhone", command="FolderSync")
        eas_device(est, day, ukey="ivan", user=f"{DOMAIN}\\ivan", user_param="ivan",
                   device_id="ApplDNPQ8K2L0M9X", dtype="iPhone", ua=UA_IPHONE, client="apple-mail-ios",
                   ips=["203.0.113.12"], n=25, mailbox="EX02")

        # judy: OWA through Azure Application Gateway, X-Forwarded-For with
        # the client's port [appgw] (day 2, when the field is logged).
        if xff_ok:
            owa(est, day, ukey="judy", user=f"judy@{MAILDOMAIN}", ua=UA_FIREFOX, client="browser",
                ips=["10.0.6.4"], n=20, mailbox="EX01", xff="192.0.2.80:51234")
            owa(est, day, ukey="judy", user=f"judy@{MAILDOMAIN}", ua=UA_SAFARI_IPHONE, client="mobile-browser",
                ips=["10.0.6.4"], n=6, mailbox="EX01", xff="[2001:db8:1::77]:60211")
        # jürgen: UTF-8 user name [utf8], in capitals on MAPI, in lower case on
        # OWA: one account.
        outlook_desktop(est, day, ukey="jürgen", user=f"{DOMAIN}\\JÜRGEN", ips=["10.1.24.9"], n=20, mailbox="EX02")
        owa(est, day, ukey="jürgen", user=f"jürgen@{MAILDOMAIN}", ua=UA_CHROME, client="browser",
            ips=["10.1.24.9"], n=10, mailbox="EX02")
        # kate: Outlook for Windows from home mistypes her password twice: a
        # failed NTLM sign-in names no user [ntlm-legs].
        for t in times(rng, 2, 8 * 3600, 8 * 3600 + 60):
            est.person(day, t, method="POST", stem="/mapi/emsmdb/", query=f"mailboxId={est.guid()}@{MAILDOMAIN}" + cafe(est),
                       user=None, ukey=None, cip="192.0.2.150", ua=UA_OUTLOOK_WIN, proto="mapi",
                       client="outlook-windows", status=401, sub=1, win32=2148074252, owner="kate")
        outlook_desktop(est, day, ukey="kate", user=f"{DOMAIN}\\kate", ips=["192.0.2.150"], n=15, mailbox="EX01")

        # lena: Outlook mobile (Basic) on a phone and a tablet; its
        # Autodiscover cannot say which, so it stays a device of its own,
        # keyed by user agent [readme].
        # The tablet's app is a newer build: `Outlook-Android/2.0` [olm-hma
        # names the 2.0 agents], still DeviceType Outlook, so still Basic.
        for dev, ua in (("4D2A9C0B7E1F4A5B8C6D7E8F9A0B1C2D", UA_OUTLOOK_BASIC),
                        ("0F1E2D3C4B5A69788796A5B4C3D2E1F0", "Outlook-Android/2.0")):
            eas_device(est, day, ukey="lena", user=f"lena@{MAILDOMAIN}", user_param=f"lena@{MAILDOMAIN}",
                       device_id=dev, dtype="Outlook", ua=ua, client="outlook-mobile-basic",
                       ips=["52.97.150.3", "40.101.8.77"], n=20, mailbox="EX02")
        for t in times(rng, 3):
            est.person(day, t, method="POST", stem="/Autodiscover/Autodiscover.xml", query=cafe(est),
                       user=f"lena@{MAILDOMAIN}", ukey="lena", cip="52.97.150.3", ua=UA_OUTLOOK_BASIC,
                       proto="autodiscover", client="outlook-mobile-basic", mailbox="EX02")
        # kate also runs Outlook Anywhere from home [rpc] (both channels).
        for t in times(rng, 6):
            for method in ("RPC_IN_DATA", "RPC_OUT_DATA"):
                est.person(day, t, method=method, stem="/rpc/rpcproxy.dll",
                           query=f"{KATE_MBX}@{MAILDOMAIN}:6001" + cafe(est), user=f"{DOMAIN}\\kate", ukey="kate",
                           cip="192.0.2.150", ua=UA_MSRPC, proto="rpc", client="outlook-windows", mailbox="EX01")
        # alice reads her mail in Apple Mail on her Mac at home, over EWS [mac-mail].
        for t in times(rng, 20):
            est.person(day, t, method="POST", stem="/EWS/Exchange.asmx", query=cafe(est), user=f"alice@{MAILDOMAIN}",
                       ukey="alice", cip="198.51.100.23", ua=UA_MAC_MAIL, proto="ews", client="macos-mail",
                       mailbox="EX01")
        # oscar, an administrator: the admin center in Edge and the Exchange
        # Management Shell, from the LAN [ecp][rps].
        canary = "%032x" % rng.getrandbits(128)
        for t in times(rng, 15):
            stem, q = rng.choice([("/ecp/", cafe(est)), ("/ecp/default.aspx", cafe(est)),
                                  (f"/ecp/{BUILD}/themes/resources/favicon.ico", None),
                                  ("/ecp/DDI/DDIService.svc/GetList",
                                   f"schema=MailboxService&msExchEcpCanary={canary}" + cafe(est))])
            est.person(day, t, method="POST" if "DDI" in stem else "GET", stem=stem, query=q,
                       user=f"{DOMAIN}\\oscar", ukey="oscar", cip="10.1.30.5", ua=UA_EDGE, proto="ecp", client="browser",
                       referer=f"https://{HOST}/ecp/", mailbox="EX01")
        for t in times(rng, 10):
            est.person(day, t, method="POST", stem="/powershell",
                       query="serializationLevel=Full;ExchClientVer=15.2.1544.4;clientApplication=ManagementShell;"
                             "TargetServer=;PSVersion=5.1.17763.1852", user=f"{DOMAIN}\\oscar", ukey="oscar",
                       cip="10.1.30.5", ua=UA_WINRM, proto="powershell", client="remote-powershell", mailbox="EX01")

        # John Smith: a pre-Windows 2000 logon name with a space, which IIS
        # writes as `+` [iis-plus]; `+` itself cannot be in one [ad-names].
        outlook_desktop(est, day, ukey="john smith", user=f"{DOMAIN}\\John Smith", ips=["10.1.25.2"], n=15,
                        mailbox="EX01")
        # The load balancer's health checks of Exchange's healthcheck.htm
        # pages, anonymous, no user agent: monitoring, not people [lb-health].
        for t in range(120, 86400, 900):
            for lb, page in (("10.0.5.2", "/owa/healthcheck.htm"), ("10.0.5.3", "/EWS/healthcheck.htm")):
                # Not logged by HttpProxy here (assumed: the page is answered
                # without proxying): an IIS line of no twin.
                est.write("EX01", "W3SVC1", day, t, "GET", page, None, 443, None, lb, None, 200)
                if est.hp_mode == "only":
                    continue
                tr.summary["probes"] += 1
                tr.tags["lb-healthcheck"][page.split("/")[1].lower()] += 1
                est.record("probe", day, t, user=None, proto=proto_of(page), ua="", device=None, dtype=None, ip=lb,
                           network=network_of(lb), stem=page, site="W3SVC1", peer=lb, query="", logged_query="")

        # oscar's Mac runs Outlook for Mac on EWS [mac-outlook]: approved.
        for t in times(rng, 12):
            est.person(day, t, method="POST", stem="/EWS/Exchange.asmx", query=cafe(est), user=f"oscar@{MAILDOMAIN}",
                       ukey="oscar", cip="10.1.30.6", ua=UA_MAC_OUTLOOK, proto="ews", client="outlook-mac",
                       mailbox="EX01")
        # grace's Office apps ask Autodiscover v2 for her EWS and
        # Autodiscover v1 addresses: anonymous, the address in the path [autodv2].
        for t in times(rng, 4):
            proto_q = rng.choice(["Protocol=EWS&RedirectCount=1", "Protocol=AutodiscoverV1&RedirectCount=1"])
            est.person(day, t, method="GET", stem=f"/autodiscover/autodiscover.json/v1.0/grace@{MAILDOMAIN}",
                       query=proto_q + cafe(est), user=None, ukey=None, cip="10.1.23.3", ua=UA_OUTLOOK_WIN,
                       proto="autodiscover", client="outlook-windows")
        # grace's calendar in Teams [teams].
        for t in times(rng, 8):
            est.person(day, t, method="POST", stem="/EWS/Exchange.asmx", query=cafe(est), user=f"grace@{MAILDOMAIN}",
                       ukey="grace", cip="52.114.20.9", ua=UA_TEAMS, proto="ews", client="teams", mailbox="EX01")
        # heidi signs out of OWA at lunch, and meets OWA's error page; both
        # scripts Exchange ships in /owa/auth, served by the front end
        # itself [owa-files]. Sign-out goes to
        # `/owa/auth/logoff.aspx?Cmd=logoff&src=exch` [owa-logoff].
        t = 12 * 3600 + rng.randint(0, 1800)
        est.person(day, t, method="GET", stem="/owa/auth/logoff.aspx", query="Cmd=logoff&src=exch" + cafe(est),
                   user=f"heidi@{MAILDOMAIN}", ukey="heidi", cip="192.0.2.77", ua=UA_CHROME, proto="owa",
                   client="browser", mailbox="EX02")
        tr.tags["owa-logoff"].setdefault("requests", []).append({"user": "heidi", "ip": "192.0.2.77",
                                                                 "protocol": "owa", "client": "browser"})
        est.person(day, t + 60, method="GET", stem="/owa/auth/errorFE.aspx", query="httpCode=500" + cafe(est),
                   user=None, ukey=None, cip="192.0.2.77", ua=UA_CHROME, proto="owa", client="browser")
        # heidi types http://mail.contoso.com/owa at home: IIS redirects [http-redirect].
        for t in times(rng, 2):
            est.write("EX01", "W3SVC1", day, t, "GET", "/owa", None, 80, None, "192.0.2.77", UA_CHROME, 301)
            est.person_tally(day, t, proto="owa", client="browser", cip="192.0.2.77", ua=UA_CHROME, stem="/owa",
                             status=301)

        # -- probes [probes]: front end and back end --------------------------
        hm = "HealthMailbox" + "%032x" % rng.getrandbits(128)
        for t in range(300, 86400, 1800):
            est.probe(day, t, stem="/owa/", query=cafe(est), user=f"{DOMAIN}\\{hm}", ua="AMProbe/Local/ClientAccess")
            est.probe(day, t + 7, stem="/EWS/Exchange.asmx", query=cafe(est), user=f"{hm}@{MAILDOMAIN}",
                      ua="AMProbe/Local/ClientAccess", method="POST")
            est.probe(day, t + 11, stem="/Microsoft-Server-ActiveSync/default.eas",
                      query=f"Cmd=FolderSync&User={hm}&DeviceId=EASProbeDeviceId161&DeviceType=EASProbeDeviceType",
                      user=f"{DOMAIN}\\{hm}", ua="TestActiveSyncConnectivity", method="POST",
                      device="EASProbeDeviceId161", dtype="EASProbeDeviceType")
            for server in ("EX01", "EX02"):
                est.probe(day, t + 20, stem="/mapi/emsmdb/", query=f"mailboxId={est.guid()}@{MAILDOMAIN}",
                          user=f"{DOMAIN}\\{hm}", ua="AMProbe/Local/ClientAccess", site="W3SVC2", server=server,
                          method="POST")

        # -- a machine account on the front end (cross-server EWS) -----------
        for t in times(rng, 3):
            est.machine(day, t, stem="/EWS/Exchange.asmx", query=cafe(est), user=f"{DOMAIN}\\EX02$",
                        cip=BE_IPS["EX02"], ua="ExchangeServicesClient/15.02.1544.004")

    # -- attacks ---------------------------------------------------------------
    # [proxyshell] four requests from one address, three answered 200: succeeded.
    evil = "evilcorp.xyz"
    email = f"Email=autodiscover/autodiscover.json%3F@{evil}"
    rps = base64.b64encode(b"V\x01\x00T\x07Windows C\x00A\x08Kerberos L\x19administrator@contoso.com").decode()
    for t, (method, q, st) in zip(times(rng, 4, 2 * 3600, 2 * 3600 + 120), [
        ("GET", f"@{evil}/owa/?&{email}&Protocol=XYZ&FooProtocol=Powershell", 302),
        ("POST", f"@{evil}/autodiscover/autodiscover.xml?&{email}", 200),
        ("POST", f"@{evil}/mapi/emsmdb/?&{email}", 200),
        ("POST", f"@{evil}/powershell/?X-Rps-CAT={quote(rps, safe='')}&{email}", 200),
    ]):
        est.attack(d2, t, method=method, stem="/autodiscover/autodiscover.json", query=q, cip="45.155.205.10",
                   ua="python-requests/2.26.0", status=st, kind="exploit-attempt")
    # [proxyshell] two attempts from another address, refused 403: blocked.
    for t in times(rng, 2, 3 * 3600, 3 * 3600 + 60):
        est.attack(d2, t, method="POST", stem="/autodiscover/autodiscover.json",
                   query=f"@{evil}/powershell/?&{email}", cip="185.220.101.45",
                   ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)", status=403, kind="exploit-attempt")
    # [notshell] the mitigation bypass, without `@`, capitalised stem; 401: blocked.
    for t in times(rng, 2, 3 * 3600 + 600, 3 * 3600 + 700):
        est.attack(d2, t, method="GET", stem="/Autodiscover/Autodiscover.json",
                   query="a..foo.var/owa/&Email=autodiscover/autodiscover.json?a..foo.var&Protocol=XYZ&FooProtocol=Powershell",
                   cip="198.51.100.200", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)", status=401, kind="exploit-attempt")
    # [webshell] a script Exchange never ships in /owa/auth/, with a command.
    for t, cmd in zip(times(rng, 3, 4 * 3600, 4 * 3600 + 300), ["whoami", "ipconfig", "net+group"]):
        est.attack(d2, t, method="POST", stem="/owa/auth/x3xj.aspx", query=f"cmd={cmd}", cip="203.0.113.200",
                   ua=UA_OUTLOOK_BASIC, status=200, kind="web-shell")

    # [proxylogon] the ECP side of ProxyLogon: the OAB virtual directory
    # reset through DDIService, and the `/ecp/<x>.js` SSRF, answered 200.
    for t, (method, stem, q) in zip(times(rng, 2, 6 * 3600, 6 * 3600 + 60), [
        ("POST", "/ecp/y.js", None),
        ("POST", "/ecp/DDI/DDIService.svc/SetObject",
         f"schema=ResetOABVirtualDirectory&msExchEcpCanary={'%032x' % rng.getrandbits(128)}"),
    ]):
        est.attack(d2, t, method=method, stem=stem, query=q, cip="91.92.93.94", ua="ExchangeServicesClient/0.0.0.0",
                   status=200, kind="exploit-attempt")
    # [dfir] a memory dump fetched from a web folder: data theft, succeeded.
    est.attack(d2, 4 * 3600 + 900, method="GET", stem="/owa/auth/Current/themes/resources/lsass.dmp", query=None,
               cip="203.0.113.200", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)", status=200, kind="data-theft")
    # [webshell] looking for a shell that is not there (404.0, error 2):
    # failed; and one refused by a request-filtering rule (404.19): blocked.
    for t in times(rng, 2, 4 * 3600 + 1200, 4 * 3600 + 1300):
        est.attack(d2, t, method="POST", stem="/owa/auth/shell.aspx", query="cmd=whoami", cip="198.51.100.177",
                   ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)", status=404, sub=0, win32=2, kind="web-shell")
    est.attack(d2, 4 * 3600 + 1500, method="POST", stem="/owa/auth/shell.aspx", query="cmd=whoami",
               cip="198.51.100.178", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)", status=404, sub=19,
               kind="web-shell")
    # [scanner] a mass scanner's user agent walking the front page: failed (302s).
    for t, stem in zip(times(rng, 3, 1 * 3600, 1 * 3600 + 30), ["/", "/owa/", "/ecp/"]):
        est.attack(d2, t, method="GET", stem=stem, query=None, cip="167.94.138.35", ua="Mozilla/5.0 zgrab/0.x",
                   status=302, kind="scanner")

    # [cve-2020-0688] the ECP ViewState deserialisation, by an attacker with
    # dave's stolen password: an attack, not one of dave's requests.
    est.attack(d2, 6 * 3600 + 300, method="GET", stem="/ecp/default.aspx",
               query="__VIEWSTATEGENERATOR=B97B4E27&__VIEWSTATE=%2FwEyhAYAAQAAAP%2F%2F%2F%2F8BAAAAAAAAAAwCAAAAXk1pY3Jvc29mdC5Qb3dlclNoZWxs",
               cip="91.92.93.95", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64)", status=500,
               kind="exploit-attempt", user=f"{DOMAIN}\\dave")

    # -- password spray: one address, seven accounts, ten minutes [iis-401] ----
    spray_src = "203.0.113.250"
    victims = ["alice", "bob", "carol", "dave", "erin", "admin", "test"]
    for t, v in zip(times(rng, len(victims), 5 * 3600, 5 * 3600 + 600), victims):
        est.person(d2, t, method="POST", stem="/Autodiscover/Autodiscover.xml", query=cafe(est),
                   user=f"{v}@{MAILDOMAIN}", ukey=v, cip=spray_src, ua=UA_OUTLOOK_WIN, proto="autodiscover",
                   client="outlook-windows", status=401, sub=1, win32=1326)
        tr.spray[spray_src].add(v)

    # A spray at the threshold: five accounts in 18 minutes [sentinel-spray].
    for i, v in enumerate(["kate", "lena", "oscar", "judy", "ivan"]):
        fail(est, d2, 14 * 3600 + i * 270, v=f"{DOMAIN}\\{v}", cip="198.51.100.240")
        tr.spray["198.51.100.240"].add(v)
    # Not a spray: six attempts, but four accounts (one written three ways)
    # [sentinel-spray][readme: one person, keyed by account name].
    forms = [f"alice@{MAILDOMAIN}", f"{DOMAIN}\\alice", f"ALICE@{MAILDOMAIN}", "bob", f"carol@{MAILDOMAIN}", "dave"]
    for t, v in zip(times(rng, len(forms), 9 * 3600, 9 * 3600 + 600), forms):
        fail(est, d2, t, v=v, cip="203.0.113.251")
    # Not a spray either: six accounts, one every 25 minutes (never five in 20).
    for i, v in enumerate(["erin", "frank", "grace", "heidi", "ivan", "judy"]):
        fail(est, d2, 10 * 3600 + i * 1500, v=f"{v}@{MAILDOMAIN}", cip="203.0.113.252")
    # Brute force: 105 bad passwords for one account in 8 minutes, on EWS.
    for t in times(rng, 105, 12 * 3600, 12 * 3600 + 480):
        fail(est, d2, t, v=f"administrator@{MAILDOMAIN}", cip="198.51.100.99", stem="/EWS/Exchange.asmx", proto="ews")
    tr.brute_force.add("administrator")
    if est.hp_mode == "only":
        # [hp-401] HttpProxy's 401 lines name no account tried: neither the
        # sprays nor the brute force can be seen in HttpProxy logs alone
        # (README "HttpProxy": "not in HttpProxy logs alone").
        tr.spray.clear()
        tr.brute_force.clear()
    more(est)
    # Last, so that every line written before keeps its bytes.
    hybrid(est)
    # [incidents] after the hybrid's, so that every earlier line keeps its bytes.
    incidents(est)
    # [real-files] after the incidents', so that every earlier line keeps its bytes.
    real_files(est)

    # The findings an audit must make [readme "reports"].
    tr.findings["cloud-credentials"].add("bob")
    tr.findings["cloud-credentials"].add("lena")
    tr.findings["cloud-token"].add("carol")
    tr.findings["ews-non-outlook"].add("frank")
    tr.findings["ews-non-outlook"].add("alice")
    tr.findings["mobile-on-ews"].add("erin")
    tr.findings["mobile-on-ews"].add("judy")
    return est


# -- [more] day 2 on a second front end, and what goes wrong on real servers ---

UA_AOSP_EAS = "Android/4.1.1-EAS-1.3"   # [aosp-eas]
FRANK_TABLET = "androidc2047186359"
IVAN_IPAD = "ApplDMPH7K1L2N3P"
DMITRY = "Дмитрий"


def backend_cookie(rng, user_rid):
    """[owa-cookie] what OWA's browser sends back: Exchange's routing cookie
    `X-BackEndCookie=<SID>=<opaque base64>`, OWA's canary and ClientId (no
    credentials: the forms sign-in's `cadata` cookies are never logged here)."""
    b = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(48))).decode()
    return (f"X-BackEndCookie=S-1-5-21-1004336348-1177238915-682003330-{user_rid}={b}; "
            f"X-OWA-CANARY={'%032x' % rng.getrandbits(128)}; ClientId={'%032X' % rng.getrandbits(128)}")


def more(est):
    """[more] What real Exchange estates also write, on day 2:

    - EX03, a second front end put behind the balancer's name at noon, whose
      IIS logging an admin set by hand [ex03-fields]: hourly files, more
      fields (s-sitename, cs-version, cs(Cookie), cs-host, sc-bytes,
      cs-bytes) and no cs(Referer), then (16:xx) a `#Fields` change in the
      middle of a file when the admin swaps cs(Cookie) for cs(Referer); a
      crash at 17:xx that cuts a line short inside a UTF-8 letter and leaves
      NUL bytes up to the restart's header [crash]; an empty file; the 13:00
      file kept also gzipped beside itself [gzip]. Its HttpProxy logs were
      not collected.
    - the balancer's HEAD health checks of EX03 [lb-health];
    - ivan's iPad with his old password: a 401 every few minutes for five
      hours [iis-401], never 100 in 10 minutes: no brute force [sentinel-spray];
    - EX02's ActiveSync application pool recycling: EX03 answers ActiveSync
      503 for a minute and a half, nothing reaching the back end [eas-503];
    - dmitry, a Cyrillic account name [utf8] in two cases, OWA through EX03
      with its cookies [owa-cookie];
    - a scanner's 404s for files of other products, outside Exchange's
      virtual directories [scanner-404];
    - frank's old Android tablet (ActiveSync 12.1, [aosp-eas]) answered 449
      after the admin changed its mailbox policy, then provisioning again
      [eas-449].
    """
    rng = est.rng
    tr = est.truth
    d1, d2 = DAYS
    # frank's tablet, both days through EX01 (its first request of the
    # estate before the 06:30 cut-over of apart.rs).
    for day in DAYS:
        eas_device(est, day, ukey="frank", user=f"{DOMAIN}\\frank", user_param="frank", device_id=FRANK_TABLET,
                   dtype="Android", ua=UA_AOSP_EAS, client="android-mail", ips=["198.51.100.61"], n=8,
                   mailbox="EX02", version="121")
    # [eas-449] 09:00: its next Sync is answered 449 by the back end (12.1:
    # HTTP 449, not Status 142 in the body), then the two Provision steps
    # (policy, acknowledgement), then Sync again.
    t0 = 9 * 3600 + rng.randint(0, 600)
    for i, (cmd, status) in enumerate((("Sync", 449), ("Provision", 200), ("Provision", 200), ("Sync", 200))):
        q = f"Cmd={cmd}&User=frank&DeviceId={FRANK_TABLET}&DeviceType=Android"
        toks = [("PrxFrom", FE_IP), ("V121", None), ("HH", HOST), ("SmtpAdrs", f"frank@{MAILDOMAIN}")]
        if cmd == "Provision":
            toks += [("Pk", rng.getrandbits(31))]
        toks += [("Mbx", f"EX02.{MAILDOMAIN}"), ("Throttle", 0)]
        est.person(d2, t0 + 3 * i, method="POST", stem="/Microsoft-Server-ActiveSync/default.eas", query=q,
                   user=f"{DOMAIN}\\frank", ukey="frank", cip="198.51.100.61", ua=UA_AOSP_EAS, proto="activesync",
                   client="android-mail", status=status, device=FRANK_TABLET, dtype="Android", command=cmd,
                   mailbox="EX02", be_query=f"{q}&Log={eas_log(toks)}",
                   be_stem="/Microsoft-Server-ActiveSync/Proxy/default.eas")
    if est.hp_mode == "only":
        # EX03's IIS logs are all there is of it: not in HttpProxy logs alone.
        return
    # [lb-health] the balancer checks EX03's ActiveSync and MAPI with HEAD.
    for t in range(12 * 3600 + 60, 19 * 3600, 300):
        for page in ("/Microsoft-Server-ActiveSync/healthcheck.htm", "/mapi/healthcheck.htm"):
            est.write("EX03", "W3SVC1", d2, t, "HEAD", page, None, 443, None, "10.0.5.2", None, 200)
            tr.summary["probes"] += 1
            tr.tags["lb-healthcheck"][proto_of(page)] += 1
            est.record("probe", d2, t, user=None, proto=proto_of(page), ua="", device=None, dtype=None,
                       ip="10.0.5.2", network="internal", stem=page, site="W3SVC1", peer="10.0.5.2", query="",
                       logged_query="")
    # [probes] EX03's own Managed Availability, as on EX01: OWA and EWS
    # from the loopback every half hour.
    hm3 = "HealthMailbox" + "%032x" % rng.getrandbits(128)
    for t in range(12 * 3600 + 900, 19 * 3600, 1800):
        est.probe(d2, t, stem="/owa/", query=cafe(est), user=f"{DOMAIN}\\{hm3}", ua="AMProbe/Local/ClientAccess",
                  server="EX03")
        est.probe(d2, t + 7, stem="/EWS/Exchange.asmx", query=cafe(est), user=f"{hm3}@{MAILDOMAIN}",
                  ua="AMProbe/Local/ClientAccess", method="POST", server="EX03")
    # ivan's iPad, still with the password he changed: iOS Mail retries.
    t = 13 * 3600 + rng.randint(0, 120)
    while t < 18 * 3600:
        cmd = rng.choice(["FolderSync", "Ping"])
        q = f"Cmd={cmd}&User=ivan&DeviceId={IVAN_IPAD}&DeviceType=iPad"
        est.person(d2, t, method="POST", stem="/Microsoft-Server-ActiveSync/default.eas", query=q + cafe(est),
                   user=f"{DOMAIN}\\ivan", ukey="ivan", cip="203.0.113.12", ua="Apple-iPad13C1/2101.101",
                   proto="activesync", client="apple-mail-ios", status=401, sub=1, win32=1326, device=IVAN_IPAD,
                   dtype="iPad", command=cmd, fe="EX03")
        t += rng.randint(170, 230)
    # [eas-503] 14:05-14:06:30: EX02's MSExchangeSyncAppPool recycles.
    for t in sorted(rng.sample(range(14 * 3600 + 300, 14 * 3600 + 390), 24)):
        ukey, dev, dtype, ua, client, ip = rng.choice([
            ("bob", "8C1E2F0A7B3D4C5E9F60718293A4B5C6", "Outlook", UA_OUTLOOK_BASIC, "outlook-mobile-basic",
             "52.98.33.17"),
            ("dave", "androidc1849305526", "Android", UA_GMAIL, "android-mail", "203.0.113.41"),
            ("lena", "4D2A9C0B7E1F4A5B8C6D7E8F9A0B1C2D", "Outlook", UA_OUTLOOK_BASIC, "outlook-mobile-basic",
             "52.97.150.3"),
        ])
        user = f"{ukey}@{MAILDOMAIN}"
        param = "dave" if ukey == "dave" else user
        cmd = rng.choice(["Sync", "Ping", "FolderSync"])
        stem = "/Microsoft-Server-ActiveSync" if ukey == "dave" else "/Microsoft-Server-ActiveSync/default.eas"
        est.person(d2, t, method="POST", stem=stem,
                   query=f"Cmd={cmd}&User={quote(param, safe='@')}&DeviceId={dev}&DeviceType={dtype}" + cafe(est),
                   user=user, ukey=ukey, cip=ip, ua=ua, proto="activesync", client=client, status=503, device=dev,
                   dtype=dtype, command=cmd, mailbox="EX02", fe="EX03", hop=False)
    # dmitry on OWA through EX03, his name in capitals or not [utf8].
    ts = times(rng, 24, 13 * 3600, 18 * 3600 + 3000)
    cookie = backend_cookie(rng, 1190)
    for i, t in enumerate(ts):
        if i == 0:
            est.person(d2, t, method="GET", stem="/owa/auth/logon.aspx",
                       query="url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=0" + cafe(est), user=None, ukey=None,
                       cip="10.1.26.4", ua=UA_CHROME, proto="owa", client="browser", fe="EX03", owner="дмитрий")
            # [owa-fba] his forms sign-in, accepted: 302 to /owa/, the front
            # end's own (no hop)
            est.person(d2, t + 9, method="POST", stem="/owa/auth.owa",
                       query=f"&ClientId={'%032X' % rng.getrandbits(128)}" + cafe(est) + "&encoding=;",
                       user=f"{DOMAIN}\\{DMITRY}", ukey="дмитрий", cip="10.1.26.4", ua=UA_CHROME, proto="owa",
                       client="browser", status=302, referer=f"https://{HOST}/owa/auth/logon.aspx", fe="EX03",
                       hop=False)
            continue
        user = f"{DOMAIN}\\{DMITRY}" if i % 3 else f"{DMITRY.lower()}@{MAILDOMAIN}"
        action = rng.choice(["FindItem", "GetItem", "GetConversationItems", "GetTime"])
        est.person(d2, t, method="POST", stem="/owa/service.svc",
                   query=f"action={action}&EP=1&ID=-{rng.randint(1, 99)}&AC=1" + cafe(est), user=user,
                   ukey="дмитрий", cip="10.1.26.4", ua=UA_CHROME, proto="owa", client="browser",
                   referer=f"https://{HOST}/owa/", mailbox="EX02", fe="EX03", cookie=cookie)
    # [owa-fba] a password spray on OWA's forms sign-in through EX03: eight
    # accounts in twelve minutes from one address, each turned down.
    spray = ["alice", "bob", "grace", "heidi", "oscar", "administrator", "scanner", "backup"]
    for t, v in zip(times(rng, len(spray), 16 * 3600 + 600, 16 * 3600 + 1320), spray):
        q = (f"&ClientId={'%032X' % rng.getrandbits(128)}" + cafe(est)
             + "&LogoffReason=NoCookiesGetOrE14AuthPost&encoding=;")
        est.person(d2, t, method="POST", stem="/owa/auth.owa", query=q, user=f"{v}@{MAILDOMAIN}", ukey=v,
                   cip="198.51.100.66", ua=UA_FIREFOX, proto="owa", client="browser", status=302,
                   referer=f"https://{HOST}/owa/auth/logon.aspx?url=https%3a%2f%2f{HOST}%2fowa%2f&reason=0",
                   fe="EX03", hop=False, fba_failed=True)
        tr.spray["198.51.100.66"].add(v)
    # [sentinel-spray] a spray the balancer's round robin splits between the
    # front ends (DNS gives both): three accounts in EX01's log, three in
    # EX03's, six within 15 minutes from one address; neither file alone
    # holds five.
    for i, (t, v) in enumerate(zip(times(rng, 6, 17 * 3600 + 1200, 17 * 3600 + 2100),
                                   ["kate", "frank", "dave", "erin", "judy", "svc-backup"])):
        fail(est, d2, t, v=f"{v}@{MAILDOMAIN}", cip="203.0.113.77", stem="/EWS/Exchange.asmx", proto="ews",
             fe="EX03" if i % 2 else "EX01")
        tr.spray["203.0.113.77"].add(v)
    # [scanner-404] files of other products, none of Exchange's virtual
    # directories, from an ordinary browser's user agent: 404.0, error 2.
    # README: `web-shell` is "scripts Exchange does not ship" (these PHP
    # scripts), `outside-vdirs` "folders outside Exchange" (the rest).
    paths = ["/.env", "/wp-login.php", "/phpmyadmin/index.php", "/.git/config", "/solr/admin/info/system",
             "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/boaform/admin/formLogin"]
    for t, stem in zip(times(rng, len(paths), 15 * 3600, 15 * 3600 + 40), paths):
        est.attack(d2, t, method="GET", stem=stem, query=None, cip="192.0.2.201", ua=UA_CHROME, status=404,
                   win32=2, kind="web-shell" if stem.endswith(".php") else "outside-vdirs", server="EX03")
        if stem.count("/") == 1 and not stem.endswith(".php"):
            # A file in the site's root, not in a folder: for the model of
            # check.py's `root-file-probe-as-person`, the request as a
            # person's (anonymous, protocol other) would be.
            stamp = f"{d2}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
            tr.tags["root-file-probe"].setdefault("requests", []).append({
                "kind": "person", "time": stamp, "user": None, "proto": "other", "client": "browser",
                "ua": UA_CHROME, "device": None, "dtype": None, "command": None, "ip": "192.0.2.201",
                "network": "external", "method": "GET", "stem": stem, "status": 404, "owner": None, "auth": None,
                "view": "iis", "query": "", "logged_query": "", "peer": "192.0.2.201"})


# -- [hybrid] Exchange Online and modern authentication beside the estate -----

UA_FREEBUSY_AD = "ASAutoDiscover/CrossForest/EmailDomain/EXCH/15.20.7472.021"   # [fb-hybrid]
UA_FREEBUSY_EWS = "ASProxy/CrossForest/EmailDomain/EXCH/15.20.7472.021"         # [fb-hybrid]
NINA = f"nina@{MAILDOMAIN}"        # a mailbox already moved to Exchange Online
MIGADMIN = f"{DOMAIN}\\migadmin"   # the migration endpoint's account [mrs-proxy]
PAUL_V6 = "2001:db8:4::1a"


def hybrid(est):
    """[hybrid] What a hybrid estate with modern authentication adds, both
    days unless said, through EX01:

    - Exchange Online's availability service looking up on-premises
      calendars for nina, whose mailbox is in Exchange Online: Autodiscover
      as `ASAutoDiscover/...`, EWS as `ASProxy/...`, OAuth, from Exchange
      Online's addresses, each day's first call answered 401 first (the
      token's challenge) [fb-hybrid]. Her requests (the token acts for her):
      client `exchange-availability` (data/clients.toml), network
      microsoft365, and no finding: it is Exchange's own free/busy, not a
      mail client (README silent; an Exchange admin's reading).
    - day 2, 10:00-10:45: a hybrid move of frank's mailbox: Exchange
      Online's MRS proxy calls with the migration endpoint's account,
      NTLM, no user agent [mrs-proxy]: migadmin's EWS requests from
      Microsoft 365, three connections with their legs. No user agent, so
      "Other EWS application" (`ews-app`, as casguard names the real line:
      tests/data/SOURCES-real.md); no finding expected (README silent: an
      admin's move, not a backdoor).
    - paul's OWA through AD FS claims from home on IPv6 [adfs-owa][ipv6]:
      the redirect of no user, the token posted back (the front end's own,
      no hop), then OWA as `paul@contoso.com`.
    - carol's Outlook mobile (hybrid modern auth): the empty Bearer
      challenge from AutoDetect, answered 401 0 0, of no user and no device
      type [hma-challenge]: not a failed sign-in.
    - day 2: quinn's OWA through the balancer, her IPv6 address bare in
      X-Forwarded-For [xff][ipv6].
    """
    rng = est.rng
    d1, d2 = DAYS
    for day in DAYS:
        # [fb-hybrid] six lookups a day, of alice's (EX01) or dave's (EX02) calendar.
        for i, t in enumerate(times(rng, 6, 8 * 3600, 17 * 3600)):
            cip = rng.choice(["52.98.92.13", "40.99.140.22"])
            target = rng.choice([("alice", "EX01"), ("dave", "EX02")])
            calls = [("/autodiscover/autodiscover.svc", UA_FREEBUSY_AD, "autodiscover")] if i == 0 else []
            calls.append(("/EWS/Exchange.asmx", UA_FREEBUSY_EWS, "ews"))
            for n, (stem, ua, proto) in enumerate(calls):
                if i == 0:
                    est.person(day, t + n, method="POST", stem=stem, query=cafe(est), user=None, ukey=None,
                               cip=cip, ua=ua, proto=proto, client="exchange-availability", status=401,
                               owner="nina")
                est.person(day, t + n, method="POST", stem=stem, query=cafe(est), user=NINA, ukey="nina",
                           cip=cip, ua=ua, proto=proto, client="exchange-availability", mailbox=target[1])
        # [hma-challenge] carol's app discovers the token authority twice a day.
        for t in times(rng, 2, 7 * 3600, 20 * 3600):
            est.person(day, t, method="OPTIONS", stem="/Microsoft-Server-ActiveSync/default.eas", query=None,
                       user=None, ukey=None, cip="52.125.128.44", ua=UA_OUTLOOK_HMA, proto="activesync",
                       client="outlook-mobile-unknown-auth", status=401, owner="carol")
        # [adfs-owa][ipv6] paul's OWA from home, signed in by AD FS.
        ts = times(rng, 9, 9 * 3600, 18 * 3600)
        est.person(day, ts[0], method="GET", stem="/owa/", query=cafe(est), user=None, ukey=None, cip=PAUL_V6,
                   ua=UA_EDGE, proto="owa", client="browser", status=302, owner="paul")
        est.person(day, ts[0] + 4, method="POST", stem="/owa/", query=cafe(est), user=f"paul@{MAILDOMAIN}",
                   ukey="paul", cip=PAUL_V6, ua=UA_EDGE, proto="owa", client="browser", status=302, hop=False,
                   referer="https://sts.contoso.com/adfs/ls/")
        for t in ts[1:]:
            action = rng.choice(["FindItem", "GetItem", "GetConversationItems"])
            est.person(day, t, method="POST", stem="/owa/service.svc",
                       query=f"action={action}&EP=1&ID=-{rng.randint(1, 99)}&AC=1" + cafe(est),
                       user=f"paul@{MAILDOMAIN}", ukey="paul", cip=PAUL_V6, ua=UA_EDGE, proto="owa",
                       client="browser", referer=f"https://{HOST}/owa/", mailbox="EX01")
    # [xff][ipv6] quinn's OWA from home through the balancer on day 2, the
    # balancer writing her IPv6 address bare (no brackets, no port) in
    # X-Forwarded-For, then its own: the client is the right-most public one.
    for t in times(rng, 8, 19 * 3600, 21 * 3600):
        est.person(d2, t, method="POST", stem="/owa/service.svc",
                   query=f"action=GetItem&EP=1&ID=-{rng.randint(1, 99)}&AC=1" + cafe(est), user=f"{DOMAIN}\\quinn",
                   ukey="quinn", cip="10.0.5.5", ua=UA_FIREFOX, proto="owa", client="browser",
                   referer=f"https://{HOST}/owa/", xff="2001:db8:7::42, 10.0.5.9", mailbox="EX02")
    # For check.py's models of a judgement: the users whose EWS requests are
    # Exchange Online's own services.
    est.truth.tags["exchange-online-services"].update({"nina": "exchange-availability", "migadmin": "mrs-proxy"})
    # [mrs-proxy] the move: three connections, each signing in with NTLM's
    # two legs, then the service's calls.
    t = 10 * 3600 + rng.randint(0, 300)
    for _ in range(3):
        for sub, win32 in ((2, 5), (1, 2148074254)):
            est.person(d2, t, method="POST", stem="/EWS/mrsproxy.svc", query=cafe(est), user=None, ukey=None,
                       cip="52.96.40.201", ua="", proto="ews", client="mrs-proxy", status=401, sub=sub,
                       win32=win32, owner="migadmin")
        for _ in range(12):
            t += rng.randint(20, 70)
            # [mrs-route] proxied to MRS's own endpoint, not logged by the
            # back end's IIS: no hop.
            est.person(d2, t, method="POST", stem="/EWS/mrsproxy.svc", query=cafe(est), user=MIGADMIN,
                       ukey="migadmin", cip="52.96.40.201", ua="", proto="ews", client="mrs-proxy", mailbox="EX02",
                       hop=False)
            # the two random byte counts the hop's line drew, so that every
            # later line keeps its bytes
            rng.randint(200, 90000), rng.randint(200, 9000)
        t += rng.randint(60, 240)


# -- [incidents] attacks as public incident reports show them -----------------

UA_PY = "python-requests/2.28.1"
# [volexity-css] user agents of ProxyLogon's SSRF requests in Volexity's list.
UA_DDG = "DuckDuckBot/1.0; (+http://duckduckgo.com/duckduckbot.html)"
UA_FBHIT = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
UA_NMAP = "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"   # [nmap-nse]
UA_CENSYS = "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)"          # [censys]
UA_NUCLEI = "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)"               # [nuclei]
UA_PS = "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3570"   # [mailsniper]
RUTH = f"ruth@{MAILDOMAIN}"
# [spray-slow] the sprayer's rotating addresses: a residential proxy pool.
SPRAY_POOL = [f"192.0.2.{i}" for i in range(10, 22)]
SPRAYED = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "kate", "lena", "oscar", "judy",
           "helpdesk", "svc-sql", "reception", "ruth"]


def incidents(est):
    """[incidents] Attacks as public incident reports show them in IIS and
    HttpProxy logs, and what an audit must make of each (README: attacks are
    kept apart from people, each finding one rule and one source, with its
    outcome by status; a failed sign-in is still the named user's request):

    - ProxyLogon's SSRF POSTed to OWA's own static files (Volexity's list),
      then the China Chopper it dropped in /aspnet_client [volexity-css]
      [webshell-paths];
    - the whole ProxyShell chain from one address: the `mapi/nspi` and
      `EWS` SSRFs, the forged-token PowerShell session, the exported
      mailbox written as a web shell in /aspnet_client and run, then a
      mailbox exported as a PST and fetched [proxyshell-chain][mbx-export];
    - ProxyNotShell with a user's stolen password, and OWASSRF
      (`/owa/mastermailbox%40outlook.com/powershell`) with the same
      [notshell-gtsc][owassrf]: attacks, not that user's requests;
    - web shells with commands in the query under /owa/auth and /ecp/auth,
      one only asked for [webshell-paths];
    - scanners: Microsoft's own nmap script for CVE-2021-26855 (its
      X-BEResource cookie in EX03's cs(Cookie)), the build read from
      ECP's export tool manifest, Censys, Nuclei [nmap-nse][exch-version]
      [censys][nuclei];
    - a slow password spray from a pool of rotating addresses over both
      days on EWS, ActiveSync and OWA's forms, never five accounts from one
      address in 20 minutes: failed sign-ins, no `password-spray` finding
      (README: a spray is judged per source address) [spray-slow];
    - its one success, ruth, then her mailbox read in bulk over EWS from an
      unusual address with MailSniper's EWS client: ruth's requests, an EWS
      client other than Outlook (`ews-non-outlook`) [mailsniper].
    """
    rng = est.rng
    tr = est.truth
    d1, d2 = DAYS
    # ruth works in Outlook for Windows on the LAN, both days.
    for day in DAYS:
        outlook_desktop(est, day, ukey="ruth", user=f"{DOMAIN}\\ruth", ips=["10.1.27.8"], n=25, mailbox="EX02")

    # [spray-slow] one try every 25 to 50 minutes, 01:00-23:00, each from the
    # next address of the pool (each address back after twelve tries, hours
    # later), the next account, the next door.
    k = 0
    success = None
    for day in DAYS:
        t = 3600 + rng.randint(0, 600)
        while t < 23 * 3600:
            v, src = SPRAYED[k % len(SPRAYED)], SPRAY_POOL[k % len(SPRAY_POOL)]
            door = ("ews", "activesync", "owa")[k % 3]
            if day == d2 and v == "ruth" and success is None:
                # her password was on the sprayer's list: EWS answers 200
                success = t
                est.person(day, t, method="POST", stem="/EWS/Exchange.asmx", query=cafe(est), user=RUTH,
                           ukey="ruth", cip=src, ua=UA_EWS_APP, proto="ews", client="ews-third-party",
                           mailbox="EX02")
            elif door == "ews":
                # [mailsniper] Invoke-PasswordSprayEWS: the EWS Managed API
                est.person(day, t, method="POST", stem="/EWS/Exchange.asmx", query=cafe(est),
                           user=f"{v}@{MAILDOMAIN}", ukey=v, cip=src, ua=UA_EWS_APP, proto="ews",
                           client="ews-third-party", status=401, sub=1, win32=1326)
            elif door == "activesync":
                # OPTIONS with Basic, the cheapest question ActiveSync
                # answers, from a script (no client any catalog names)
                est.person(day, t, method="OPTIONS", stem="/Microsoft-Server-ActiveSync/default.eas", query=None,
                           user=f"{DOMAIN}\\{v}", ukey=v, cip=src, ua=UA_PY, proto="activesync",
                           client="unknown-client", status=401, sub=1, win32=1326)
            else:
                q = (f"&ClientId={'%032X' % rng.getrandbits(128)}" + cafe(est)
                     + "&LogoffReason=NoCookiesGetOrE14AuthPost&encoding=;")
                # [mailsniper] Invoke-PasswordSprayOWA: PowerShell's web
                # client, whose user agent passes for a browser's (casguard
                # names it "Web browser", as a site would: a judgement, the
                # writer agrees; a sprayer can as well send Chrome's)
                est.person(day, t, method="POST", stem="/owa/auth.owa", query=q, user=f"{v}@{MAILDOMAIN}", ukey=v,
                           cip=src, ua=UA_PS, proto="owa", client="browser", status=302,
                           referer=f"https://{HOST}/owa/auth/logon.aspx?url=https%3a%2f%2f{HOST}%2fowa%2f&reason=0",
                           hop=False, fba_failed=True)
            k += 1
            t += rng.randint(25 * 60, 50 * 60)
    assert success is not None

    # [mailsniper] day 2, an hour after: ruth's mailbox searched and read
    # over EWS from a hosting provider's address, 140 calls in 25 minutes.
    for t in times(rng, 140, success + 3600, success + 3600 + 1500):
        est.person(d2, t, method="POST", stem="/EWS/Exchange.asmx", query=cafe(est), user=RUTH, ukey="ruth",
                   cip="203.0.113.180", ua=UA_EWS_APP, proto="ews", client="ews-third-party", mailbox="EX02")
    tr.findings["ews-non-outlook"].add("ruth")

    # [notshell-gtsc] ProxyNotShell with ruth's password: autodiscover.json,
    # `@` and `Powershell` in the query, signed in as her; answered 200.
    for t in times(rng, 3, success + 7200, success + 7300):
        est.attack(d2, t, method="POST", stem="/autodiscover/autodiscover.json",
                   query="@evil.corp/PowerShell/?&Email=autodiscover/autodiscover.json%3F@evil.corp",
                   cip="198.51.100.140", ua=UA_PY, status=200, kind="exploit-attempt", user=RUTH)
    # [owassrf] OWASSRF, the same password, through OWA's path; 200.
    for t in times(rng, 3, success + 9000, success + 9100):
        est.attack(d2, t, method="POST", stem="/owa/mastermailbox%40outlook.com/powershell", query=None,
                   cip="203.0.113.140", ua=UA_PY, status=200, kind="exploit-attempt", user=RUTH)

    # [volexity-css] day 1, 02:00: ProxyLogon's SSRF POSTed to OWA's static
    # files, anonymous, 200; then the China Chopper it wrote under
    # /aspnet_client, POSTed to (its command in the body) [webshell-paths].
    lgn = "198.51.100.31"
    for t, (f, ua) in zip(times(rng, 3, 2 * 3600, 2 * 3600 + 60), [
            ("logon.css", UA_DDG), ("owafont_ja.css", UA_FBHIT), ("lgnbotl.gif", UA_DDG)]):
        est.attack(d1, t, method="POST", stem=f"/owa/auth/Current/themes/resources/{f}", query=None, cip=lgn,
                   ua=ua, status=200, kind="exploit-attempt", ssrf=True)
    for t in times(rng, 2, 2 * 3600 + 300, 2 * 3600 + 400):
        est.attack(d1, t, method="POST", stem="/aspnet_client/supp0rt.aspx", query=None, cip=lgn, ua=UA_FBHIT,
                   status=200, kind="web-shell")

    # [proxyshell-chain] day 1, 21:00, one address: the LegacyDN through
    # mapi/nspi, Autodiscover, the SID through mapi/emsmdb, mail read through
    # EWS, the PowerShell session with a forged token; then the shell it
    # exported into /aspnet_client run; then a mailbox exported as a PST,
    # fetched [mbx-export].
    ps = "203.0.113.66"
    foo = "foo.com"
    em = f"Email=autodiscover/autodiscover.json%3F@{foo}"
    cat = base64.b64encode(b"V\x01\x00T\x07Windows C\x00A\x08Kerberos L\x15administrator@contoso.com U,"
                           b"S-1-5-21-1004336348-1177238915-682003330-500").decode()
    steps = [("GET", f"@{foo}/mapi/nspi/?&{em}"), ("POST", f"@{foo}/autodiscover/autodiscover.xml?&{em}"),
             ("POST", f"@{foo}/mapi/emsmdb?&{em}"), ("POST", f"@{foo}/EWS/exchange.asmx?&{em}")]
    steps += [("POST", f"@{foo}/powershell/?X-Rps-CAT={quote(cat, safe='')}&{em}")] * 6
    for t, (method, q) in zip(times(rng, len(steps), 21 * 3600, 21 * 3600 + 240), steps):
        est.attack(d1, t, method=method, stem="/autodiscover/autodiscover.json", query=q, cip=ps, ua=UA_PY,
                   status=200, kind="exploit-attempt")
    for t in times(rng, 3, 21 * 3600 + 600, 21 * 3600 + 900):
        est.attack(d1, t, method="POST", stem="/aspnet_client/rzbfs.aspx", query=None, cip=ps, ua=UA_PY, status=200,
                   kind="web-shell")
    est.attack(d1, 21 * 3600 + 1500, method="GET", stem="/aspnet_client/ceo.pst", query=None, cip=ps, ua=UA_PY,
               status=200, kind="data-theft")

    # [webshell-paths] day 2: shells dropped under /owa/auth and /ecp/auth,
    # run with a command in the query (200), and one asked for, not there.
    sh = "198.51.100.150"
    for t, (stem, q) in zip(times(rng, 3, 8 * 3600, 8 * 3600 + 600), [
            ("/owa/auth/errorEE.aspx", "cmd=whoami"), ("/owa/auth/errorEE.aspx", "cmd=nltest+/dclist:"),
            ("/ecp/auth/fonts.aspx", "exec=Y21kIC9jIGRpciBjOlw%3D")]):
        est.attack(d2, t, method="GET", stem=stem, query=q, cip=sh, ua=UA_CHROME, status=200, kind="web-shell")
    est.attack(d2, 8 * 3600 + 900, method="GET", stem="/owa/auth/one.aspx", query="cmd=whoami", cip=sh,
               ua=UA_CHROME, status=404, win32=2, kind="web-shell")

    # Scanners (day 2).
    # [nmap-nse][exch-version] through EX03 at 13:xx, whose log has
    # cs(Cookie): Microsoft's CVE-2021-26855 check (its SSRF cookies on
    # `/owa/auth/x.js`: an exploit attempt, refused), then the build read
    # from ECP's export tool manifest, a file Exchange ships (200).
    nm = "198.51.100.44"
    ck = ("X-AnonResource=true; X-AnonResource-Backend=localhost/ecp/default.flt?~3; "
          "X-BEResource=localhost/owa/auth/logon.aspx?~3;")
    t = 13 * 3600 + 1200 + rng.randint(0, 300)
    est.attack(d2, t, method="GET", stem="/owa/auth/x.js", query=None, cip=nm, ua=UA_NMAP, status=404, win32=2,
               kind="exploit-attempt", server="EX03", cookie=ck)
    est.attack(d2, t + 2, method="GET", stem="/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application",
               query=None, cip=nm, ua=UA_NMAP, status=200, kind="scanner", server="EX03")
    # [nuclei] Nuclei's CVE-2021-26855 template (the same cookies, its
    # backend `somethingnonexistent`) sent with a browser's user agent, as
    # Nuclei's random agents do: only the cookies tell the attempt.
    ck = ("X-AnonResource=true; X-AnonResource-Backend=somethingnonexistent/ecp/default.flt?~3; "
          "X-BEResource=somethingnonexistent/owa/auth/logon.aspx?~3;")
    est.attack(d2, t + 600, method="GET", stem="/owa/auth/x.js", query=None, cip="198.51.100.46", ua=UA_CHROME,
               status=404, win32=2, kind="exploit-attempt", server="EX03", cookie=ck)
    # [censys] the sign-in page and the site's root, 302s and a 200.
    for t, stem in zip(times(rng, 2, 9 * 3600, 9 * 3600 + 20), ["/", "/owa/auth/logon.aspx"]):
        est.attack(d2, t, method="GET", stem=stem, query="url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=0"
                   if stem != "/" else None, cip="192.0.2.230", ua=UA_CENSYS, status=302 if stem == "/" else 200,
                   kind="scanner")
    # [nuclei] Nuclei's ProxyShell template (Kevin Beaumont's check: 302
    # means vulnerable; here refused, 403) and its Exchange detection.
    nu = "198.51.100.45"
    t = 10 * 3600 + rng.randint(0, 600)
    est.attack(d2, t, method="GET", stem="/autodiscover/autodiscover.json",
               query=f"@test.com/owa/?&Email=autodiscover/autodiscover.json%3F@test.com", cip=nu, ua=UA_NUCLEI,
               status=403, kind="exploit-attempt")
    est.attack(d2, t + 1, method="GET", stem="/owa/auth/logon.aspx", query=None, cip=nu, ua=UA_NUCLEI, status=200,
               kind="scanner")


# [ex03-fields] the fields EX03's admin ticked, in IIS's own order (that of
# `logExtFileFlags`): all but cs(Referer); at 16:xx cs(Cookie) out and
# cs(Referer) in.
FIELDS_EX03 = ["date", "time", "s-sitename", "s-computername", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query",
               "s-port", "cs-username", "c-ip", "cs-version", "cs(User-Agent)", "cs(Cookie)", "cs-host",
               "sc-status", "sc-substatus", "sc-win32-status", "sc-bytes", "cs-bytes", "time-taken"]
FIELDS_EX03_LATER = [f if f != "cs(Cookie)" else "cs(Referer)" for f in FIELDS_EX03]


# -- [real-files] what copies of real servers' log folders hold ----------------

EX02_UTC_OFFSET = 3600   # [local-rollover] EX02's clock: UTC+1 (W. Europe, November)
UA_OUTLOOK_2016 = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.5422; Pro)"


def real_files(est):
    """[real-files] What copies of real servers' log folders also hold:

    - EX02's own front end (Default Web Site, W3SVC1) [ms02-fe]: the
      balancer sends it no clients, but Managed Availability probes it
      from the loopback every half hour, both days (probes; no HttpProxy
      logs collected from EX02: `cafeReqId` without a twin, as EX03's);
    - its IIS logging rolls over by local time, UTC+1 [local-rollover]:
      `u_ex261109.log` ends at 22:59 UTC, `u_ex261110.log` holds 23:00 UTC
      of the 9th to 22:59 UTC of the 10th, `u_ex261111.log` the rest;
    - `u_ex261110.log` was filtered by the admin in Windows PowerShell 5.1
      before sending it (a test account's lines left out, none written
      here) and so starts with a UTF-8 BOM [ps51-bom];
    - `u_ex261111.log`, the file IIS was writing, was copied live: its last
      line stops inside the query, no CRLF [live-copy]: malformed;
    - EX04, an Exchange 2016 server whose IIS logs in ANSI [ansi-logs]:
      jürgen's OWA through it on day 2, his name in Windows-1252;
    - EX01's third web site, W3SVC3, the Autodiscover HTTP redirect on port
      80 [ad-redirect]: Outlook from home GETs
      `/Autodiscover/Autodiscover.xml`, anonymous, answered 302 by IIS:
      anonymous people's Autodiscover requests of Outlook for Windows, no
      HttpProxy line, no hop.
    """
    rng = est.rng
    hm2 = "HealthMailbox" + "%032x" % rng.getrandbits(128)
    for day in DAYS:
        for t in range(600, 86400, 1800):
            est.probe(day, t, stem="/owa/", query=cafe(est), user=f"{DOMAIN}\\{hm2}", ua="AMProbe/Local/ClientAccess",
                      server="EX02")
            est.probe(day, t + 7, stem="/EWS/Exchange.asmx", query=cafe(est), user=f"{hm2}@{MAILDOMAIN}",
                      ua="AMProbe/Local/ClientAccess", method="POST", server="EX02")
    # [live-copy] what IIS had written of the next probe when the file was
    # copied: up to the middle of its query.
    t = 86400 - 60 * 3 + rng.randint(0, 59)
    est.live_cut = f"{DAYS[1]} {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d} {FE_IPS['EX02']} GET /owa/ " \
                   f"&CorrelationID=<empty>;&cafeReqId={est.guid()[:13]}"
    # [ad-redirect] Outlook for Windows outside the domain (no SCP), its
    # HTTPS Autodiscover names failing, takes the HTTP redirect.
    for day in DAYS:
        for t in times(rng, 5, 7 * 3600, 22 * 3600):
            cip = rng.choice(["192.0.2.77", "198.51.100.45", "203.0.113.63"])
            est.write("EX01", "W3SVC3", day, t, "GET", "/Autodiscover/Autodiscover.xml", None, 80, None, cip,
                      UA_OUTLOOK_2016, 302)
            est.person_tally(day, t, proto="autodiscover", client="outlook-windows", cip=cip, ua=UA_OUTLOOK_2016,
                             stem="/Autodiscover/Autodiscover.xml", status=302)
    # [ansi-logs] jürgen's OWA through EX04 on day 2, his account as the
    # forms sign-in took it, `CONTOSO\Jürgen`.
    d2 = DAYS[1]
    for t in times(rng, 9, 8 * 3600, 17 * 3600):
        action = rng.choice(["FindItem", "GetItem", "GetConversationItems"])
        est.person(d2, t, method="POST", stem="/owa/service.svc",
                   query=f"action={action}&EP=1&ID=-{rng.randint(1, 99)}&AC=1" + cafe(est), user=f"{DOMAIN}\\Jürgen",
                   ukey="jürgen", cip="10.1.24.9", ua=UA_CHROME, proto="owa", client="browser",
                   referer=f"https://ex04.{MAILDOMAIN}/owa/", mailbox="EX02", fe="EX04")


def emit_ex02_fe(est, logs, rows):
    """[local-rollover] EX02's front-end files by local day, [ps51-bom] the
    middle one with a BOM, [live-copy] the last one cut inside a line.
    `rows`: (UTC day, seconds, values); returns the files' names."""
    tr = est.truth
    files = []
    by_local = defaultdict(list)
    for day, t, vals in rows:
        local_day = day if t + EX02_UTC_OFFSET < 86400 else DAYS[1] if day == DAYS[0] else "2026-11-11"
        by_local[local_day].append((day, t, vals))
    os.makedirs(os.path.join(logs, "EX02", "W3SVC1"), exist_ok=True)
    for local_day, part in sorted(by_local.items()):
        part.sort(key=lambda r: (r[0], r[1]))
        rel = os.path.join("EX02", "W3SVC1", f"u_ex{local_day[2:4]}{local_day[5:7]}{local_day[8:10]}.log")
        # the file starts at local midnight: 23:00 UTC of the day before
        first_day = part[0][0]
        text = header(FIELDS, f"{first_day} {'23' if first_day != local_day else '00'}:00:00")
        for _, _, vals in part:
            text.append(" ".join(vals[f] for f in FIELDS))
            tr.summary["lines"] += 1
        data = ("\r\n".join(text) + "\r\n").encode("utf-8")
        if local_day == DAYS[1]:
            data = b"\xef\xbb\xbf" + data          # [ps51-bom]
        if local_day == "2026-11-11":
            data += est.live_cut.encode("utf-8")   # [live-copy] no CRLF
            tr.summary["lines"] += 1
            tr.summary["malformed"] += 1
            tr.malformed.append({"file": rel, "line": len(text) + 1})
        with open(os.path.join(logs, rel), "wb") as f:
            f.write(data)
        files.append(rel)
    return files


def emit_ex03(est, logs, rows):
    """[ex03-fields] EX03's hourly files (`u_exyymmddhh.log`); returns their
    names. The 13:00 file is kept gzipped beside itself (read once, but a
    file given), 19:00's is empty."""
    tr = est.truth
    day = DAYS[1]
    yymmdd = day[2:4] + day[5:7] + day[8:10]
    hours = defaultdict(list)
    for t, vals in sorted(rows, key=lambda r: r[0]):
        hours[t // 3600].append((t, vals))
    files = []
    fields = FIELDS_EX03
    folder = os.path.join(logs, "EX03", "W3SVC1")
    os.makedirs(folder, exist_ok=True)
    for hour in range(12, 20):
        rel = os.path.join("EX03", "W3SVC1", f"u_ex{yymmdd}{hour:02d}.log")
        files.append(rel)
        part = hours.get(hour, [])
        if not part:
            open(os.path.join(logs, rel), "wb").close()
            continue
        out = b""
        text = header(fields, f"{day} {hour:02d}:00:00")
        for i, (t, vals) in enumerate(part):
            if hour == 16 and i == len(part) // 2:
                # the admin's edit: a new header block, new fields, same file
                fields = FIELDS_EX03_LATER
                text += header(fields, f"{day} {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}")
            if hour == 17 and i == len(part) // 3:
                # [crash] power lost: the last line written stops inside the
                # `д` of dmitry's name (two bytes in UTF-8, one written), the
                # rest of the file's block is NUL bytes; on restart IIS writes
                # its header after them.
                cut = (f"{day} {t // 3600:02d}:{t // 60 % 60:02d}:{max(0, t % 60 - 1):02d} W3SVC1 EX03 "
                       f"{FE_IPS['EX03']} POST /owa/service.svc action=GetItem&EP=1 443 CONTOSO\\").encode()
                cut += "д".encode("utf-8")[:1]
                out += ("\r\n".join(text) + "\r\n").encode("utf-8") + cut + b"\x00" * 1337
                tr.summary["lines"] += 1
                tr.summary["malformed"] += 1
                tr.malformed.append({"file": rel, "line": len(text) + 1})
                # the restart's `#Software` is on the cut line's line
                text = header(fields, f"{day} {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}")
            text.append(" ".join(vals[f] for f in fields))
            tr.summary["lines"] += 1
        out += ("\r\n".join(text) + "\r\n").encode("utf-8")
        with open(os.path.join(logs, rel), "wb") as f:
            f.write(out)
        if hour == 13:
            with open(os.path.join(logs, rel + ".gz"), "wb") as f:
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                    g.write(out)
            # a file given, though read once [readme "the copy is named"]
            files.append(rel + ".gz")
    return files


def header(fields, date_time):
    return [
        "#Software: Microsoft Internet Information Services 10.0",
        "#Version: 1.0",
        f"#Date: {date_time}",
        "#Fields: " + " ".join(fields),
    ]


def emit(est, out):
    """Writes the files; returns their names (relative to `out`) and the
    malformed line's place."""
    logs = os.path.join(out, "logs")
    tr = est.truth
    files = []
    ex02_fe = []
    for (server, site, day), rows in sorted(est.lines.items()):
        if est.hp_mode == "only":
            break
        if server == "EX03":
            files += emit_ex03(est, logs, rows)
            continue
        if server == "EX04":
            # [ansi-logs] `exyymmdd.log`, Windows-1252, the default fields
            rel = os.path.join(server, site, f"ex{day[2:4]}{day[5:7]}{day[8:10]}.log")
            text = header(FIELDS, f"{day} 00:00:00")
            for t, vals in sorted(rows, key=lambda r: r[0]):
                text.append(" ".join(vals[f] for f in FIELDS))
                tr.summary["lines"] += 1
            os.makedirs(os.path.join(logs, server, site), exist_ok=True)
            with open(os.path.join(logs, rel), "wb") as f:
                f.write(("\r\n".join(text) + "\r\n").encode("cp1252"))
            files.append(rel)
            continue
        if (server, site) == ("EX02", "W3SVC1"):
            # [real-files] both days in one pass, by local day
            ex02_fe += [(day, t, vals) for t, vals in rows]
            if day == DAYS[1]:
                files += emit_ex02_fe(est, logs, ex02_fe)
            continue
        rows.sort(key=lambda r: r[0])
        fields = FIELDS_XFF if (site == "W3SVC1" and day == DAYS[1]) else FIELDS
        yymmdd = day[2:4] + day[5:7] + day[8:10]
        # [iis-custom] `_x` in the name when custom fields are logged; the
        # first day's front end was compressed by the admin [gzip].
        name = f"u_ex{yymmdd}" + ("_x" if fields is FIELDS_XFF else "") + ".log"
        gz = site == "W3SVC1" and day == DAYS[0]
        rel = os.path.join(server, site, name + (".gz" if gz else ""))
        text = header(fields, f"{day} 00:00:00")
        restart_at = len(rows) // 2 if (site == "W3SVC1" and day == DAYS[1]) else None
        for i, (t, vals) in enumerate(rows):
            if i == restart_at:
                # [w3c] a restart mid-day: IIS writes the header block again,
                # here after the admin ticked more fields (s-computername,
                # cs-host, sc-bytes, cs-bytes): the new `#Fields` puts them in
                # IIS's own order, custom fields last [iis-custom].
                hh, mm, ss = t // 3600, t // 60 % 60, t % 60
                fields = FIELDS_MORE
                text += header(fields, f"{day} {hh:02d}:{mm:02d}:{ss:02d}")
            text.append(" ".join(vals[f] for f in fields))
            tr.summary["lines"] += 1
            if site == "W3SVC2":
                tr.backend["lines"] += 1
        if site == "W3SVC1" and day == DAYS[1]:
            # One malformed line: a line cut short (as after a crash),
            # with fewer fields than #Fields names.
            pos = len(text) - 5
            text.insert(pos, f"{day} 23:10:00 {FE_IP} POST /EWS/Exchange.asmx")
            tr.summary["lines"] += 1
            tr.summary["malformed"] += 1
            tr.malformed.append({"file": rel, "line": pos + 1})
        if (server, site, day) == ("EX02", "W3SVC2", DAYS[1]):
            # [iis-size] on day 2 EX02's back end rolls its log by size, not
            # daily: `u_extend1.log`, `u_extend2.log`, each with its header.
            body, half = text[4:], (len(text) - 4) // 2
            t = rows[half][0]
            parts = [text[:4] + body[:half],
                     header(fields, f"{day} {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}") + body[half:]]
            for n, part in enumerate(parts, 1):
                rel = os.path.join(server, site, f"u_extend{n}.log")
                os.makedirs(os.path.join(logs, server, site), exist_ok=True)
                with open(os.path.join(logs, rel), "wb") as f:
                    f.write(("\r\n".join(part) + "\r\n").encode("utf-8"))
                files.append(rel)
            continue
        data = ("\r\n".join(text) + "\r\n").encode("utf-8")
        path = os.path.join(logs, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if gz:
            # [gzip] two members: the first half of the lines, then the rest.
            cut = data.index(b"\n", len(data) // 2) + 1
            with open(path, "wb") as f:
                for part in (data[:cut], data[cut:]):
                    with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                        g.write(part)
        else:
            with open(path, "wb") as f:
                f.write(data)
        files.append(rel)
    files += emit_httpproxy(est, logs)
    if est.hp_mode != "none":
        emit_ews_log(est, logs)
    if est.hp_mode == "only":
        return files
    # [httperr] HTTP.sys's own error log, as found beside the sites' logs in a
    # copy of a server's LogFiles: requests HTTP.sys refused or dropped
    # before IIS ran, never Exchange's. Not people's requests; the truth
    # counts its lines nowhere (check.py accepts an audit that counts them
    # in `lines`/`files` as read-but-not-requests).
    day = DAYS[1]
    errs = [
        ("06:10:01", "198.51.100.23", "HTTP/1.1", "POST",
         "/Microsoft-Server-ActiveSync/default.eas?Cmd=Ping&User=alice&DeviceId=ApplF17ZK3N1Q1GH&DeviceType=iPhone",
         "-", "1", "Timer_EntityBody", "MSExchangeSyncAppPool"),
        ("06:12:44", "203.0.113.9", "-", "-", "-", "-", "-", "Timer_ConnectionIdle", "-"),
        ("07:01:09", "203.0.113.9", "HTTP/1.1", "GET", "/owa/%25%25%25", "400", "-", "BadRequest", "-"),
        ("09:30:00", "192.0.2.150", "HTTP/1.1", "RPC_OUT_DATA", f"/rpc/rpcproxy.dll?{KATE_MBX}@{MAILDOMAIN}:6001",
         "-", "1", "Connection_Dropped", "MSExchangeRpcProxyFrontEndAppPool"),
        ("11:45:31", "10.1.20.44", "HTTP/1.1", "POST", "/mapi/emsmdb/", "-", "1", "Timer_MinBytesPerSecond",
         "MSExchangeMapiFrontEndAppPool"),
    ]
    text = ["#Software: Microsoft HTTP API 2.0", "#Version: 1.0", f"#Date: {day} 06:10:01",
            "#Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid "
            "s-reason s-queuename"]
    for i, (tm, cip, ver, method, uri, status, site, reason, queue) in enumerate(errs):
        text.append(f"{day} {tm} {cip} {50100 + i} {FE_IP} 443 {ver} {method} {uri} - {status} {site} {reason} {queue}")
    rel = os.path.join("EX01", "HTTPERR", "httperr1.log")
    path = os.path.join(logs, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(("\r\n".join(text) + "\r\n").encode("ascii"))
    tr.tags["httperr"]["lines"] = len(errs)
    tr.tags["httperr"]["files"] = 1
    return files


# [hp-fields] Exchange 2016 CU23's HttpProxy columns (the artefacts.help
# files' `#Fields`), taken to be those of this 2019 estate too.
HP_FIELDS = (
    "DateTime,RequestId,MajorVersion,MinorVersion,BuildVersion,RevisionVersion,ClientRequestId,Protocol,UrlHost,"
    "UrlStem,ProtocolAction,AuthenticationType,IsAuthenticated,AuthenticatedUser,Organization,AnchorMailbox,"
    "UserAgent,ClientIpAddress,ServerHostName,HttpStatus,BackEndStatus,ErrorCode,Method,ProxyAction,TargetServer,"
    "TargetServerVersion,RoutingType,RoutingHint,BackEndCookie,ServerLocatorHost,ServerLocatorLatency,RequestBytes,"
    "ResponseBytes,TargetOutstandingRequests,AuthModulePerfContext,HttpPipelineLatency,CalculateTargetBackEndLatency,"
    "GlsLatencyBreakup,TotalGlsLatency,AccountForestLatencyBreakup,TotalAccountForestLatency,"
    "ResourceForestLatencyBreakup,TotalResourceForestLatency,ADLatency,SharedCacheLatencyBreakup,"
    "TotalSharedCacheLatency,ActivityContextLifeTime,ModuleToHandlerSwitchingLatency,ClientReqStreamLatency,"
    "BackendReqInitLatency,BackendReqStreamLatency,BackendProcessingLatency,BackendRespInitLatency,"
    "BackendRespStreamLatency,ClientRespStreamLatency,KerberosAuthHeaderLatency,HandlerCompletionLatency,"
    "RequestHandlerLatency,HandlerToModuleSwitchingLatency,ProxyTime,CoreLatency,RoutingLatency,HttpProxyOverhead,"
    "TotalRequestTime,RouteRefresherLatency,UrlQuery,BackEndGenericInfo,GenericInfo,GenericErrors,EdgeTraceId,"
    "DatabaseGuid,UserADObjectGuid,PartitionEndpointLookupLatency,RoutingStatus"
).split(",")


def emit_httpproxy(est, logs):
    """[hp-where] `Logging\\HttpProxy\\<Protocol>\\HttpProxy_yyyyMMddHH-N.LOG`,
    one file per protocol and hour, each with its header [hp-fields]. The
    busiest file rolls over by size into `-2.LOG` (its own header), and one
    file was gzipped by the admin [gzip]."""
    tr = est.truth
    groups = defaultdict(list)
    for day, t, vals in est.hp_lines:
        groups[(vals["Protocol"], day, t // 3600)].append((t, vals))
    if not groups:
        return []
    busiest = max(groups, key=lambda k: (len(groups[k]), k))
    gz = min(k for k in groups if k[0] == "Ews")
    files = []
    for key, rows in sorted(groups.items()):
        folder, day, hour = key
        rows.sort(key=lambda r: r[1]["DateTime"])
        parts = [rows[:len(rows) // 2], rows[len(rows) // 2:]] if key == busiest else [rows]
        for n, part in enumerate(parts, 1):
            name = f"HttpProxy_{day.replace('-', '')}{hour:02d}-{n}.LOG"
            text = ["#Software: Microsoft Exchange Server", "#Version: 15.02.1544.004",
                    "#Log-type: HttpProxy Logs", f"#Date: {part[0][1]['DateTime']}",
                    "#Fields: " + ",".join(HP_FIELDS)]
            for _, vals in part:
                text.append(",".join(vals.get(f, "") for f in HP_FIELDS))
                tr.summary["lines"] += 1
            data = ("\r\n".join(text) + "\r\n").encode("utf-8")
            rel = os.path.join("EX01", "Logging", "HttpProxy", folder, name + (".gz" if key == gz else ""))
            path = os.path.join(logs, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                if key == gz:
                    with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                        g.write(data)
                else:
                    f.write(data)
            files.append(rel)
    tr.tags["httpproxy"]["rolled"] = 1
    tr.tags["httpproxy"]["gzipped"] = 1
    return files


# [ews-log] the EWS log's columns, as artefacts.help's Exchange 2016 CU23 file has them.
EWS_LOG_FIELDS = (
    "DateTime,RequestId,MajorVersion,MinorVersion,BuildVersion,RevisionVersion,Ring,ClientRequestId,"
    "AuthenticationType,IsAuthenticated,AuthenticatedUser,Organization,UserAgent,VersionInfo,ClientIpAddress,"
    "ServerHostName,FrontEndServer,SoapAction,HttpStatus,RequestSize,ResponseSize,ErrorCode,ImpersonatedUser,"
    "ProxyAsUser,ActAsUser,Cookie,CorrelationGuid,PrimaryOrProxyServer,TaskType,RemoteBackendCount,"
    "LocalMailboxCount,RemoteMailboxCount,LocalIdCount,RemoteIdCount,BeginBudgetConnections,EndBudgetConnections,"
    "BeginBudgetHangingConnections,EndBudgetHangingConnections,BeginBudgetAD,EndBudgetAD,BeginBudgetCAS,"
    "EndBudgetCAS,BeginBudgetRPC,EndBudgetRPC,BeginBudgetFindCount,EndBudgetFindCount,BeginBudgetSubscriptions,"
    "EndBudgetSubscriptions,MDBResource,MDBHealth,MDBHistoricalLoad,ThrottlingPolicy,ThrottlingDelay,"
    "ThrottlingRequestType,TotalDCRequestCount,TotalDCRequestLatency,TotalMBXRequestCount,TotalMBXRequestLatency,"
    "RecipientLookupLatency,ExchangePrincipalLatency,HttpPipelineLatency,CheckAccessCoreLatency,AuthModuleLatency,"
    "CallContextInitLatency,PreExecutionLatency,CoreExecutionLatency,TotalRequestTime,"
    "DetailedExchangePrincipalLatency,ClientStatistics,GenericInfo,AuthenticationErrors,GenericErrors,Puid,"
    "StartTime,ProcessId,TimeInGC,StartTotalMemory,EndTotalMemory,StartGCCounts,EndGCCounts,"
    "TokenBasedThrottlingPolicy,BudgetKey,CoinsCharged,CoinsChargedMethod,SidBudgetInfo,AppBudgetInfo,"
    "TenantBudgetInfo,ResourceAccessed,ResourceHealthBasedThreshold,ThrottledBy,BackoffHint,WorkClassification"
).split(",")


def emit_ews_log(est, logs):
    """[ews-log] one hour of EX01's EWS log (Managed Availability's EWS
    probe), a file of another `#Log-type` in the `Logging` folder given:
    named, not read. Not among the truth's `files`; `tags["other-logs"]`
    says what an audit that counts it anyway may add to `files` and
    `lines`."""
    day = DAYS[1]
    rows = []
    for i, t in enumerate(range(10 * 3600 + 6, 11 * 3600, 1200)):
        vals = {"DateTime": f"{day}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}.410Z",
                "RequestId": str(uuid.UUID(int=est.hp_rng.getrandbits(128), version=4)), "MajorVersion": "15",
                "MinorVersion": "2", "BuildVersion": "1544", "RevisionVersion": "4", "Ring": "Unknown",
                "AuthenticationType": "Logon", "IsAuthenticated": "true",
                "AuthenticatedUser": f"HealthMailbox{'%032x' % est.hp_rng.getrandbits(128)}@{MAILDOMAIN}",
                "Organization": MAILDOMAIN.upper(),
                "UserAgent": "Ews_AM_Probe/Local (ExchangeServicesClient/15.02.1544.004)",
                "VersionInfo": "Target=None;Req=Exchange2010_SP1/Exchange2010_SP1;", "ClientIpAddress": "::1",
                "ServerHostName": "EX01", "SoapAction": "GetFolder", "HttpStatus": "200", "RequestSize": "666",
                "PrimaryOrProxyServer": "PrimaryServer", "TaskType": "LocalTask"}
        rows.append(",".join(vals.get(f, "") for f in EWS_LOG_FIELDS))
    text = ["#Software: Microsoft Exchange Server", "#Version: 15.02.1544.004", "#Log-type: EWS Logs",
            f"#Date: {day}T10:00:06.386Z", "#Fields: " + ",".join(EWS_LOG_FIELDS)] + rows
    rel = os.path.join("EX01", "Logging", "Ews", f"Ews_{day.replace('-', '')}10-1.LOG")
    os.makedirs(os.path.join(logs, os.path.dirname(rel)), exist_ok=True)
    with open(os.path.join(logs, rel), "wb") as f:
        f.write(("\r\n".join(text) + "\r\n").encode("utf-8"))
    est.truth.tags["other-logs"].update({"files": 1, "lines": len(rows), "name": rel.replace(os.sep, "/")})


def truth_json(est, files):
    tr = est.truth
    users = {}
    for k, u in sorted(tr.users.items()):
        users[k] = {
            "requests": u["requests"],
            "first_seen": u["first_seen"],
            "last_seen": u["last_seen"],
            "protocols": dict(sorted(u["protocols"].items())),
            "clients": dict(sorted(u["clients"].items())),
            "failed_sign_ins": u["failed_sign_ins"],
            "sources": {ip: {"network": n, "requests": c} for ip, (n, c) in sorted(u["sources"].items())},
            "device_sources": {k: {"client": v["client"], "sources": dict(sorted(v["sources"].items()))}
                               for k, v in sorted(u["device_sources"].items())},
            "devices": {i: {"type": d["type"], "client": d["client"], "requests": d["requests"],
                            "commands": dict(sorted(d["commands"].items())),
                            "networks": sorted(d["networks"]),
                            **{k: d[k] for k in ("access", "model", "os") if k in d}}
                        for i, d in sorted(u["devices"].items())},
        }
    s = tr.summary
    summary = {k: s.get(k, 0) for k in ("lines", "malformed", "requests", "backend_duplicates", "probes",
                                        "attacks", "exploit_attempts", "failed_sign_ins", "machine",
                                        "anonymous", "iis_duplicates")}
    summary["users"] = len(users)
    summary["devices"] = sum(len(u["device_keys"]) for u in tr.users.values())
    summary["files"] = len(files)

    def outcome(statuses):
        # An attack succeeded if anything was answered 2xx; it was blocked if
        # every answer was a refusal (401, 403, 456 ActiveSync's block, or
        # IIS request filtering's 404 with a substatus, 404.5-404.19);
        # otherwise it failed (say 302, 400, or a plain 404.0: not there).
        if any(200 <= x < 300 for x, _ in statuses):
            return "succeeded"
        if all(x in (401, 403, 456) or (x == 404 and sub != 0) for x, sub in statuses):
            return "blocked"
        return "failed"

    return {
        "writer": "tests/apart/write.py",
        "seed": est.seed,
        "files": files,
        "summary": summary,
        "httpproxy": est.hp_mode,
        "protocols": dict(sorted(tr.protocols.items())),
        "clients": dict(sorted(tr.clients.items())),
        "auth_types": dict(sorted(tr.auth_types.items())),
        "posture": {"auth_known_requests": s.get("posture_auth_known", 0),
                    "basic_auth_requests": sum(v["requests"] for v in tr.basic_auth.values())},
        "basic_auth": [{"protocol": p, "client": c, "requests": v["requests"], "users": sorted(v["users"])}
                       for (p, c), v in sorted(tr.basic_auth.items())],
        "users": users,
        "probes": {"requests": s.get("probes", 0), "user_agents": dict(sorted(tr.probe_user_agents.items()))},
        "attacks": {ip: {"requests": a["requests"], "exploit_attempts": a["exploit"], "kinds": sorted(a["kinds"]),
                         "outcome": outcome(a["statuses"])} for ip, a in sorted(tr.attacks.items())},
        "failed_sign_ins": dict(sorted(tr.failed.items())),
        "password_spray": {ip: sorted(v) for ip, v in tr.spray.items()},
        "brute_force": sorted(tr.brute_force),
        # An audit of the W3SVC2 folders alone.
        "backend_only": {
            "summary": {"lines": tr.backend["lines"], "requests": tr.backend["requests"],
                        "probes": tr.backend["probes"], "backend_duplicates": 0, "attacks": 0, "machine": 0,
                        "malformed": 0, "users": len(tr.backend["users"]), "backend_only": True},
            "protocols": dict(sorted(tr.backend["protocols"].items())),
            "clients": dict(sorted(tr.backend["clients"].items())),
            "users": dict(sorted(tr.backend["users"].items())),
        },
        "findings": {k: sorted(v) for k, v in sorted(tr.findings.items())},
        "malformed": tr.malformed,
        "tags": {k: dict(sorted(v.items())) for k, v in sorted(tr.tags.items())},
        # [simulate] each request an audit counts apart from attacks, in the
        # order written, for expect.py.
        "requests": est.requests,
    }


# [devices] what Exchange's partnerships say of each ActiveSync device
# (`Get-MobileDevice | Get-MobileDeviceStatistics`, README "--devices"):
# model and OS as the device reported them, first sync. Outlook for iOS and
# Android's partnerships have DeviceModel `Outlook for iOS and Android`
# (OfficeDocs-Exchange `manage-devices.md`); alice's iPhone as its
# Provision logged it (`DevModel`, `DevOS`). Keyed by (user, device id).
# Every partnership is older than the logs, but erin's: her Samsung first
# synced with its first request here.
NEW_PARTNERSHIPS = {("erin", "SEC1F0B2C3D4E5A6")}
PARTNERSHIPS = {
    ("alice", "ApplF17ZK3N1Q1GH"): ("Alice Martin", "iPhone14C2", "iOS 17.1.2 21B101"),
    ("bob", "8C1E2F0A7B3D4C5E9F60718293A4B5C6"): ("Bob Chen", "Outlook for iOS and Android", "iOS 17.1.2"),
    ("carol", "OLMA7F3C2B1D0E9F8A7B6C5D4E3F2A1B0"): ("Carol Diaz", "Outlook for iOS and Android", "Android 14"),
    ("dave", "androidc1849305526"): ("Dave Evans", "Pixel 7", "Android 13"),
    ("erin", "SEC1F0B2C3D4E5A6"): ("Erin Fox", "SM-G991B", "Android 14"),
    ("grace", "6F24CAD599A5BF1A690246B8C68FAE8D"): ("Grace Hall", "Surface Laptop 5", "Windows 10.0.19045"),
    ("ivan", "ApplDNPQ8K2L0M9X"): ("Ivan Jones", "iPhone12C1", "iOS 16.7.2"),
    ("lena", "4D2A9C0B7E1F4A5B8C6D7E8F9A0B1C2D"): ("Lena Kim", "Outlook for iOS and Android", "iOS 17.1.2"),
    ("lena", "0F1E2D3C4B5A69788796A5B4C3D2E1F0"): ("Lena Kim", "Outlook for iOS and Android", "Android 12"),
    # [more]
    ("frank", FRANK_TABLET): ("Frank Green", "Nexus 7", "Android 4.1.1"),
    ("ivan", IVAN_IPAD): ("Ivan Jones", "iPad13C1", "iOS 17.1.2 21B101"),
}


def device_export(est):
    """[devices] the partnerships of the estate's ActiveSync devices as
    PowerShell 7's `ConvertTo-Json` writes them (an array, ISO dates, times
    in UTC), and the truth's account of them."""
    rows, truth = [], []
    first = {}
    for r in est.requests:
        if r["kind"] == "person" and r.get("device"):
            k = (r["user"], r["device"])
            first[k] = min(first.get(k, r["time"]), r["time"])
    for (user, dev), (name, model, dev_os) in sorted(PARTNERSHIPS.items()):
        if dev not in est.truth.users[user]["devices"]:
            continue   # ivan's iPad is in EX03's IIS logs only
        d = est.truth.users[user]["devices"][dev]
        first_sync = first[(user, dev)] if (user, dev) in NEW_PARTNERSHIPS else "2026-10-01T08:00:00Z"
        rows.append({
            "Identity": f"{MAILDOMAIN}/Users/{name}/ExchangeActiveSyncDevices/{d['type']}§{dev}",
            "DeviceId": dev, "DeviceType": d["type"], "DeviceModel": model, "DeviceOS": dev_os,
            "FirstSyncTime": first_sync, "LastSuccessSync": f"{DAYS[1]}T22:59:00Z",
            "LastSyncAttemptTime": f"{DAYS[1]}T22:59:00Z", "DeviceAccessState": "Allowed",
            "DeviceAccessStateReason": "Global", "SamAccountName": user,
            "PrimarySmtpAddress": f"{user}@{MAILDOMAIN}",
        })
        truth.append({"user": user, "device": dev, "model": model, "os": dev_os, "first_sync": first_sync})
    return rows, truth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True, help="folder: logs/ and truth.json are written in it")
    ap.add_argument("--httpproxy", choices=["none", "also", "only"], default="none",
                    help="also: the front end's HttpProxy logs beside its IIS logs; only: HttpProxy logs alone")
    args = ap.parse_args(argv)
    est = build(args.seed, args.httpproxy)
    est.seed = args.seed
    files = emit(est, args.out)
    truth = truth_json(est, files)
    # [devices] beside the logs, not among them (an audit of logs/ would
    # read it): for `--devices`.
    export, truth["partnerships"] = device_export(est)
    with open(os.path.join(args.out, "devices.json"), "w", encoding="utf-8") as f:
        json.dump(export, f, indent=2, ensure_ascii=False)
    with open(os.path.join(args.out, "truth.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"{truth['summary']['lines']} lines in {len(files)} files, truth in "
          f"{os.path.join(args.out, 'truth.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
