//! Sign-in tokens built for tests: NTLM's AUTHENTICATE message and the
//! SPNEGO (DER) wrappings Negotiate carries it in. Shared by the
//! integration tests and the unit tests of `src/model.rs`.

#![allow(dead_code)]

/// An NTLM AUTHENTICATE message naming `domain\user`, in Unicode.
pub fn ntlm_type3(domain: &str, user: &str) -> Vec<u8> {
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    ntlm_type3_raw(&utf16(domain), &utf16(user), 1)
}

/// An NTLM AUTHENTICATE message with these domain and user bytes and
/// NegotiateFlags (bit 0: Unicode).
pub fn ntlm_type3_raw(domain: &[u8], user: &[u8], flags: u32) -> Vec<u8> {
    let mut m = vec![0u8; 72];
    m[..8].copy_from_slice(b"NTLMSSP\0");
    m[8..12].copy_from_slice(&3u32.to_le_bytes());
    for (o, data) in [(28usize, domain), (36, user)] {
        let off = m.len() as u32;
        m[o..o + 2].copy_from_slice(&(data.len() as u16).to_le_bytes());
        m[o + 2..o + 4].copy_from_slice(&(data.len() as u16).to_le_bytes());
        m[o + 4..o + 8].copy_from_slice(&off.to_le_bytes());
        m.extend_from_slice(data);
    }
    m[60..64].copy_from_slice(&flags.to_le_bytes());
    m
}

/// An NTLM NEGOTIATE message with these NegotiateFlags (bit 0: Unicode,
/// bit 1: OEM).
pub fn ntlm_type1(flags: u32) -> Vec<u8> {
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.resize(32, 0);
    m
}

/// DER: `tag`, its length, `content`.
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n @ 0..=127 => out.push(n as u8),
        n @ 128..=255 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// SPNEGO's NegTokenResp with `token` as its responseToken, as Windows
/// sends an NTLM AUTHENTICATE message in Negotiate.
pub fn neg_token_resp(token: &[u8]) -> Vec<u8> {
    der(0xa1, &der(0x30, &der(0xa2, &der(0x04, token))))
}

/// SPNEGO's NegTokenInit in its GSS-API framing, offering `mechs` (OID
/// contents) with `token` as its mechToken.
pub fn neg_token_init(mechs: &[&[u8]], token: &[u8]) -> Vec<u8> {
    let oids: Vec<u8> = mechs.iter().flat_map(|m| der(0x06, m)).collect();
    let mut fields = der(0xa0, &der(0x30, &oids));
    fields.extend_from_slice(&der(0xa2, &der(0x04, token)));
    let mut body = der(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]);
    body.extend_from_slice(&der(0xa0, &der(0x30, &fields)));
    der(0x60, &body)
}
