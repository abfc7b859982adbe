//! Any bytes, as any of the files an export folder holds, are imported or
//! rejected with an error: never a panic, and never a policy casguard then
//! cannot read.

#![no_main]

use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = [
    "Get-CASMailbox.csv",
    "Get-OrganizationConfig.json",
    "GetOrganizationConfig.xml",
    "applicationHost.config",
    "DefaultWebSite-EAS_web.config",
    "Contoso-owa_web.config",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    // Two files at times, so that an applicationHost.config meets a web.config.
    let (a, b) = rest.split_at(rest.len() / 2);
    let mut files = vec![(NAMES[pick as usize % NAMES.len()].to_string(), a.to_vec())];
    if pick & 0x80 != 0 {
        files.push((NAMES[(pick as usize / 8) % NAMES.len()].to_string(), b.to_vec()));
    } else {
        files[0].1.extend_from_slice(b);
    }
    if let Err(e) = policy::import::import_files("fuzz", files, "Default Web Site") {
        assert!(!e.to_string().contains("does not compile"), "{e}");
    }
});
