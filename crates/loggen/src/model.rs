//! The labels the generator attaches to what it writes: client ids and
//! protocols as the exchange crate names them, and the kinds of request it can write.

/// Client ids of the built-in catalog (data/clients.toml), in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Client {
    OutlookMobileHma,
    OutlookMobile,
    OutlookMac,
    OutlookWindows,
    IosMail,
    AndroidMail,
    MacosMail,
    RemotePowershell,
    MobileBrowser,
    Browser,
    EwsApp,
    Unknown,
}

impl Client {
    pub const COUNT: usize = 12;

    pub fn id(self) -> &'static str {
        match self {
            Client::OutlookMobileHma => "outlook-mobile-hma",
            Client::OutlookMobile => "outlook-mobile",
            Client::OutlookMac => "outlook-mac",
            Client::OutlookWindows => "outlook-windows",
            Client::IosMail => "ios-mail",
            Client::AndroidMail => "android-mail",
            Client::MacosMail => "macos-mail",
            Client::RemotePowershell => "remote-powershell",
            Client::MobileBrowser => "mobile-browser",
            Client::Browser => "browser",
            Client::EwsApp => "ews-app",
            Client::Unknown => "unknown",
        }
    }

    pub fn all() -> [Client; Client::COUNT] {
        use Client::*;
        [
            OutlookMobileHma,
            OutlookMobile,
            OutlookMac,
            OutlookWindows,
            IosMail,
            AndroidMail,
            MacosMail,
            RemotePowershell,
            MobileBrowser,
            Browser,
            EwsApp,
            Unknown,
        ]
    }

    pub fn cloud_credentials(self) -> bool {
        self == Client::OutlookMobile
    }

    pub fn cloud_token(self) -> bool {
        self == Client::OutlookMobileHma
    }

    /// The catalog's `app`: both ways of running Outlook mobile are one app.
    pub fn app(self) -> Client {
        if self == Client::OutlookMobileHma {
            Client::OutlookMobile
        } else {
            self
        }
    }

    pub fn mobile(self) -> bool {
        matches!(
            self,
            Client::OutlookMobileHma
                | Client::OutlookMobile
                | Client::IosMail
                | Client::AndroidMail
                | Client::MobileBrowser
        )
    }

    pub fn outlook(self) -> bool {
        matches!(self, Client::OutlookMac | Client::OutlookWindows)
    }
}

/// Protocol keys of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    ActiveSync,
    Ews,
    Owa,
    Ecp,
    Mapi,
    Rpc,
    Autodiscover,
    Oab,
    PowerShell,
    Rest,
    Other,
}

impl Proto {
    pub const COUNT: usize = 11;

    pub fn key(self) -> &'static str {
        match self {
            Proto::ActiveSync => "activesync",
            Proto::Ews => "ews",
            Proto::Owa => "owa",
            Proto::Ecp => "ecp",
            Proto::Mapi => "mapi",
            Proto::Rpc => "rpc",
            Proto::Autodiscover => "autodiscover",
            Proto::Oab => "oab",
            Proto::PowerShell => "powershell",
            Proto::Rest => "rest",
            Proto::Other => "other",
        }
    }

    pub fn all() -> [Proto; Proto::COUNT] {
        use Proto::*;
        [ActiveSync, Ews, Owa, Ecp, Mapi, Rpc, Autodiscover, Oab, PowerShell, Rest, Other]
    }

    /// Protocols on which a mobile client raises the mobile-on-ews finding.
    pub fn mailbox_web(self) -> bool {
        matches!(self, Proto::Ews | Proto::Owa | Proto::Rpc | Proto::Mapi)
    }
}

/// ActiveSync commands the generator writes, with their MS-ASHTTP codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Cmd {
    Sync = 0,
    SendMail = 1,
    FolderSync = 9,
    Settings = 17,
    Ping = 18,
    ItemOperations = 19,
    Provision = 20,
}

impl Cmd {
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Sync => "Sync",
            Cmd::SendMail => "SendMail",
            Cmd::FolderSync => "FolderSync",
            Cmd::Settings => "Settings",
            Cmd::Ping => "Ping",
            Cmd::ItemOperations => "ItemOperations",
            Cmd::Provision => "Provision",
        }
    }

    pub fn from_u8(v: u8) -> Cmd {
        match v {
            0 => Cmd::Sync,
            1 => Cmd::SendMail,
            9 => Cmd::FolderSync,
            17 => Cmd::Settings,
            18 => Cmd::Ping,
            19 => Cmd::ItemOperations,
            _ => Cmd::Provision,
        }
    }
}

