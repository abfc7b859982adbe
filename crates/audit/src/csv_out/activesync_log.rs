//! The Export-ActiveSyncLog set (Users, UserAgents, StatusCodes, Hourly)
//! with the columns Exchange writes, so existing workflows keep working.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use exchange::Protocol;

use super::{create_dir, CsvError, Table};
use crate::aggregate::{Aggregate, DeviceAgg};

/// Commands that count towards a column of Export-ActiveSyncLog's Users.csv.
fn command_count(device: &DeviceAgg, names: &[&str]) -> u64 {
    device.commands.iter().filter(|(c, _)| names.iter().any(|n| n.eq_ignore_ascii_case(c))).map(|(_, n)| n).sum()
}

const USERS_COLUMNS: [&str; 26] = [
    "User Name",
    "Device ID",
    "Device Type",
    "Items Sent",
    "Items Received",
    "Hits",
    "Total Bytes Sent",
    "Total Bytes Received",
    "Total Emails Sent",
    "Total Emails Received",
    "Total Calendar Sent",
    "Total Calendar Received",
    "Total Contacts Sent",
    "Total Contacts Received",
    "Total Tasks Sent",
    "Total Tasks Received",
    "Total Notes Sent",
    "Total Notes Received",
    "Total OOF Messages Set by Client",
    "Total OOF Messages Retrieved from Server",
    "Total Searches requested",
    "Total SharePoint Access",
    "Total UNC Access",
    "Total Attachment Downloads",
    "Total Attachment Size",
    "Currently Compliant with Policy",
];

/// The folder of the Export-ActiveSyncLog set, apart from casguard's own files: on a
/// case-insensitive file system (Windows, macOS) its `Users.csv` would replace `users.csv`.
const EXPORT_ACTIVESYNC_LOG_DIR: &str = "export-activesynclog";

/// Users.csv, UserAgents.csv, StatusCodes.csv and Hourly.csv as Export-ActiveSyncLog writes them,
/// in [`EXPORT_ACTIVESYNC_LOG_DIR`].
/// Columns that need WBXML item counts or byte fields casguard does not read are written as 0.
pub(super) fn write_export_activesync_log(agg: &Aggregate, dir: &Path) -> Result<Vec<PathBuf>, CsvError> {
    let dir = &dir.join(EXPORT_ACTIVESYNC_LOG_DIR);
    create_dir(dir)?;
    let tally = agg.people_tally();
    let mut written = Vec::new();

    let mut w = Table::create(dir, "Users.csv", &USERS_COLUMNS)?;
    let mut total_hits = 0u64;
    let mut user_agents: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut hours_devices = [0u64; 168];
    for (user, u) in tally.sorted_users() {
        for (key, d) in u.sorted_devices() {
            let hits = d.protocols[Protocol::ActiveSync.index()];
            if hits == 0 || d.device_type.is_empty() {
                continue;
            }
            total_hits += hits;
            for (ua, n) in d.user_agents.iter() {
                let entry = user_agents.entry(ua).or_default();
                entry.0 += n;
                entry.1 += 1;
            }
            for (bucket, devices) in hours_devices.iter_mut().enumerate() {
                if d.hours_seen[bucket / 64] & (1 << (bucket % 64)) != 0 {
                    *devices += 1;
                }
            }
            let sent = command_count(d, &["SendMail", "SmartReply", "SmartForward"]);
            let mut fields = vec![user.to_string(), key.to_string(), d.device_type.clone()];
            fields.push(sent.to_string()); // Items Sent
            fields.push("0".into()); // Items Received
            fields.push(hits.to_string());
            fields.extend(["0", "0"].map(String::from)); // bytes
            fields.push(sent.to_string()); // Total Emails Sent
            fields.extend(std::iter::repeat_n("0".to_string(), 11)); // Received .. OOF
            fields.push(command_count(d, &["Search", "Find"]).to_string());
            fields.extend(["0", "0"].map(String::from)); // SharePoint, UNC
            fields.push(command_count(d, &["GetAttachment"]).to_string());
            fields.push("0".into()); // Attachment Size
            fields.push(String::new()); // compliance is not in IIS logs
            w.record(&fields)?;
        }
    }
    let mut total =
        vec!["*** Total ***".to_string(), String::new(), String::new(), "0".into(), "0".into(), total_hits.to_string()];
    total.extend(std::iter::repeat_n("0".to_string(), 19));
    total.push(String::new());
    w.record(&total)?;
    written.push(w.finish()?);

    let mut w = Table::create(dir, "UserAgents.csv", &["User Agent", "Hits", "Unique Devices"])?;
    for (ua, (hits, devices)) in &user_agents {
        row!(w, [ua, hits.to_string(), devices.to_string()]);
    }
    written.push(w.finish()?);

    let mut w = Table::create(dir, "StatusCodes.csv", &["Status", "SubStatus", "Hits", "Ratio"])?;
    let statuses: Vec<_> = tally.activesync.statuses.iter().collect();
    let status_total: u64 = statuses.iter().map(|(_, n)| n).sum();
    for ((status, substatus), hits) in statuses {
        // Exchange's integer division printed 0 for every ratio; we print a percentage.
        let ratio = if status_total == 0 { 0.0 } else { hits as f64 * 100.0 / status_total as f64 };
        row!(w, [status.to_string(), substatus.to_string(), hits.to_string(), format!("{ratio:.2}")]);
    }
    written.push(w.finish()?);

    let mut w = Table::create(dir, "Hourly.csv", &["Day", "Hour", "Unique Devices", "Sync Related Requests"])?;
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    for bucket in 0..168 {
        row!(
            w,
            [
                DAYS[bucket / 24],
                (bucket % 24).to_string(),
                hours_devices[bucket].to_string(),
                tally.activesync.sync_requests[bucket].to_string(),
            ]
        );
    }
    written.push(w.finish()?);
    Ok(written)
}
