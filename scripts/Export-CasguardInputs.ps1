<#
.SYNOPSIS
Collects what casguard reads into one folder: mobile-device statistics, the IIS and HttpProxy logs of a date
range from every Client Access server, and the configuration in force. Read-only on Exchange: it runs Get-*
cmdlets and copies files over the admin share (\\server\c$); it changes nothing.

.DESCRIPTION
Run in the Exchange Management Shell as an account that may read recipients and the servers' admin shares.
Then, anywhere:
    casguard audit C:\casguard-inputs            # finds the logs and the device export by content
    casguard simulate --policy target.toml C:\casguard-inputs

Layout written under -OutputFolder:
    MobileDeviceStatistics.json          Get-MobileDeviceStatistics of every mailbox with a partnership
    IIS\<server>\W3SVC1\*.log            IIS logs (W3SVC1 front end, W3SVC2 back end)
    HttpProxy\<server>\<Protocol>\*.LOG  Exchange HttpProxy logs
    Config\*.json                        organization, mailbox and ActiveSync settings, authentication policies
    Config\<server>\...                  applicationHost.config and the virtual directories' web.config files

.EXAMPLE
.\Export-CasguardInputs.ps1 -OutputFolder C:\casguard-inputs -Start 2026-11-01 -End 2026-11-07
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $OutputFolder,
    [Parameter(Mandatory = $true)] [datetime] $Start,
    [Parameter(Mandatory = $true)] [datetime] $End,
    # Default: every server with the Client Access role (all Mailbox servers from Exchange 2016 on).
    [string[]] $Server,
    # Where IIS writes its logs, as a local path on each server (IIS's default).
    [string] $IisLogPath = 'C:\inetpub\logs\LogFiles',
    # Exchange's install folder on each server; default: this server's (setup sets ExchangeInstallPath).
    [string] $ExchangeInstallPath = $env:ExchangeInstallPath
)
$ErrorActionPreference = 'Stop'
New-Item -ItemType Directory -Force -Path $OutputFolder | Out-Null
$config = New-Item -ItemType Directory -Force -Path (Join-Path $OutputFolder 'Config')

# JSON, not CSV: Export-Csv writes dates in the session's culture and multi-valued properties as type
# names; ConvertTo-Json writes dates as \/Date(ms)\/ (UTC) and lists as arrays.
# https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/convertto-json
function Save-Json($Objects, [string] $Name) {
    $path = Join-Path $config $Name
    ConvertTo-Json -InputObject @($Objects) -Depth 4 | Out-File -FilePath $path -Encoding UTF8
}

# --- Mobile-device partnerships -------------------------------------------------------------------
# Microsoft's own example: the mailboxes with a partnership, then Get-MobileDeviceStatistics -Mailbox for
# each (CAS_{ mailboxes are system mailboxes). SamAccountName and PrimarySmtpAddress are added because the
# partnership's Identity names the user's directory object (often a display name), not the logon name the
# logs carry. RecoveryPassword stays masked: -ShowRecoveryPassword is not used.
# https://learn.microsoft.com/powershell/module/exchange/get-mobiledevicestatistics
# https://learn.microsoft.com/powershell/module/exchange/get-casmailbox
$withDevices = Get-CASMailbox -ResultSize Unlimited -Filter "HasActiveSyncDevicePartnership -eq `$true -and -not DisplayName -like 'CAS_{*'"
$devices = foreach ($mailbox in $withDevices) {
    Get-MobileDeviceStatistics -Mailbox $mailbox.Identity -ErrorAction Continue |
        Select-Object @{ n = 'SamAccountName'; e = { $mailbox.SamAccountName } },
                      @{ n = 'PrimarySmtpAddress'; e = { [string]$mailbox.PrimarySmtpAddress } }, *
}
ConvertTo-Json -InputObject @($devices) -Depth 3 |
    Out-File -FilePath (Join-Path $OutputFolder 'MobileDeviceStatistics.json') -Encoding UTF8

# --- Configuration in force (read by `casguard policy import`) ------------------------------------
# https://learn.microsoft.com/powershell/module/exchange/get-organizationconfig
Save-Json (Get-OrganizationConfig | Select-Object Name, EwsEnabled, EwsApplicationAccessPolicy, EwsAllowList,
    EwsBlockList, EwsAllowOutlook, EwsAllowMacOutlook, EwsAllowEntourage, DefaultAuthenticationPolicy) 'OrganizationConfig.json'
