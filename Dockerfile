# syntax=docker/dockerfile:1
# SlimMail in a container: a self-contained, trimmed single file on the runtime-deps base, run as the
# unprivileged user "slimmail". Mount your configuration over /etc/slimmail/slimmail.json (the default
# one only listens on port 25 and knows no domain), and keep mail in the volume:
#   docker build -t slimmail .
#   docker run -d -p 25:25 -p 587:587 -p 110:110 -v slimmail-data:/var/lib/slimmail \
#     -v ./slimmail.json:/etc/slimmail/slimmail.json:ro slimmail
# Docker lets unprivileged processes bind ports below 1024 inside the container (ip_unprivileged_port_start=0).

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props .editorconfig SlimMail.slnx ./
COPY src/ src/
RUN dotnet publish src/SlimMail -c Release -r linux-x64 --self-contained \
      -p:PublishSingleFile=true -p:PublishTrimmed=true -p:PublishReadyToRun=true \
      -p:DebugType=none -p:GenerateDocumentationFile=false -o /out

FROM mcr.microsoft.com/dotnet/runtime-deps:10.0 AS runtime
RUN groupadd --system slimmail \
 && useradd --system --gid slimmail --home-dir /var/lib/slimmail --no-create-home --shell /usr/sbin/nologin slimmail \
 && mkdir -p /var/lib/slimmail /etc/slimmail \
 && chown slimmail:slimmail /var/lib/slimmail && chmod 0750 /var/lib/slimmail
COPY --from=build /out/slimmail /usr/local/bin/slimmail
COPY deploy/container.json /etc/slimmail/slimmail.json
USER slimmail
# As deploy/slimmail.service: a young generation of 6 MB, never raised above that (memory, not speed), and
# hot code optimised without the runtime's quiet-period delay (reaches full speed sooner under load); see
# docs/benchmarks.md.
ENV DOTNET_GCgen0size=0x600000 DOTNET_GCGen0MaxBudget=0x600000 DOTNET_TC_CallCountingDelayMs=0
WORKDIR /var/lib/slimmail
VOLUME ["/var/lib/slimmail"]
# SMTP, submission, submissions, POP3, POP3S, metrics
EXPOSE 25 587 465 110 995 9025
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/slimmail"]
CMD ["serve", "--config", "/etc/slimmail/slimmail.json"]
