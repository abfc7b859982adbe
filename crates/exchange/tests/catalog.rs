//! The built-in client catalog (`data/clients.toml`) against real user agents:
//! every client is named from at least one string taken from the public source
//! its entry cites, and look-alikes are not.

use std::collections::BTreeSet;

use exchange::{Catalog, Device, Interpreter, Protocol, Request};

/// One real request's facts and the client it must be named as.
struct Case {
    ua: &'static str,
    device_type: &'static str,
    device_id: &'static str,
    protocol: Protocol,
    /// The URI stem, where the client is known by its page; else empty.
    stem: &'static str,
    want: &'static str,
    /// Where `ua` (or the device fields) was seen; the entry in clients.toml cites it too.
    source: &'static str,
}

const fn case(ua: &'static str, protocol: Protocol, want: &'static str, source: &'static str) -> Case {
    Case { ua, device_type: "", device_id: "", protocol, stem: "", want, source }
}

const fn eas(
    ua: &'static str,
    device_type: &'static str,
    device_id: &'static str,
    want: &'static str,
    source: &'static str,
) -> Case {
    Case { ua, device_type, device_id, protocol: Protocol::ActiveSync, stem: "", want, source }
}

/// A request to the page `stem`.
const fn page(
    ua: &'static str,
    protocol: Protocol,
    stem: &'static str,
    want: &'static str,
    source: &'static str,
) -> Case {
    Case { ua, device_type: "", device_id: "", protocol, stem, want, source }
}

use Protocol::{ActiveSync, Autodiscover, Ecp, Ews, Mapi, Owa, PowerShell, Rpc};

