# Shared by the benchmark scripts (source it): Postfix's smtp-source and smtp-sink from Debian, without
# starting Postfix itself, and a Release build of slimmail in $DLL.
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
DLL=src/SlimMail/bin/Release/net10.0/slimmail.dll

ensure_smtp_tools() {
  if ! [ -x /usr/sbin/smtp-source ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
    systemctl disable --now postfix >/dev/null 2>&1 || service postfix stop >/dev/null 2>&1 || true
  fi
}

build_slimmail() {
  dotnet build src/SlimMail -c Release -nologo -v quiet >/dev/null
}
