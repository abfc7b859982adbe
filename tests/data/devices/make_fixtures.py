"""Writes the device-export fixtures of this folder (run: python3 make_fixtures.py).

No real export is public, so one list of six partnerships is written the ways
Windows PowerShell 5.1 and PowerShell 7 write `Get-MobileDevice |
Get-MobileDeviceStatistics` output (see README.md for the sources of each form).
"""

import calendar
import datetime
import json
import pathlib

HERE = pathlib.Path(__file__).parent

# Property order of a Get-MobileDeviceStatistics object (Exchange 2016/2019), after
# the SamAccountName/PrimarySmtpAddress columns that Export-CasguardInputs.ps1 adds.
COLUMNS = [
    "RunspaceId", "FirstSyncTime", "LastPolicyUpdateTime", "LastSyncAttemptTime", "LastSuccessSync",
    "DeviceType", "DeviceID", "DeviceUserAgent", "DeviceWipeSentTime", "DeviceWipeRequestTime",
    "DeviceWipeAckTime", "LastPingHeartbeat", "RecoveryPassword", "DeviceModel", "DeviceImei",
    "DeviceFriendlyName", "DeviceOS", "DeviceOSLanguage", "DevicePhoneNumber", "MailboxLogReport",
    "DeviceEnableOutboundSMS", "DeviceMobileOperator", "Identity", "Guid", "IsRemoteWipeSupported",
    "Status", "StatusNote", "DeviceAccessState", "DeviceAccessStateReason", "DeviceAccessControlRule",
    "DevicePolicyApplied", "DevicePolicyApplicationStatus", "LastDeviceWipeRequestor", "ClientVersion",
    "NumberOfFoldersSynced", "SyncStateUpgradeTime", "ClientType", "IsValid", "ObjectState",
]
STATES = ["Unknown", "Allowed", "Blocked", "Quarantined", "DeviceDiscovery"]
REASONS = ["Unknown", "Global", "Individual", "DeviceRule", "Upgrade", "Policy"]


def t(text):
    return None if text is None else datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


# owner CN, sam, smtp, type, id, agent, model, os, client type, first, attempt, success, state, reason
DEVICES = [
    ("Jane Doe", "jdoe", "jane.doe@contoso.com", "Outlook", "4A1E5C7D9B2F40E8A6C3D1B0F9E8D7C6",
     "Outlook-iOS-Android/1.0", "Outlook for iOS and Android", "iOS 17.5.1 21F90", "EAS",
     "2025-03-14 09:02:11", "2026-11-02 08:15:30", "2026-11-02 08:15:30", "Allowed", "Global"),
    ("Jane Doe", "jdoe", "jane.doe@contoso.com", "iPhone", "ApplF17LTTCGFFG8",
     "Apple-iPhone15C2/2106.90", "iPhone15C2", "iOS 17.5.1 21F90", "EAS",
     "2023-01-09 17:44:02", "2026-11-01 22:10:05", "2026-11-01 22:10:05", "Allowed", "Global"),
    ("Bob Smith", "bsmith", "bob.smith@contoso.com", "Outlook", "9C0FFEE12B3D4E5F60718293A4B5C6D7",
     "Outlook-iOS-Android/1.0", "Outlook for iOS and Android", "Android 14", "EAS",
     "2024-02-20 07:30:00", "2026-08-01 06:59:59", "2026-08-01 06:59:59", "Allowed", "Individual"),
    ("White, Carol", "cwhite", "carol.white@contoso.com", "SAMSUNGSMS911B", "SEC1A2B3C4D5E6F7",
     "Android-SAMSUNG-SM-S911B/101.140302", "SM-S911B", "Android 14.0.0", "EAS",
     "2026-10-28 12:00:00", "2026-10-30 18:20:41", None, "Blocked", "DeviceRule"),
    ("Dave King", "dking", "dave.king@contoso.com", "Outlook", "D4E5F60718293A4B5C6D7E8F90A1B2C3",
     "Outlook-iOS-Android/1.0", "Outlook for iOS and Android", "iOS 18.0", "EAS",
     "2026-10-01 10:00:00", "2026-10-01 10:00:05", None, "DeviceDiscovery", "Global"),
    ("Ünal Yılmaz", "uyilmaz", "unal.yilmaz@contoso.com", "Outlook", "0A1B2C3D4E5F60718293A4B5C6D7E8F9",
     "Outlook-iOS-Android/1.0", "Outlook for iOS and Android", "Android 13", "EAS",
     "2025-06-30 23:59:59", "2026-10-31 09:00:00", "2026-10-31 09:00:00", "Quarantined", "Policy"),
]


