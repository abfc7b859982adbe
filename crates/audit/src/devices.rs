//! One phone, one device. A phone's app also sends requests that carry no
//! ActiveSync DeviceId (Outlook mobile's Autodiscover): the aggregate keys
//! those by user agent. When the user has exactly one ActiveSync device of
//! the same app (the catalog's `app`), they are that device's requests; when
//! the user has none or several, which phone sent them is not known and they
//! stay apart.

use std::borrow::Cow;

use exchange::Catalog;

use crate::aggregate::{DeviceAgg, UserAgg};

impl UserAgg {
    /// The user's devices with the requests that carry no device id joined
    /// to their phone where that is unambiguous, sorted by key.
    pub fn joined_devices<'a>(&'a self, catalog: &Catalog) -> Vec<(&'a str, Cow<'a, DeviceAgg>)> {
        let app = |d: &DeviceAgg| catalog.get(d.client).app.as_str();
        let mut devices: Vec<(&str, Cow<'_, DeviceAgg>)> =
            self.sorted_devices().into_iter().map(|(k, d)| (k, Cow::Borrowed(d))).collect();
        let mut absorbed = vec![false; devices.len()];
        for i in 0..devices.len() {
            if devices[i].1.keyed_by_id {
                continue;
            }
            let wanted = app(&devices[i].1);
            let mut phones = (0..devices.len()).filter(|&j| devices[j].1.keyed_by_id && app(&devices[j].1) == wanted);
            let (Some(phone), None) = (phones.next(), phones.next()) else { continue };
            let other = devices[i].1.clone().into_owned();
            let client = catalog.get(devices[phone].1.client);
            devices[phone].1.to_mut().absorb(other, client);
            absorbed[i] = true;
        }
        devices.into_iter().zip(absorbed).filter(|(_, gone)| !gone).map(|(d, _)| d).collect()
    }
}

#[cfg(test)]
mod tests {
    use exchange::{Request, Traffic};

    use crate::aggregate::Tally;
    use crate::findings::FindingKind;

    fn request(user: &str, ua: &str, device_id: &str, device_type: &str, time: i64) -> Request {
        let interpreter = exchange::Interpreter::builtin();
        let mut r = Request {
            time,
            method: "POST".into(),
            user_agent: ua.into(),
            username: user.into(),
            peer_ip: "52.96.1.1".parse().ok(),
            server_port: 443,
            status: 200,
            ..Request::default()
        };
        if device_id.is_empty() {
            r.stem = "/autodiscover/autodiscover.json".into();
            r.query = format!("Email={user}%40contoso.com&Protocol=ActiveSync");
        } else {
            r.stem = "/Microsoft-Server-ActiveSync/default.eas".into();
            r.query = format!("Cmd=Sync&User={user}&DeviceId={device_id}&DeviceType={device_type}");
        }
        interpreter.interpret(&mut r);
        assert_eq!(r.traffic, Traffic::Person);
        r
    }

    #[test]
    fn one_phone_is_one_device_when_unambiguous() {
        let catalog = exchange::Catalog::builtin();
        let mut tally = Tally::default();
        // Hybrid modern auth: the Autodiscover request (user agent only) first,
        // then the ActiveSync device with DeviceType OutlookService.
        tally.add(&request("alice", "Outlook-iOS/2.0", "", "", 100), &catalog);
        tally.add(&request("alice", "Outlook-iOS/2.0", "ABC1", "OutlookService", 101), &catalog);
        tally.add(&request("alice", "Outlook-iOS/2.0", "ABC1", "OutlookService", 102), &catalog);
        // Two phones of one app: which one asked is not known.
        for id in ["P1", "P2"] {
            tally.add(&request("bob", "Outlook-iOS-Android/1.0", id, "Outlook", 100), &catalog);
        }
        tally.add(&request("bob", "Outlook-iOS-Android/1.0", "", "", 99), &catalog);
        // Another app's ActiveSync device does not take Outlook's requests.
        tally.add(&request("carol", "Apple-iPhone15C3/2104.100", "IOS1", "iPhone", 100), &catalog);
        tally.add(&request("carol", "Outlook-iOS-Android/1.0", "", "", 100), &catalog);

        let devices = |user: &str| {
            let u = &tally.users[user];
            u.joined_devices(&catalog)
                .into_iter()
                .map(|(k, d)| {
                    let d = d.into_owned();
                    (k.to_string(), catalog.get(d.client).id.clone(), d.requests, d.findings)
                })
                .collect::<Vec<_>>()
        };
        let alice = devices("alice");
        assert_eq!(alice.len(), 1, "{alice:?}");
        assert_eq!((alice[0].0.as_str(), alice[0].1.as_str(), alice[0].2), ("ABC1", "outlook-mobile-hma", 3));
        // The joined request counts toward the device's own finding, not Basic's.
        assert_eq!(alice[0].3.get(FindingKind::CloudToken), 3);
        assert_eq!(alice[0].3.get(FindingKind::CloudCredentials), 0);
        assert_eq!(devices("bob").len(), 3);
        assert_eq!(devices("carol").len(), 2);
    }
}
