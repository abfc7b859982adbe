//! Which Exchange protocol a URI stem belongs to.

use crate::request::Protocol;

/// Virtual-directory prefixes, lower-case, matched case-insensitively.
/// `boundary` lists the bytes allowed right after the prefix besides the
/// end of the stem, so `/owa` matches `/owa/` but not `/owafoo`.
const PREFIXES: &[(&str, &[u8], Protocol)] = &[
    ("/microsoft-server-activesync", b"/", Protocol::ActiveSync),
    ("/ews", b"/", Protocol::Ews),
    ("/owa", b"/", Protocol::Owa),
    ("/ecp", b"/", Protocol::Ecp),
    ("/mapi", b"/", Protocol::Mapi),
    ("/rpc", b"/", Protocol::Rpc),
    ("/rpcwithcert", b"/", Protocol::Rpc),
    ("/autodiscover", b"/", Protocol::Autodiscover),
    ("/oab", b"/", Protocol::Oab),
    // The back end also has `/PowerShell-Proxy`.
    ("/powershell", b"/-", Protocol::PowerShell),
    ("/api", b"/", Protocol::Rest),
];

/// The page of `protocol` where Exchange's front end runs Windows
/// authentication (NTLM, Negotiate) by default, if it does there
/// (Microsoft, "Default settings for Exchange virtual directories": EWS,
/// MAPI over HTTP, Outlook Anywhere, Autodiscover and the OAB run it;
/// Outlook on the web, the admin center and ActiveSync do not).
pub fn windows_sign_in_page(protocol: Protocol) -> Option<&'static str> {
    match protocol {
        Protocol::Ews => Some("/EWS/Exchange.asmx"),
        Protocol::Mapi => Some("/mapi/emsmdb/"),
        Protocol::Rpc => Some("/rpc/rpcproxy.dll"),
        Protocol::Autodiscover => Some("/Autodiscover/Autodiscover.xml"),
        Protocol::Oab => Some("/OAB/"),
        _ => None,
    }
}

/// The stem prefixes of `protocol`, lower-case, each with the bytes allowed
/// right after it besides the end of the stem (for emitters that must
/// match the same paths as [`protocol_of`]).
pub fn prefixes_of(protocol: Protocol) -> impl Iterator<Item = (&'static str, &'static [u8])> {
    PREFIXES.iter().filter(move |(_, _, p)| *p == protocol).map(|&(prefix, boundary, _)| (prefix, boundary))
}

/// The protocol of a URI stem, by its first path segment (case-insensitive).
/// Allocates nothing.
pub fn protocol_of(stem: &str) -> Protocol {
    let b = stem.as_bytes();
    // Runs on every line: only the prefixes sharing the stem's first letter are compared.
    let Some(&first) = b.get(1) else { return Protocol::Other };
    let first = first.to_ascii_lowercase();
    for &(prefix, boundary, protocol) in PREFIXES {
        let p = prefix.as_bytes();
        if p[1] == first && b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p) {
            match b.get(p.len()) {
                None => return protocol,
                Some(c) if boundary.contains(c) => return protocol,
                Some(_) => {}
            }
        }
    }
    Protocol::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        let cases = [
            ("/Microsoft-Server-ActiveSync/default.eas", Protocol::ActiveSync),
            ("/microsoft-server-activesync", Protocol::ActiveSync),
            ("/Microsoft-Server-ActiveSync/Proxy/default.eas", Protocol::ActiveSync),
            ("/EWS/Exchange.asmx", Protocol::Ews),
            ("/ews/mrsproxy.svc", Protocol::Ews),
            ("/owa/auth/logon.aspx", Protocol::Owa),
            ("/OWA", Protocol::Owa),
            ("/owafoo", Protocol::Other),
            ("/ecp/DDI/DDIService.svc/SetObject", Protocol::Ecp),
            ("/mapi/emsmdb/", Protocol::Mapi),
            ("/rpc/rpcproxy.dll", Protocol::Rpc),
            ("/Autodiscover/Autodiscover.xml", Protocol::Autodiscover),
            ("/autodiscover/autodiscover.json", Protocol::Autodiscover),
            ("/OAB/1234/oab.xml", Protocol::Oab),
            ("/PowerShell", Protocol::PowerShell),
            ("/powershell-proxy", Protocol::PowerShell),
            ("/api/v2.0/me/messages", Protocol::Rest),
            ("/apix", Protocol::Other),
            ("/", Protocol::Other),
            ("", Protocol::Other),
            ("/rancertloc/logoff.aspx", Protocol::Other),
        ];
        for (stem, want) in cases {
            assert_eq!(protocol_of(stem), want, "{stem}");
        }
    }
}