/// Real strings, one source each (user agents as IIS shows them once `+` is a space).
const REAL: &[Case] = &[
    eas("Outlook-iOS-Android/1.0", "Outlook", "", "outlook-mobile", "artefacts.help Eas/HttpProxy_2023011116-1.LOG"),
    eas("Outlook-iOS-Android/1.0", "", "", "outlook-mobile", "OfficeDocs-Exchange manage-devices.md"),
    eas("Outlook-Android/2.0", "Outlook", "", "outlook-mobile", "OfficeDocs-Exchange secure-outlook-for-ios-and-android.md"),
    eas("Outlook-Android/2.0", "OutlookService", "", "outlook-mobile-hma", "OfficeDocs-Exchange use-hybrid-modern-auth.md (DeviceType)"),
    case("Outlook-iOS/709.2042344.prod.iphone (3.21.0)", Ews, "outlook-mobile", "device-detector pim.yml"),
    eas("", "Android", "Nine342BA3F3E6C6", "nine", "mailcow-dockerized #4594 (base64 query, decoded)"),
    eas("Android/8.0", "Android", "4E696E6533343242", "nine", "horde/ActiveSync _isNine(): the id as hex"),
    case("MicrosoftNinja/1.0 Teams/1.0 (ExchangeServicesClient/1.0.0.0) SkypeSpaces/1.0a$*+", Ews, "teams", "CSS-Exchange ShortClientName tests"),
    case("UCCAPI/16.0.12527.20122 OC/16.0.12527.20194 (Skype for Business)", Ews, "skype-for-business", "Microsoft Graph callRecords example"),
    case("UCCAPI/4.0.7400.0 OC/4.0.7400.0 (Microsoft Lync 2013)", Ews, "skype-for-business", "Lync Server 2013 monitoring reports"),
    case("Microsoft Office/16.0 (Windows NT 6.2; ucmapi 16.0.5404; Pro)", Mapi, "skype-for-business", "Exchange back-end MAPI line, elastic/integrations iis test data"),
    case("Lync for Mac", Ews, "lync-mac", "CSS-Exchange ShortClientName (client-string token)"),
    case("OneOutlook", Ews, "new-outlook", "CSS-Exchange ShortClientName (client-string token)"),
    case("MacOutlook/16.46.21021202 (Intelx64 Mac OS X 11.2.2 (Build 20D80))", Ews, "outlook-mac", "device-detector pim.yml"),
    case("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)", Ews, "outlook-windows", "CSS-Exchange ShortClientName tests"),
    case("Microsoft Office/15.0 (Windows NT 6.1; Microsoft Outlook 15.0.4859; Pro)", Ews, "outlook-windows", "Microsoft KB 3196518"),
    case("Microsoft Office/16.0 (Microsoft Outlook 16.0.12329; Pro), Mozilla/4.0 (compatible; ms-office; MSOffice 16)", Autodiscover, "outlook-windows", "device-detector pim.yml"),
    case("MSRPC", Rpc, "outlook-windows", "Microsoft CSS account-lockout guide, IIS line"),
    eas("Outlook/16.0 (16.0.7167.6539; C2R; x86)", "WindowsOutlook", "", "outlook-windows", "mail-in-a-box #937"),
    case("WindowsMail/16.2.3237.0215", ActiveSync, "windows-mail", "Get-ActiveSyncDeviceInfo.ps1"),
    case("WindowsMail/17.5.9600.22013", ActiveSync, "windows-mail", "device-detector pim.yml"),
    case("microsoft.windowscommunicationsapps", Autodiscover, "windows-mail", "Akamai, Autodiscovering the Great Leak"),
    eas("", "WindowsMail", "", "windows-mail", "Get-EASDeviceReport.ps1 issue #4"),
    case("Microsoft WinRM Client", PowerShell, "remote-powershell", "artefacts.help PowerShell/HttpProxy_2023011116-1.LOG"),
    case("ASProxy/CrossForest/EmailDomain/EXCH/08.03.0083.000", Ews, "exchange-availability", "Microsoft KB 3082946"),
    case("ASAutoDiscover/CrossForest/EmailDomain", Autodiscover, "exchange-availability", "Resolve free/busy errors in Exchange hybrid"),
    page("", Ews, "/EWS/mrsproxy.svc", "exchange-mrs", "tests/data/iis/jpmessaging-hybrid-agent-mrsproxy-503.log"),
    case("TestOrganizationRelationship/1.1", Autodiscover, "exchange-online-org-test", "Microsoft Q&A 108027"),
    case("Mozilla/5.0 (ZoomPresence.Android 8.1.0 x86)", Ews, "zoom-rooms", "CSS-Exchange ShortClientName"),
    case("LinkedInEWS", Ews, "linkedin", "meetingroom365 blog"),
    case("AppleExchangeWebServices/818.120.2 accountsd/113", Autodiscover, "apple-accountsd", "artefacts.help Autodiscover/HttpProxy_2023010919-1.LOG"),
    case("AppleExchangeWebServices/807 accountsd/113", Autodiscover, "apple-accountsd", "Akamai, Autodiscovering the Great Leak"),
    case("AppleExchangeWebServices/818.0.1 Mail/3693.20.0.1.32", Ews, "macos-mail", "device-detector oss.yml"),
    case("Mac OS X/10.6.8 (10K549); ExchangeWebServices/1.3 (61); Mail/4.6 (1085)", Ews, "macos-mail", "published user-agent lists"),
    eas("Apple-iPhone9C1/1402.100", "iPhone", "MyTestDevice", "ios-mail", "CSS-Exchange ShortClientName tests"),
    case("Apple-iPad2C1/901.334", ActiveSync, "ios-mail", "Get-ActiveSyncDeviceInfo.ps1"),
    case("Apple-iPod4C1/901.405", ActiveSync, "ios-mail", "Get-ActiveSyncDeviceInfo.ps1"),
    eas("iOS/7.0.2 (11A501) dataaccessd/1.0", "iPad", "", "ios-mail", "EAS DeviceInformation in public test code"),
    eas("TouchDown(MSRPC)/7.1.0005", "Android", "", "touchdown", "horde/ActiveSync Device tests"),
    case("TouchDown(MSRPC)/6.4.0007", ActiveSync, "touchdown", "Get-ActiveSyncDeviceInfo.ps1"),
    case("Moxier-Android/1.0", ActiveSync, "moxier", "Get-ActiveSyncDeviceInfo.ps1"),
    case("RoadSync-Android/2.503", ActiveSync, "roadsync", "Get-ActiveSyncDeviceInfo.ps1"),
    case("RoadSync-S60/5.0", ActiveSync, "roadsync", "Get-ActiveSyncDeviceInfo.ps1"),
    case("SAMSUNG-SM-T700/101.40402", Autodiscover, "samsung-email", "Akamai, Autodiscovering the Great Leak"),
    case("SAMSUNGSPHD700/100.202", ActiveSync, "samsung-email", "Get-ActiveSyncDeviceInfo.ps1"),
    case("HTC-HTCAmaze4G(4D6F7869SAM)/2.1500", ActiveSync, "htc-mail", "Get-ActiveSyncDeviceInfo.ps1"),
    case("Moto-DROID RAZR/6.5.1", ActiveSync, "motorola-mail", "Get-ActiveSyncDeviceInfo.ps1"),
    case("LGMC-LGEAS/4.23", ActiveSync, "lg-mail", "Get-ActiveSyncDeviceInfo.ps1"),
    eas("Android-Mail/2020.11.29.346182102.Release", "Android", "androidc1628606379", "android-mail", "EAS Settings in public test code"),
    case("Android-Gmail/64562652 (sw411dp; 420dpi) (r7 TP1A.220624.014)", ActiveSync, "android-mail", "device-detector pim.yml"),
    eas("Android/5.0.1-EAS-2.0", "Android", "androidc195792594", "android-mail", "mail-in-a-box #937"),
    case("Android-EAS/4.0.2119383124.172283", ActiveSync, "android-mail", "Get-ActiveSyncDeviceInfo.ps1"),
    case("Android-14/", ActiveSync, "android-mail", "CSS-Exchange ShortClientName tests"),
    case("BlackBerry/5.2.200 UNTRUSTED/1.0", ActiveSync, "blackberry", "Get-ActiveSyncDeviceInfo.ps1"),
    case("RIM-Playbook/2.0", ActiveSync, "blackberry", "Get-ActiveSyncDeviceInfo.ps1"),
    eas("", "bb10", "", "blackberry", "tine20 devicesWithMultipleFolders"),
    case("MSFT-WP/7.10.7720", ActiveSync, "windows-phone", "Get-ActiveSyncDeviceInfo.ps1"),
    eas("", "WP8", "", "windows-phone", "horde/ActiveSync Device.php"),
    case("MSFT-PPC/5.2.5082", ActiveSync, "windows-mobile", "Get-ActiveSyncDeviceInfo.ps1"),
    case("MSFT-SPhone/5.2.1108", ActiveSync, "windows-mobile", "Get-ActiveSyncDeviceInfo.ps1"),
    case("Microsoft-PocketPC/3.0", ActiveSync, "windows-mobile", "Get-ActiveSyncDeviceInfo.ps1"),
    case("NokiaE71/2.09(158)MailforExchange", ActiveSync, "nokia-mail-for-exchange", "Get-ActiveSyncDeviceInfo.ps1"),
    case("NokiaE73/2.02(0)MailforExchange 3gpp-gba", ActiveSync, "nokia-mail-for-exchange", "Get-ActiveSyncDeviceInfo.ps1"),
    case("MeeGo-MfE/1.2", ActiveSync, "nokia-mail-for-exchange", "Get-ActiveSyncDeviceInfo.ps1"),
    case("Palm/1.0.1", ActiveSync, "palm-webos", "Get-ActiveSyncDeviceInfo.ps1"),
    case("PalmOne-TreoAce/1.52", ActiveSync, "palm-webos", "Get-ActiveSyncDeviceInfo.ps1"),
    eas("Thunderbird ActiveSync", "TbSync", "", "tbsync", "jobisoft/EAS-4-TbSync defaults"),
    case("Mozilla/5.0 (X11; Linux x86_64; rv:24.0) Gecko/20100101 Thunderbird/24.4.0 Lightning/2.6.4", Ews, "thunderbird", "device-detector pim.yml"),
    case("eMClient/9.3.6041.0", Ews, "em-client", "device-detector pim.yml"),
    case("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/55.0.2883.87 Safari/537.36 eM Client/8.2.1659.0", Ews, "em-client", "device-detector pim.yml"),
    case("Evolution/3.10.2", Ews, "evolution-ews", "anewmessagehasarrived.blogspot.com 2014/06"),
    case("Sipe/1.18.2", Ews, "sipe", "anewmessagehasarrived.blogspot.com 2014/06"),
    case("Airmail 1.3.3 rv:237 (Macintosh; Mac OS X 10.9.2; en_US)", Ews, "airmail", "device-detector pim.yml"),
    case("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BlueMail/0.10.31 Chrome/61.0.3163.100 Electron/2.0.18 Safari/537.36", Ews, "bluemail", "device-detector pim.yml"),
    case("Mozilla/5.0 (Windows NT 6.2; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/101.0.4951.67 Safari/537.36 Foxmail/7.2.25.213", Ews, "foxmail", "device-detector pim.yml"),
    case("exchangelib/5.4.3 (python-requests/2.31.0)", Ews, "exchangelib", "ecederstrand/exchangelib __init__.py"),
    case("Mozilla/5.0 (iPhone; CPU iPhone OS 12_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1", Owa, "mobile-browser", "winterfell-hunt README, OWA line"),
    case("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.182 Safari/537.36", Owa, "browser", "helsecert/2021-march-exchange"),
    case("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML  like Gecko) Chrome/62.0.3202.62 Safari/537.36", Owa, "browser", "artefacts.help Owa/HttpProxy_2023010602-1.LOG"),
    case("ExchangeServicesClient/0.9.248.0", Ews, "ews-app", "CSS-Exchange ShortClientName tests"),
    case("python-requests/2.25.1", Ecp, "unknown", "helsecert/2021-march-exchange, HttpProxy excerpt"),
    case("MapiHttpClient", Mapi, "unknown", "artefacts.help Mapi/HttpProxy_2023010601-1.LOG"),
];

