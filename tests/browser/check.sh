#!/usr/bin/env bash
# Load a casguard HTML report in headless Chromium (Debian packages `chromium`
# and `chromium-driver`) through chromedriver, and check it: the page loads,
# the console has no errors, nothing is fetched, sorting and filtering work,
# log text did not become markup; then take a screenshot.
#
#   tests/browser/check.sh REPORT.html SCREENSHOT.png
#
# Exit 0: passed. 1: failed. 77: skipped because Chromium is missing, which
# is allowed only outside CI (with CI=true a missing Chromium fails).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
chromium="$(command -v chromium || command -v chromium-browser || true)"
driver="$(command -v chromedriver || true)"
if [[ -z "$chromium" || -z "$driver" ]]; then
    if [[ "${CI:-}" == "true" ]]; then
        echo "chromium and chromedriver are required in CI: apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
    echo "skipped: chromium or chromedriver not installed (apt-get install -y chromium chromium-driver)" >&2
    exit 77
fi
exec python3 "$here/check.py" --chromium "$chromium" --chromedriver "$driver" "$@"