def rows():
    for (owner, sam, smtp, dtype, did, agent, model, dos, ctype, first, attempt, success, state, reason) in DEVICES:
        name = f"{dtype}\u00a7{did}"
        yield {
            "SamAccountName": sam, "PrimarySmtpAddress": smtp,
            "RunspaceId": "5c3a9d4e-1f2b-4c6d-8e9f-0a1b2c3d4e5f", "FirstSyncTime": t(first),
            "LastPolicyUpdateTime": t(first), "LastSyncAttemptTime": t(attempt), "LastSuccessSync": t(success),
            "DeviceType": dtype, "DeviceID": did, "DeviceUserAgent": agent, "DeviceWipeSentTime": None,
            "DeviceWipeRequestTime": None, "DeviceWipeAckTime": None, "LastPingHeartbeat": 540,
            "RecoveryPassword": "********", "DeviceModel": model, "DeviceImei": None, "DeviceFriendlyName": None,
            "DeviceOS": dos, "DeviceOSLanguage": "en-US", "DevicePhoneNumber": None, "MailboxLogReport": None,
            "DeviceEnableOutboundSMS": False, "DeviceMobileOperator": None,
            "Identity": f"contoso.com/Users/{owner}/ExchangeActiveSyncDevices/{name}",
            "Guid": "b6f0c7a2-5d1e-4f3a-9c8b-7e6d5c4b3a29", "IsRemoteWipeSupported": True, "Status": "DeviceOk",
            "StatusNote": None, "DeviceAccessState": state, "DeviceAccessStateReason": reason,
            "DeviceAccessControlRule": "Samsung block (DeviceModel)" if reason == "DeviceRule" else None,
            "DevicePolicyApplied": "Default", "DevicePolicyApplicationStatus": "AppliedInFull",
            "LastDeviceWipeRequestor": None, "ClientVersion": "16.1", "NumberOfFoldersSynced": 12,
            "SyncStateUpgradeTime": None, "ClientType": ctype, "IsValid": True, "ObjectState": "Unchanged",
        }


HEADER = ["SamAccountName", "PrimarySmtpAddress"] + COLUMNS
TYPE_LINE = "#TYPE Selected.Microsoft.Exchange.Data.Directory.SystemConfiguration.MobileDeviceStatistics"


def us(d):
    """en-US DateTime.ToString(): M/d/yyyy h:mm:ss tt."""
    return f"{d.month}/{d.day}/{d.year} {(d.hour % 12) or 12}:{d.minute:02}:{d.second:02} {'AM' if d.hour < 12 else 'PM'}"


def de(d):
    """de-DE DateTime.ToString(): dd.MM.yyyy HH:mm:ss."""
    return d.strftime("%d.%m.%Y %H:%M:%S")


def cell(v, date):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, datetime.datetime):
        return date(v)
    return str(v)


def csv_text(date, sep=",", type_line=True):
    quote = lambda s: '"' + s.replace('"', '""') + '"'
    lines = [TYPE_LINE] if type_line else []
    lines.append(sep.join(quote(h) for h in HEADER))
    for r in rows():
        lines.append(sep.join(quote(cell(r[h], date)) for h in HEADER))
    return "\r\n".join(lines) + "\r\n"


def ms(d):
    return calendar.timegm(d.timetuple()) * 1000


def ps51_json():
    """Windows PowerShell 5.1 ConvertTo-Json: '\\/Date(ms)\\/', enums as numbers, two spaces after ':'."""
    def value(k, v):
        if isinstance(v, datetime.datetime):
            return f'"\\/Date({ms(v)})\\/"'
        if k == "DeviceAccessState":
            return str(STATES.index(v))
        if k == "DeviceAccessStateReason":
            return str(REASONS.index(v))
        return json.dumps(v, ensure_ascii=True)
    objects = []
    for r in rows():
        body = ",\r\n".join(f'        "{k}":  {value(k, r[k])}' for k in HEADER)
        objects.append("    {\r\n" + body + "\r\n    }")
    return "[\r\n" + ",\r\n".join(objects) + "\r\n]"


def ps7_json(single=False):
    """PowerShell 7 ConvertTo-Json: ISO dates, two-space indent, strings for enums (-EnumsAsStrings)."""
    def value(v):
        return v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime.datetime) else v
    objects = [{k: value(r[k]) for k in HEADER} for r in rows()]
    return json.dumps(objects[0] if single else objects, indent=2, ensure_ascii=False) + "\n"


def write(name, text, encoding):
    (HERE / name).write_bytes(text.encode(encoding))


write("ps51-export-csv-unicode.csv", csv_text(us), "utf-16")  # Export-Csv -Encoding Unicode: UTF-16 LE, BOM
write("ps51-export-csv-notype-utf8.csv", csv_text(us, type_line=False), "utf-8-sig")
write("ps7-export-csv.csv", csv_text(us, type_line=False), "utf-8")
write("de-DE-export-csv-useculture.csv", csv_text(de, sep=";"), "utf-8-sig")
write("ps51-convertto-json.json", ps51_json(), "utf-8-sig")
write("ps7-convertto-json.json", ps7_json(), "utf-8")
write("ps7-convertto-json-single.json", ps7_json(single=True), "utf-8")