/// Look-alikes that must not be taken for the client they resemble.
const NEAR_MISSES: &[Case] = &[
    // User agents are matched case-sensitively; the app writes `Outlook-iOS-Android`.
    eas("outlook-ios-android/1.0", "", "", "unknown", "near miss"),
    // Outlook's ActiveSync user agent alone, without its device type.
    eas("Outlook/16.0 (16.0.7167.6539; C2R; x86)", "", "", "unknown", "near miss"),
    // "Nine" must open the device id, not the user agent or the middle of the id.
    eas("Nine", "Android", "androidc195792594", "android-mail", "near miss"),
    eas("", "Android", "4F6E696E65", "android-mail", "near miss"),
    // Apple's EWS user agent names its caller; neither accountsd nor Mail here.
    case("AppleExchangeWebServices/818.120.2", Ews, "ews-app", "near miss"),
    // A Samsung phone's browser is a browser, not Samsung Email (real browser user agent).
    case("Mozilla/5.0 (Linux; Android 8.0.0; SAMSUNG-SM-G930A Build/R16NW) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/68.0.3440.91 Mobile Safari/537.36", Owa, "mobile-browser", "near miss"),
    // The EWS Managed API's default user agent is no Teams, and outside EWS no EWS application.
    case("ExchangeServicesClient/0.0.0.0", Ecp, "unknown", "near miss"),
    // The generator's eM Client string has no public source: left to the generic entry.
    case("eM Client/9.2.2157.0", Ews, "ews-app", "near miss"),
    // Spark and other cloud mail apps are not named without a known user agent.
    case("Spark/3 (Readdle)", Ews, "ews-app", "near miss"),
    // Mailbox moves are known by their page alone, by the URL's segments as Exchange reads them.
    page("", Ews, "/EWS/Exchange.asmx", "ews-app", "near miss"),
    page("", Ews, "/EWS/mrsproxy.svc/x", "ews-app", "near miss"),
    page("", Owa, "/owa/mrsproxy.svc", "unknown", "near miss"),
];