Save-Json (Get-CASMailbox -ResultSize Unlimited | Select-Object Identity, SamAccountName, PrimarySmtpAddress,
    ActiveSyncEnabled, EwsEnabled, OWAEnabled, OWAforDevicesEnabled, MAPIEnabled, MapiHttpEnabled,
    MAPIBlockOutlookRpcHttp, MAPIBlockOutlookNonCachedMode, MAPIBlockOutlookExternalConnectivity, PopEnabled,
    ImapEnabled, EwsApplicationAccessPolicy, EwsAllowList, EwsBlockList, EwsAllowOutlook, EwsAllowMacOutlook,
    EwsAllowEntourage, ActiveSyncAllowedDeviceIDs, ActiveSyncBlockedDeviceIDs, ActiveSyncMailboxPolicy) 'CASMailbox.json'
# https://learn.microsoft.com/powershell/module/exchange/get-activesyncorganizationsettings
Save-Json (Get-ActiveSyncOrganizationSettings) 'ActiveSyncOrganizationSettings.json'
# https://learn.microsoft.com/powershell/module/exchange/get-activesyncdeviceaccessrule
Save-Json (Get-ActiveSyncDeviceAccessRule) 'ActiveSyncDeviceAccessRule.json'
# Authentication policies exist from Exchange 2019 CU2 on.
# https://learn.microsoft.com/powershell/module/exchange/get-authenticationpolicy
# https://learn.microsoft.com/powershell/module/exchange/get-user
if (Get-Command Get-AuthenticationPolicy -ErrorAction SilentlyContinue) {
    Save-Json (Get-AuthenticationPolicy) 'AuthenticationPolicy.json'
    Save-Json (Get-User -ResultSize Unlimited | Where-Object { $_.AuthenticationPolicy } |
        Select-Object Identity, SamAccountName, UserPrincipalName, AuthenticationPolicy) 'User-AuthenticationPolicy.json'
}

# --- Logs and IIS configuration of every Client Access server ------------------------------------
# https://learn.microsoft.com/powershell/module/exchange/get-exchangeserver
if (-not $Server) {
    $Server = Get-ExchangeServer | Where-Object { $_.IsClientAccessServer } | ForEach-Object { $_.Name }
}
# A local path on a server as a path on its admin share: C:\x -> \\server\C$\x.
function Get-SharePath([string] $Name, [string] $LocalPath) {
    '\\{0}\{1}${2}' -f $Name, $LocalPath.Substring(0, 1), $LocalPath.Substring(2)
}
# Files with lines in the range: created (IIS and Exchange start a new file per period) before its end,
# last written after its start.
function Copy-Range([string] $From, [string] $To, [string] $Filter) {
    if (-not (Test-Path -LiteralPath $From)) { Write-Warning "not found: $From"; return }
    Get-ChildItem -LiteralPath $From -Recurse -File -Filter $Filter |
        Where-Object { $_.LastWriteTime -ge $Start -and $_.CreationTime -le $End.AddDays(1) } |
        ForEach-Object {
            $target = $To + $_.DirectoryName.Substring($From.Length)
            New-Item -ItemType Directory -Force -Path $target | Out-Null
            Copy-Item -LiteralPath $_.FullName -Destination $target
        }
}
foreach ($name in $Server) {
    Write-Host "copying from $name"
    Copy-Range (Get-SharePath $name $IisLogPath) (Join-Path $OutputFolder "IIS\$name") '*.log'
    $exchange = Get-SharePath $name $ExchangeInstallPath
    Copy-Range (Join-Path $exchange 'Logging\HttpProxy') (Join-Path $OutputFolder "HttpProxy\$name") '*.LOG'
    # IIS keeps IP restrictions in applicationHost.config; request filtering and rewrite rules may be in
    # either it or the virtual directories' web.config (front end: FrontEnd\HttpProxy, back end: ClientAccess).
    $iisConfig = New-Item -ItemType Directory -Force -Path (Join-Path $config "$name\inetsrv")
    Copy-Item -LiteralPath (Get-SharePath $name 'C:\Windows\System32\inetsrv\config\applicationHost.config') -Destination $iisConfig
    foreach ($part in 'FrontEnd\HttpProxy', 'ClientAccess') {
        $root = Join-Path $exchange $part
        Get-ChildItem -LiteralPath $root -Recurse -File -Filter 'web.config' | ForEach-Object {
            $target = (Join-Path $config "$name\$part") + $_.DirectoryName.Substring($root.Length)
            New-Item -ItemType Directory -Force -Path $target | Out-Null
            Copy-Item -LiteralPath $_.FullName -Destination $target
        }
    }
}
Write-Host "done: $OutputFolder"
