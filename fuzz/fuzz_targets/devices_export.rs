//! Any bytes as a device export (Export-Csv or ConvertTo-Json output of
//! Get-MobileDeviceStatistics): read or refused with an error, never a
//! panic; bad rows are counted, and every partnership has a device id and a user.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = exchange::devices::looks_like_export(data);
    if let Ok(export) = exchange::devices::read(data, "fuzz") {
        assert!(export.bad_rows >= export.first_bad.len() as u64);
        assert!(export.rows >= export.partnerships.len() as u64);
        for p in &export.partnerships {
            assert!(!p.device_id.is_empty() && !p.user.is_empty() && p.user_keys.contains(&p.user));
        }
    }
});