fn name(catalog: &Catalog, c: &Case) -> String {
    let device = Device { device_type: c.device_type, device_id: c.device_id };
    catalog.get(catalog.classify_at(c.ua, device, c.protocol, c.stem)).id.clone()
}

#[test]
fn real_user_agents_name_their_client() {
    let catalog = Catalog::builtin();
    let wrong: Vec<String> = REAL
        .iter()
        .filter(|c| name(&catalog, c) != c.want)
        .map(|c| format!("{:?} ({}) -> {} not {}", c.ua, c.source, name(&catalog, c), c.want))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_client_has_a_real_user_agent() {
    let catalog = Catalog::builtin();
    let tested: BTreeSet<&str> = REAL.iter().map(|c| c.want).collect();
    let missing: Vec<&str> = catalog.iter().map(|(_, cl)| cl.id.as_str()).filter(|id| !tested.contains(id)).collect();
    assert!(missing.is_empty(), "no real user agent for {missing:?}");
    assert!(catalog.len() >= 41, "{} clients", catalog.len());
}

#[test]
fn near_misses_are_not_named() {
    let catalog = Catalog::builtin();
    let wrong: Vec<String> = NEAR_MISSES
        .iter()
        .filter(|c| name(&catalog, c) != c.want)
        .map(|c| format!("{:?} -> {} not {}", c.ua, name(&catalog, c), c.want))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn cloud_credentials_only_where_a_source_says_so() {
    let catalog = Catalog::builtin();
    let cloud: Vec<&str> =
        catalog.iter().filter(|(_, cl)| cl.cloud_credentials).map(|(_, cl)| cl.id.as_str()).collect();
    assert_eq!(cloud, ["outlook-mobile", "linkedin"]);
    let token: Vec<&str> = catalog.iter().filter(|(_, cl)| cl.cloud_token).map(|(_, cl)| cl.id.as_str()).collect();
    assert_eq!(token, ["outlook-mobile-hma"]);
    let hma = catalog.get(catalog.id_of("outlook-mobile-hma").unwrap());
    assert_eq!(hma.app, "outlook-mobile");
    assert_eq!(catalog.get(catalog.id_of("ios-mail").unwrap()).app, "ios-mail");
    let outlook: Vec<&str> = catalog.iter().filter(|(_, cl)| cl.outlook).map(|(_, cl)| cl.id.as_str()).collect();
    assert_eq!(outlook, ["outlook-mac", "outlook-windows"]);
}

/// The interpreter hands the device id to the catalog: Nine, from the real
/// base64 ActiveSync query quoted in mailcow-dockerized issue #4594.
#[test]
fn interpreter_names_nine_from_its_device_id() {
    let interpreter = Interpreter::builtin();
    let mut req = Request::default();
    req.method.push_str("POST");
    req.stem.push_str("/Microsoft-Server-ActiveSync");
    req.query.push_str("jQAJBBBOaW5lMzQyQkEzRjNFNkM2BAAAAAAHQW5kcm9pZAcBAA==");
    req.peer_ip = "192.168.30.5".parse().ok();
    req.status = 200;
    req.server_port = 443;
    interpreter.interpret(&mut req);
    assert_eq!(req.activesync.device_id, "Nine342BA3F3E6C6");
    assert_eq!(req.activesync.device_type, "Android");
    assert_eq!(interpreter.catalog().get(req.client).id, "nine");
}
