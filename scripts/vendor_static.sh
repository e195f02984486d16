#!/usr/bin/env bash
# Rebuild the front-end libraries the pages ship (no CDN at run time): each file comes
# from its npm package at a pinned version, with the package's licence beside it.
#   bash scripts/vendor_static.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VOICE_SDK=2.18.5   # @twilio/voice-sdk: the agent desktop's softphone (Twilio.Device)
CHARTJS=4.6.1      # chart.js: the wallboard's and the reports' charts
out=ivr/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@twilio/voice-sdk@$VOICE_SDK" "chart.js@$CHARTJS" >/dev/null)
mkdir -p "$work/voice" "$work/chart" "$out/twilio-voice-sdk" "$out/chart.js"
tar -xzf "$work/twilio-voice-sdk-$VOICE_SDK.tgz" -C "$work/voice"
tar -xzf "$work/chart.js-$CHARTJS.tgz" -C "$work/chart"
cp "$work/voice/package/dist/twilio.min.js" "$work/voice/package/LICENSE.md" "$out/twilio-voice-sdk/"
cp "$work/chart/package/dist/chart.umd.min.js" "$work/chart/package/LICENSE.md" "$out/chart.js/"
echo "@twilio/voice-sdk $VOICE_SDK" > "$out/twilio-voice-sdk/VERSION"
echo "chart.js $CHARTJS" > "$out/chart.js/VERSION"
ls -l "$out"/*
