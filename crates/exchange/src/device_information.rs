//! What an ActiveSync device says it is: the `DeviceInformation` of a
//! `Settings` or (14.1+) `Provision` request body, WBXML (MS-ASWBXML code
//! page 18, Settings: `DeviceInformation` 0x16, `Model` 0x17, `OS` 0x1A;
//! MS-ASCMD 2.2.3.58 and 2.2.3.126). Exchange stores them on the device's
//! partnership and judges device access rules on `DeviceModel` and
//! `DeviceOS` by them; a request line carries neither. Untrusted input:
//! never panics, reads a bounded prefix, and gives up on anything odd.

/// Code page 18, Settings.
const SETTINGS_PAGE: u8 = 18;
const MODEL: u8 = 0x17;
const OS: u8 = 0x1A;

// WBXML global tokens (WAP-192-WBXML 7.1).
const SWITCH_PAGE: u8 = 0x00;
const END: u8 = 0x01;
const STR_I: u8 = 0x03;
const OPAQUE: u8 = 0xC3;

/// Longest value kept: a model or OS name is short.
const MAX_VALUE: usize = 256;

/// A device's model and OS as its body gives them (either may be empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    pub model: String,
    pub os: String,
}

/// Read `DeviceInformation`'s `Model` and `OS` from a WBXML body; `None`
/// when the body is not WBXML or names neither.
pub fn read(body: &[u8]) -> Option<DeviceInformation> {
    let mut at = header_len(body)?;
    let (mut page, mut open, mut info) = (0u8, None::<u8>, DeviceInformation::default());
    while at < body.len() {
        let token = body[at];
        at += 1;
        match token {
            SWITCH_PAGE => {
                page = *body.get(at)?;
                at += 1;
            }
            END => open = None,
            STR_I => {
                let len = body[at..].iter().position(|&b| b == 0)?;
                keep(&mut info, open.take(), &body[at..at + len]);
                at += len + 1;
            }
            OPAQUE => {
                let (len, used) = mb_u_int32(&body[at..])?;
                let len = usize::try_from(len).ok()?;
                let value = body.get(at + used..at + used + len)?;
                keep(&mut info, open.take(), value);
                at += used + len;
            }
            // Tags: the low 6 bits name it, 0x40 says content follows.
            // Attributes (0x80) are not used by ActiveSync.
            t if t & 0x80 != 0 => return None,
            t => open = (page == SETTINGS_PAGE && t & 0x40 != 0).then_some(t & 0x3F),
        }
    }
    (!info.model.is_empty() || !info.os.is_empty()).then_some(info)
}

fn keep(info: &mut DeviceInformation, tag: Option<u8>, value: &[u8]) {
    let field = match tag {
        Some(MODEL) => &mut info.model,
        Some(OS) => &mut info.os,
        _ => return,
    };
    if field.is_empty() {
        let value = &value[..value.len().min(MAX_VALUE)];
        field.push_str(String::from_utf8_lossy(value).trim());
    }
}

/// The length of the WBXML header: version, public id, charset, string table.
fn header_len(body: &[u8]) -> Option<usize> {
    // Versions 1.1 to 1.3; ActiveSync sends 1.3 (0x03).
    if !matches!(body.first(), Some(0x01..=0x03)) {
        return None;
    }
    let mut at = 1;
    for _ in 0..2 {
        at += mb_u_int32(body.get(at..)?)?.1;
    }
    let (table, used) = mb_u_int32(body.get(at..)?)?;
    at += used;
    at.checked_add(usize::try_from(table).ok()?).filter(|&end| end <= body.len())
}

/// A WBXML multi-byte integer: its value and how many bytes it took.
fn mb_u_int32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        value = value.checked_mul(128)? | u32::from(b & 0x7F);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Provision request of protocol 14.1 with its DeviceInformation, as
    /// MS-ASCMD 4.6 shows it, in WBXML.
    fn provision(model: &str, os: &str) -> Vec<u8> {
        let mut b = vec![0x03, 0x01, 0x6A, 0x00];
        b.extend([SWITCH_PAGE, 14, 0x45]); // Provision
        b.extend([SWITCH_PAGE, SETTINGS_PAGE, 0x56, 0x48]); // DeviceInformation, Set
        b.extend([0x40 | MODEL, STR_I]);
        b.extend(model.as_bytes());
        b.extend([0, END]);
        b.extend([0x40 | 0x19, STR_I]); // FriendlyName: not kept
        b.extend(b"Carol's phone\0");
        b.push(END);
        b.extend([0x40 | OS, STR_I]);
        b.extend(os.as_bytes());
        b.extend([0, END, END, END]);
        b.extend([SWITCH_PAGE, 14, 0x46, 0x47, STR_I]); // Policies, Policy, PolicyType
        b.extend(b"MS-EAS-Provisioning-WBXML\0");
        b.extend([END, END, END]);
        b
    }

    #[test]
    fn model_and_os_of_a_provision_body() {
        let info = read(&provision("SM-S911B", "Android 14.0.0")).unwrap();
        assert_eq!((info.model.as_str(), info.os.as_str()), ("SM-S911B", "Android 14.0.0"));
        // Opaque data holds a value as well as an inline string.
        let mut opaque = vec![0x03, 0x01, 0x6A, 0x00, SWITCH_PAGE, SETTINGS_PAGE, 0x40 | MODEL, OPAQUE, 6];
        opaque.extend(b"iPad7C");
        opaque.push(END);
        assert_eq!(read(&opaque).unwrap().model, "iPad7C");
    }

    #[test]
    fn anything_else_gives_nothing() {
        let body = provision("SM-S911B", "Android");
        for cut in 0..body.len() {
            // A cut body never panics; a value cut short is not taken.
            if let Some(info) = read(&body[..cut]) {
                assert!("SM-S911B".starts_with(&info.model) || info.model.is_empty());
            }
        }
        assert_eq!(read(b"<?xml version=\"1.0\"?><Provision/>"), None);
        assert_eq!(read(&[]), None);
        // A Model tag on another page is not Settings' Model.
        let other = [0x03, 0x01, 0x6A, 0x00, 0x40 | MODEL, STR_I, b'x', 0, END];
        assert_eq!(read(&other), None);
        // A string table longer than the body.
        assert_eq!(read(&[0x03, 0x01, 0x6A, 0x7F]), None);
    }
}