/// What one log line is. Person kinds first; the rest are never person traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// ActiveSync command; the command is in `Event::arg`.
    As,
    AutodJson,
    AutodXml,
    MapiEmsmdb,
    MapiNspi,
    Ews,
    Oab,
    RpcIn,
    RpcOut,
    /// `GET /`: the IIS redirect to OWA, protocol "other".
    Root,
    OwaLogon,
    OwaAuth,
    Owa,
    OwaSvc,
    Ecp,
    EcpDdi,
    PowerShell,
    // Monitoring.
    AmProbe,
    EasProbe,
    EwsProbe,
    OwaMonProbe,
    // Computer accounts.
    MachineRpc,
    MachinePs,
    /// Detection-rule match; the source index is `Event::agent`.
    Exploit,
    /// A failed sign-in of a password spray or brute force: the attack is
    /// `Event::agent`, the attempt `Event::arg`. A person's request to the audit.
    SignInFail,
    /// A line with a wrong field count; the variant is `Event::arg`.
    Malformed,
}

impl Kind {
    pub fn is_person(self) -> bool {
        (self as u8) <= (Kind::PowerShell as u8)
    }

    pub fn proto(self) -> Proto {
        match self {
            Kind::As => Proto::ActiveSync,
            Kind::AutodJson | Kind::AutodXml => Proto::Autodiscover,
            Kind::MapiEmsmdb | Kind::MapiNspi => Proto::Mapi,
            Kind::Ews => Proto::Ews,
            Kind::Oab => Proto::Oab,
            Kind::RpcIn | Kind::RpcOut => Proto::Rpc,
            Kind::Root => Proto::Other,
            Kind::OwaLogon | Kind::OwaAuth | Kind::Owa | Kind::OwaSvc => Proto::Owa,
            Kind::Ecp | Kind::EcpDdi => Proto::Ecp,
            Kind::PowerShell => Proto::PowerShell,
            _ => Proto::Other,
        }
    }
}

/// Who a person line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Auth {
    /// cs-username `-` and no ActiveSync User parameter.
    Anonymous,
    /// cs-username `-`, user only in the ActiveSync User parameter (a 401).
    Param,
    /// cs-username is set.
    Logged,
}

/// Detection rules the attack lines are built to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    ProxyShell,
    ProxyLogon,
    Cve2020_0688,
    /// A script Exchange does not ship, in the ActiveSync folder (winterfell-hunt).
    WebShell,
    /// Sigma's Windows web-shell strings (`=whoami`).
    WebShellCommand,
    /// Mailbox exports, dumps and archives fetched from a new web folder.
    DataTheft,
    /// zgrab and Nmap by their own user agents.
    Scanner,
    /// A folder none of Exchange's virtual directories.
    OutsideVdirs,
}

impl Rule {
    /// The account a request of this rule with `arg` impersonates, as the
    /// audit names it: ProxyShell's PowerShell requests carry a whole
    /// `X-Rps-CAT` token (see `render.rs`) naming the built-in Administrator.
    pub fn impersonates(self, arg: u8) -> Option<&'static str> {
        (self == Rule::ProxyShell && arg & 1 == 1)
            .then_some("administrator@contoso.com (S-1-5-21-1004336348-1177238915-682003330-500)")
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::ProxyShell => "proxyshell",
            Rule::ProxyLogon => "proxylogon",
            Rule::Cve2020_0688 => "cve-2020-0688",
            Rule::WebShell => "web-shell",
            Rule::WebShellCommand => "web-shell-command",
            Rule::DataTheft => "data-theft",
            Rule::Scanner => "scanner",
            Rule::OutsideVdirs => "outside-vdirs",
        }
    }

    /// The rule's kind in data/exploits.toml.
    pub fn kind(self) -> &'static str {
        match self {
            Rule::ProxyShell | Rule::ProxyLogon | Rule::Cve2020_0688 => "exploit",
            Rule::WebShell | Rule::WebShellCommand => "web-shell",
            Rule::DataTheft => "data-theft",
            Rule::Scanner => "scanner",
            Rule::OutsideVdirs => "outside-vdirs",
        }
    }

    /// The status of attempt `arg`: some answered, some not.
    pub fn status(self, arg: u8) -> u16 {
        match self {
            Rule::ProxyShell => 401,
            Rule::ProxyLogon => 200,
            Rule::Cve2020_0688 => 500,
            // 401 then 200, as in the winterfell-hunt lines.
            Rule::WebShell => [401, 200][arg as usize % 2],
            Rule::WebShellCommand | Rule::DataTheft => 200,
            Rule::Scanner => [200, 404][arg as usize % 2],
            Rule::OutsideVdirs => 404,
        }
    }
}

/// What the status says became of a request, as the audit's `outcome`.
pub(crate) fn outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "succeeded",
        401 | 403 | 456 => "blocked",
        _ => "failed",
    }
}
