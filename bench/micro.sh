#!/usr/bin/env bash
# The BenchmarkDotNet micro-benchmarks of the hot paths (command lines, DATA decoding, Maildir delivery,
# POP3 RETR), each with its allocations per operation. Prints BenchmarkDotNet's GitHub-style tables.
# Usage: bench/micro.sh [--filter PATTERN]  (default: all; --job short for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--filter '*')
dotnet run -c Release --project bench/SlimMail.Benchmarks -- "${args[@]}" --exporters github --artifacts "$(mktemp -d)"
