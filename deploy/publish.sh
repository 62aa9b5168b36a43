#!/usr/bin/env bash
# Publishes slimmail as one self-contained, trimmed executable for linux-x64 (no .NET needed where it
# runs; see docs/benchmarks.md for its start-up time and memory beside the other builds).
# Usage: deploy/publish.sh [OUTPUT_DIR]   (default ./dist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
dotnet publish src/SlimMail -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:PublishTrimmed=true -p:PublishReadyToRun=true \
  -p:DebugType=none -p:GenerateDocumentationFile=false -o "$out" -nologo
echo "wrote $out/slimmail"
