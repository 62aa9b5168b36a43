using System.Globalization;
using System.Text.Json;
using SlimMail.Smtp;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>
/// Outbound relay through a smarthost (a real SMTP server on loopback that accepts, defers and rejects per
/// recipient): the durable queue, retries, bounces checked as RFC 3464 reports, kill -9 in the middle, and
/// the <c>slimmail queue</c> commands.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class RelayTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-relay-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string Config(int smarthost, string retryDelays = "\"00:00:01\"", string maxQueueTime = "1.00:00:00") => $$"""
        {
          "Hostname": "mx.example.test",
          "DataDirectory": "$DATA",
          "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Local" }, { "Endpoint": "127.0.0.1:0", "Role": "Mx" } ] },
          "Domains": { "example.test": { "Mailboxes": { "alice": "alice" } } },
          "Users": { "alice": {} },
          "Relay": { "Mode": "Smarthost", "Smarthost": "127.0.0.1:{{smarthost}}", "RetryDelays": [ {{retryDelays}} ], "MaxQueueTime": "{{maxQueueTime}}" }
        }
        """;

    private Task<SlimMailServer> StartAsync(string config) => SlimMailServer.StartAsync(config, listeners: 2, directory: _directory);

    private static async Task<string> SendAsync(int port, string sender, string body, params string[] recipients)
    {
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            s.ehlo('cron.example.test')
            s.mail(sys.argv[2])
            codes = [s.rcpt(r)[0] for r in sys.argv[4:]]
            code, msg = s.data(sys.argv[3].encode())
            print(codes, code, msg.decode())
            s.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, [port.ToString(CultureInfo.InvariantCulture), sender, body, .. recipients]);
        Assert.True(result.ExitCode == 0, result.Output);
        return result.Stdout;
    }

    private static async Task<ProcessResult> QueueAsync(SlimMailServer server, params string[] arguments) =>
        await ProcessRunner.RunAsync("dotnet", [SlimMailServer.SlimMailDll, "queue", .. arguments, "--config", Path.Combine(server.Directory, "slimmail.json")]);

    private static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 30)
    {
        for (int i = 0; i < seconds * 20 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition(), what);
    }

    // Python's email package reads the report as a mail client would.
    private static async Task<JsonElement> ParseReportAsync(string message)
    {
        const string parse = """
            import email, sys, json
            from email import policy
            m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
            parts = list(m.iter_parts())
            status = parts[1].get_payload()
            print(json.dumps({
              'from': m['From'], 'ct': m.get_content_type(), 'report': m.get_param('report-type'),
              'types': [p.get_content_type() for p in parts],
              'per_message': dict(status[0].items()), 'recipients': [dict(r.items()) for r in status[1:]],
              'headers': parts[2].get_payload() if isinstance(parts[2].get_payload(), str) else str(parts[2].get_payload()[0]),
            }))
            """;
        ProcessResult parsed = await ProcessRunner.RunAsync("python3", ["-c", parse], stdin: message);
        Assert.True(parsed.ExitCode == 0, parsed.Output);
        return JsonDocument.Parse(parsed.Stdout).RootElement.Clone();
    }

    [Fact]
    public async Task Relayed_mail_is_delivered_per_recipient_retried_after_451_and_bounced_after_550()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        await using SlimMailServer server = await StartAsync(Config(smarthost.Port));

        string reply = await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: outbound\r\nMessage-ID: <out-1@example.test>\r\n\r\nto the world\r\n",
            "accept@remote.test", "defer@remote.test", "reject@remote.test");
        Assert.Contains("[250, 250, 250] 250", reply, StringComparison.Ordinal);

        await smarthost.WaitForAsync(m => m.Recipients.Contains("accept@remote.test"));
        // The deferred recipient is retried (after the 1 s retry delay), and takes the mail once the server does.
        await WaitUntilAsync(() => smarthost.RecipientAttempts.Count(a => a == "defer@remote.test") >= 2, "defer@remote.test was not retried");
        smarthost.Deferring = false;
        await smarthost.WaitForAsync(m => m.Recipients.Contains("defer@remote.test"));
        Assert.Single(smarthost.To("accept@remote.test"));
        Assert.Single(smarthost.To("defer@remote.test"));
        Assert.Equal(1, smarthost.RecipientAttempts.Count(a => a == "reject@remote.test"));
        ScriptedSmarthost.Received delivered = smarthost.To("accept@remote.test").Single();
        Assert.Equal("alice@example.test", delivered.Sender);
        // The smarthost's own Received: comes first, then ours.
        Assert.Contains("\r\nReceived: from cron.example.test", delivered.Data, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nto the world\r\n", delivered.Data, StringComparison.Ordinal);

        // alice is local: her bounce lands in her Maildir.
        await WaitUntilAsync(() => server.Messages("alice").Length == 1, "no bounce reached alice");
        string bounce = await File.ReadAllTextAsync(server.Messages("alice")[0]);
        JsonElement report = await ParseReportAsync(bounce.Replace("\n", "\r\n", StringComparison.Ordinal));
        Assert.Equal("multipart/report", report.GetProperty("ct").GetString());
        Assert.Equal("delivery-status", report.GetProperty("report").GetString());
        Assert.Equal(["text/plain", "message/delivery-status", "text/rfc822-headers"], report.GetProperty("types").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains("MAILER-DAEMON@mx.example.test", report.GetProperty("from").GetString(), StringComparison.Ordinal);
        JsonElement failed = Assert.Single(report.GetProperty("recipients").EnumerateArray());
        Assert.Equal("rfc822; reject@remote.test", failed.GetProperty("Final-Recipient").GetString());
        Assert.Equal("failed", failed.GetProperty("Action").GetString());
        Assert.Equal("5.1.1", failed.GetProperty("Status").GetString());
        Assert.Equal("dns; 127.0.0.1", failed.GetProperty("Remote-MTA").GetString());
        Assert.StartsWith("smtp; 550 5.1.1", failed.GetProperty("Diagnostic-Code").GetString(), StringComparison.Ordinal);
        Assert.Contains("Message-ID: <out-1@example.test>", report.GetProperty("headers").GetString(), StringComparison.Ordinal);

        await WaitUntilAsync(() => !Directory.EnumerateFiles(Path.Combine(server.DataDirectory, "queue"), "*.msg").Any(), "the queue did not empty");
        Assert.Contains("queue is empty", (await QueueAsync(server, "list")).Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_remote_sender_gets_its_bounce_through_the_smarthost_from_the_null_sender_and_a_bounce_never_bounces()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        await using SlimMailServer server = await StartAsync(Config(smarthost.Port));
        await SendAsync(server.SmtpPorts[0], "accept-sender@remote.test", "Subject: one\r\n\r\nx\r\n", "reject@remote.test");
        ScriptedSmarthost.Received bounce = await smarthost.WaitForAsync(m => m.Recipients.Contains("accept-sender@remote.test"));
        Assert.Equal("", bounce.Sender);
        JsonElement report = await ParseReportAsync(bounce.Data[bounce.Data.IndexOf("From:", StringComparison.Ordinal)..]);
        Assert.Equal("rfc822; reject@remote.test", report.GetProperty("recipients")[0].GetProperty("Final-Recipient").GetString());

        // The sender itself is refused: its bounce fails too, and nothing more is sent about it.
        await SendAsync(server.SmtpPorts[0], "reject-sender@remote.test", "Subject: two\r\n\r\nx\r\n", "reject@remote.test");
        await server.WaitForLogAsync("undeliverable bounce (null sender): dropped", TimeSpan.FromSeconds(30));
        await Task.Delay(1500);
        Assert.Equal(1, smarthost.RecipientAttempts.Count(a => a == "reject-sender@remote.test"));
        Assert.Single(smarthost.Messages);
    }

    [Fact]
    public async Task The_mx_listener_stays_closed_to_relaying_when_a_smarthost_is_configured()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        await using SlimMailServer server = await StartAsync(Config(smarthost.Port));
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1])); s.ehlo('spammer.test'); s.mail('x@spam.test')
            print(s.rcpt('accept@remote.test')); s.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, server.SmtpPorts[1].ToString(CultureInfo.InvariantCulture));
        // 554 5.7.1 "Relay access denied", as Postfix answers when a relay exists but the client may not use it.
        Assert.Contains("(554, b'5.7.1 Relay access denied')", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kill_9_after_a_partial_delivery_resumes_with_only_the_recipients_still_pending()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        string config = Config(smarthost.Port, retryDelays: "\"01:00:00\"");
        SlimMailServer server = await StartAsync(config);
        await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: half\r\n\r\nx\r\n", "accept@remote.test", "defer@remote.test");
        await smarthost.WaitForAsync(m => m.Recipients.Contains("accept@remote.test"));
        // The envelope file appears with the first state an attempt leaves behind (until then it is inside ID.msg).
        await WaitUntilAsync(() => Directory.GetFiles(Path.Combine(server.DataDirectory, "queue"), "*.env") is [string envelope]
            && File.ReadAllText(envelope).Contains("mailbox busy", StringComparison.Ordinal), "the deferral was not written to the envelope");

        ProcessResult list = await QueueAsync(server, "list");
        Assert.Matches(@"^[0-9A-F]{13}  \d+s  \d+ bytes  from <alice@example.test>", list.Stdout);
        Assert.Contains("<accept@remote.test> delivered", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("<defer@remote.test> pending, 1 attempt(s), next in ", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("451 4.2.0", list.Stdout, StringComparison.Ordinal);

        await server.KillAsync();
        await server.DisposeAsync();
        smarthost.Deferring = false;
        await using SlimMailServer restarted = await StartAsync(config);
        // The retry is an hour away; flush makes it now.
        ProcessResult flush = await QueueAsync(restarted, "flush");
        Assert.Equal(0, flush.ExitCode);
        await smarthost.WaitForAsync(m => m.Recipients.Contains("defer@remote.test"));
        await Task.Delay(500);
        Assert.Single(smarthost.To("accept@remote.test"));
        Assert.Single(smarthost.To("defer@remote.test"));
        Assert.Equal(["defer@remote.test"], smarthost.Messages.Last().Recipients);
    }

    [Fact]
    public async Task Kill_9_during_data_loses_nothing_and_the_message_is_sent_once_after_restart()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        var gate = new TaskCompletionSource();
        smarthost.CommitGate = gate;
        string config = Config(smarthost.Port);
        SlimMailServer server = await StartAsync(config);
        await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: crash\r\n\r\nsurvive me\r\n", "accept@remote.test");
        await smarthost.CommitStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await server.KillAsync();
        await server.DisposeAsync();
        smarthost.CommitGate = null;
        gate.SetResult();

        await using SlimMailServer restarted = await StartAsync(config);
        ScriptedSmarthost.Received received = await smarthost.WaitForAsync(m => m.Recipients.Contains("accept@remote.test"));
        Assert.Contains("survive me", received.Data, StringComparison.Ordinal);
        await WaitUntilAsync(() => !Directory.EnumerateFiles(Path.Combine(restarted.DataDirectory, "queue"), "*.msg").Any(), "the queue did not empty");
        Assert.Single(smarthost.Messages);
    }

    [Fact]
    public async Task A_message_past_max_queue_time_bounces_with_4_4_7_and_the_last_error()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        await using SlimMailServer server = await StartAsync(Config(smarthost.Port, maxQueueTime: "00:00:02"));
        await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: slow\r\n\r\nx\r\n", "defer@remote.test");
        await WaitUntilAsync(() => server.Messages("alice").Length == 1, "no expiry bounce reached alice");
        JsonElement report = await ParseReportAsync((await File.ReadAllTextAsync(server.Messages("alice")[0])).Replace("\n", "\r\n", StringComparison.Ordinal));
        JsonElement failed = report.GetProperty("recipients")[0];
        Assert.Equal("4.4.7", failed.GetProperty("Status").GetString());
        Assert.Contains("451 4.2.0", failed.GetProperty("Diagnostic-Code").GetString(), StringComparison.Ordinal);
        Assert.Empty(smarthost.Messages);
    }

    [Fact]
    public async Task Queue_list_json_and_delete_drive_the_queue_and_an_unknown_id_is_exit_1()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        await using SlimMailServer server = await StartAsync(Config(smarthost.Port, retryDelays: "\"01:00:00\""));
        await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: q\r\n\r\nx\r\n", "defer@remote.test");
        await WaitUntilAsync(() => smarthost.RecipientAttempts.Contains("defer@remote.test"), "no attempt");
        await Task.Delay(300);

        ProcessResult json = await QueueAsync(server, "list", "--json");
        Assert.True(json.ExitCode == 0, json.Output);
        JsonElement entry = Assert.Single(JsonDocument.Parse(json.Stdout).RootElement.EnumerateArray());
        string id = entry.GetProperty("id").GetString()!;
        Assert.Equal("alice@example.test", entry.GetProperty("sender").GetString());
        JsonElement recipient = Assert.Single(entry.GetProperty("recipients").EnumerateArray());
        Assert.Equal("Pending", recipient.GetProperty("state").GetString());
        Assert.Equal(1, recipient.GetProperty("attempts").GetInt32());

        Assert.Equal(1, (await QueueAsync(server, "delete", "NOSUCHID")).ExitCode);
        ProcessResult deleted = await QueueAsync(server, "delete", id);
        Assert.True(deleted.ExitCode == 0, deleted.Output);
        Assert.Contains("queue is empty", (await QueueAsync(server, "list")).Stdout, StringComparison.Ordinal);
        // A flush now has nothing to send: the deleted message is not resurrected.
        await QueueAsync(server, "flush");
        await Task.Delay(1000);
        Assert.Equal(1, smarthost.RecipientAttempts.Count(a => a == "defer@remote.test"));
        Assert.Empty(Directory.GetFiles(Path.Combine(server.DataDirectory, "queue"), "*.msg"));
    }

    [Fact]
    public async Task Mx_mode_resolves_each_domain_delivers_literals_directly_and_bounces_dns_dead_ends()
    {
        await using ScriptedSmarthost mx = await ScriptedSmarthost.StartAsync();
        await using var dns = new TestDnsServer();
        dns.AddMx("mx.test", 10, "mail.mx.test");
        dns.AddAddress("mail.mx.test", System.Net.IPAddress.Loopback);
        dns.NxDomain.Add("nx.test");
        dns.AddMx("nullmx.test", 0, ".");
        dns.ServFail.Add("servfail.test");
        string config = $$"""
            {
              "Hostname": "mx.example.test",
              "DataDirectory": "$DATA",
              "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Local" }, { "Endpoint": "127.0.0.1:0", "Role": "Mx" } ] },
              "Domains": { "example.test": { "Mailboxes": { "alice": "alice" } } },
              "Users": { "alice": {} },
              "Relay": { "Mode": "Mx", "DnsServers": [ "127.0.0.1:{{dns.Port}}" ], "MxPort": {{mx.Port}}, "RetryDelays": [ "01:00:00" ] }
            }
            """;
        await using SlimMailServer server = await StartAsync(config);
        string reply = await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: mx\r\n\r\nby dns\r\n",
            "accept@mx.test", "accept@[127.0.0.1]", "someone@nx.test", "someone@nullmx.test", "someone@servfail.test");
        Assert.Contains("[250, 250, 250, 250, 250] 250", reply, StringComparison.Ordinal);

        await mx.WaitForAsync(m => m.Recipients.Contains("accept@mx.test"));
        await mx.WaitForAsync(m => m.Recipients.Contains("accept@[127.0.0.1]"));
        await WaitUntilAsync(() => server.Messages("alice").Length == 1, "no bounce reached alice");
        JsonElement report = await ParseReportAsync((await File.ReadAllTextAsync(server.Messages("alice")[0])).Replace("\n", "\r\n", StringComparison.Ordinal));
        var statuses = report.GetProperty("recipients").EnumerateArray()
            .ToDictionary(r => r.GetProperty("Final-Recipient").GetString()!, r => r.GetProperty("Status").GetString());
        Assert.Equal(new Dictionary<string, string?> { ["rfc822; someone@nx.test"] = "5.1.2", ["rfc822; someone@nullmx.test"] = "5.1.10" }, statuses);

        // The DNS failure is temporary: that recipient waits in the queue with the reason.
        ProcessResult list = await QueueAsync(server, "list");
        Assert.Contains("<someone@servfail.test> pending, 1 attempt(s)", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("DNS server failure", list.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("nx.test> pending", list.Stdout, StringComparison.Ordinal);
    }

    private sealed class RelayUser : SlimMail.Auth.IAuthenticator
    {
        public ValueTask<SlimMail.Auth.AuthResult> AuthenticateAsync(string user, string password, CancellationToken cancellationToken) =>
            ValueTask.FromResult(user == "relay" && password == "relay-secret" ? SlimMail.Auth.AuthResult.Success(user) : SlimMail.Auth.AuthResult.Failure);
    }

    private string SmarthostCertificate(out System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=localhost", rsa,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        var names = new System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(created.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx), null);
        string pem = Path.Combine(_directory, "smarthost-ca.pem");
        File.WriteAllText(pem, created.ExportCertificatePem());
        return pem;
    }

    private static string SmarthostConfig(int port) => $$"""
        {
          "Hostname": "mx.example.test",
          "DataDirectory": "$DATA",
          "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Local" }, { "Endpoint": "127.0.0.1:0", "Role": "Mx" } ] },
          "Domains": { "example.test": { "Mailboxes": { "alice": "alice" } } },
          "Users": { "alice": {} },
          "Relay": { "Mode": "Smarthost", "Smarthost": "localhost:{{port}}", "Username": "relay", "Password": "relay-secret", "RetryDelays": [ "01:00:00" ] }
        }
        """;

    [Fact]
    public async Task The_smarthost_gets_starttls_verified_against_the_trust_store_then_auth()
    {
        string ca = SmarthostCertificate(out var certificate);
        using (certificate)
        {
            await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync(ListenerRole.Submission,
                () => new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = certificate }, new RelayUser());
            // SSL_CERT_FILE makes the test's CA the trust store of the slimmail process (OpenSSL's convention).
            await using SlimMailServer server = await SlimMailServer.StartAsync(SmarthostConfig(smarthost.Port), listeners: 2, directory: _directory,
                environment: new Dictionary<string, string> { ["SSL_CERT_FILE"] = ca });
            await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: tls\r\n\r\nx\r\n", "accept@remote.test");
            ScriptedSmarthost.Received received = await smarthost.WaitForAsync(m => m.Recipients.Contains("accept@remote.test"));
            Assert.Equal("relay", received.User);
            Assert.StartsWith("TLSv1.", received.Tls, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_smarthost_certificate_the_trust_store_does_not_vouch_for_defers_the_mail()
    {
        SmarthostCertificate(out var certificate);
        using (certificate)
        {
            await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync(ListenerRole.Submission,
                () => new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = certificate }, new RelayUser());
            await using SlimMailServer server = await StartAsync(SmarthostConfig(smarthost.Port));
            await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: tls\r\n\r\nx\r\n", "accept@remote.test");
            await WaitUntilAsync(() => QueueAsync(server, "list").Result.Stdout.Contains("pending, 1 attempt(s)", StringComparison.Ordinal), "no failed attempt");
            Assert.Empty(smarthost.Messages);
            string listed = (await QueueAsync(server, "list")).Stdout;
            Assert.True(listed.Contains("conversation with localhost", StringComparison.Ordinal), listed);
        }
    }

    [Fact]
    public async Task Cron_output_piped_into_sendmail_leaves_through_the_smarthost()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        await using SlimMailServer server = await StartAsync(Config(smarthost.Port));
        ProcessResult sendmail = await ProcessRunner.RunAsync("dotnet",
            [SlimMailServer.SlimMailDll, "sendmail", "--config", Path.Combine(server.Directory, "slimmail.json"), "-t", "-i", "-f", "root@example.test"],
            stdin: "To: accept-admin@remote.test\nSubject: Cron <root@host> run-parts /etc/cron.daily\n\n/etc/cron.daily/logrotate: done\n",
            environment: new Dictionary<string, string> { ["SLIMMAIL__Sendmail__Server"] = $"127.0.0.1:{server.SmtpPorts[0]}" });
        Assert.True(sendmail.ExitCode == 0, sendmail.Output);
        ScriptedSmarthost.Received received = await smarthost.WaitForAsync(m => m.Recipients.Contains("accept-admin@remote.test"));
        Assert.Equal("root@example.test", received.Sender);
        Assert.Contains("/etc/cron.daily/logrotate: done\r\n", received.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sender_is_warned_once_when_a_message_is_delayed_and_not_bounced_when_it_then_goes_through()
    {
        await using ScriptedSmarthost smarthost = await ScriptedSmarthost.StartAsync();
        string config = Config(smarthost.Port).Replace("\"MaxQueueTime\"", "\"DelayWarningTime\": \"00:00:01\", \"MaxQueueTime\"", StringComparison.Ordinal);
        await using SlimMailServer server = await StartAsync(config);
        await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: later\r\n\r\nx\r\n", "defer@remote.test");
        await WaitUntilAsync(() => server.Messages("alice").Length == 1, "no delay warning reached alice");
        await WaitUntilAsync(() => smarthost.RecipientAttempts.Count(a => a == "defer@remote.test") >= 4, "not retried");
        Assert.Single(server.Messages("alice"));
        JsonElement report = await ParseReportAsync((await File.ReadAllTextAsync(server.Messages("alice")[0])).Replace("\n", "\r\n", StringComparison.Ordinal));
        JsonElement delayed = Assert.Single(report.GetProperty("recipients").EnumerateArray());
        Assert.Equal("delayed", delayed.GetProperty("Action").GetString());
        Assert.Equal("4.2.0", delayed.GetProperty("Status").GetString());

        smarthost.Deferring = false;
        await smarthost.WaitForAsync(m => m.Recipients.Contains("defer@remote.test"));
        await Task.Delay(500);
        Assert.Single(server.Messages("alice"));
    }

    // A hand-written SMTP server in Python: the first connection is dropped in the middle of DATA, the
    // second takes the message and writes it to a file.
    private const string DroppingServer = """
        import socket, sys
        port, out = int(sys.argv[1]), sys.argv[2]
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(('127.0.0.1', port)); srv.listen(5)
        print('ready', flush=True)
        for attempt in (1, 2):
            c, _ = srv.accept(); f = c.makefile('rb')
            def say(line): c.sendall(line.encode() + b'\r\n')
            say('220 python.test ESMTP')
            data = b''
            while True:
                line = f.readline()
                if not line: break
                cmd = line.strip().upper()
                if cmd.startswith(b'EHLO') or cmd.startswith(b'HELO'): say('250 python.test')
                elif cmd.startswith(b'MAIL') or cmd.startswith(b'RCPT'): say('250 ok')
                elif cmd == b'DATA':
                    say('354 go')
                    if attempt == 1:
                        f.readline(); c.shutdown(socket.SHUT_RDWR); c.close(); break   # gone after one line of the message
                    while True:
                        l = f.readline()
                        if l == b'.\r\n': break
                        data += l
                    open(out, 'ab').write(b'--- message ---\r\n' + data)
                    say('250 stored')
                elif cmd == b'QUIT': say('221 bye'); c.close(); break
                else: say('500 what')
        """;

    [Fact]
    public async Task A_receiver_that_drops_the_connection_mid_data_gets_the_message_again_on_the_retry_and_only_once()
    {
        int port = TestPaths.FreePort();
        string output = Path.Combine(_directory, "received.txt");
        var info = new System.Diagnostics.ProcessStartInfo("python3") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in new[] { "-c", DroppingServer, port.ToString(CultureInfo.InvariantCulture), output })
        {
            info.ArgumentList.Add(argument);
        }

        using var receiver = System.Diagnostics.Process.Start(info)!;
        try
        {
            Assert.Equal("ready", await receiver.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)));
            await using SlimMailServer server = await StartAsync(Config(port));
            await SendAsync(server.SmtpPorts[0], "alice@example.test", "Subject: dropped\r\n\r\nline one\r\nline two\r\n", "bob@remote.test");
            await WaitUntilAsync(() => File.Exists(output), "the message never arrived");
            await WaitUntilAsync(() => !Directory.EnumerateFiles(Path.Combine(server.DataDirectory, "queue"), "*.msg").Any(), "the queue did not empty");
            string received = await File.ReadAllTextAsync(output);
            Assert.Equal(1, received.Split("--- message ---").Length - 1);
            Assert.Contains("line one\r\nline two\r\n", received, StringComparison.Ordinal);
            Assert.Contains("attempt=1: conversation with", string.Join("\n", server.Log), StringComparison.Ordinal);
        }
        finally
        {
            receiver.Kill();
            await receiver.WaitForExitAsync();
        }
    }

    // A receiver that numbers its connections and writes "N message SUBJECT" per message and "N quit" per QUIT;
    // with "drop" it answers each message's 250 and then says 421 and closes, as a server whose idle limit is short.
    private const string CountingServer = """
        import socket, sys, threading
        port, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(('127.0.0.1', port)); srv.listen(16)
        lock = threading.Lock()
        def log(line):
            with lock:
                open(out, 'a').write(line + '\n')
        def serve(c, n):
            f = c.makefile('rb')
            def say(line): c.sendall(line.encode() + b'\r\n')
            say('220 python.test ESMTP')
            while True:
                line = f.readline()
                if not line: break
                cmd = line.strip().upper()
                if cmd.startswith(b'EHLO'): say('250-python.test'); say('250 PIPELINING')
                elif cmd.startswith(b'MAIL') or cmd.startswith(b'RCPT') or cmd == b'RSET': say('250 ok')
                elif cmd == b'DATA':
                    say('354 go'); subject = ''
                    while True:
                        l = f.readline()
                        if l == b'.\r\n' or not l: break
                        if l.startswith(b'Subject: '): subject = l[9:].strip().decode()
                    log(f'{n} message {subject}'); say('250 stored')
                    if mode == 'drop': say('421 4.4.2 python.test idle timeout'); c.close(); return
                elif cmd == b'QUIT': log(f'{n} quit'); say('221 bye'); c.close(); return
                else: say('500 what')
        print('ready', flush=True)
        n = 0
        while True:
            c, _ = srv.accept(); n += 1
            threading.Thread(target=serve, args=(c, n), daemon=True).start()
        """;

    private static System.Diagnostics.Process StartCountingServer(int port, string output, string mode)
    {
        var info = new System.Diagnostics.ProcessStartInfo("python3") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in new[] { "-c", CountingServer, port.ToString(CultureInfo.InvariantCulture), output, mode })
        {
            info.ArgumentList.Add(argument);
        }

        return System.Diagnostics.Process.Start(info)!;
    }

    private static string[] Lines(string path) => File.Exists(path) ? File.ReadAllLines(path) : [];

    // Relays m1, m2, m3 one after another to the counting receiver in MODE, each awaited on connection CONNECTIONOF(i);
    // then CHECK gets the server and the receiver's lines. An hour between attempts: a deferred message would not arrive.
    private async Task RelayThreeMessagesAsync(string mode, Func<int, int> connectionOf, Func<SlimMailServer, string, Task> check)
    {
        int port = TestPaths.FreePort();
        string output = Path.Combine(_directory, "received.txt");
        using System.Diagnostics.Process receiver = StartCountingServer(port, output, mode);
        try
        {
            Assert.Equal("ready", await receiver.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)));
            await using SlimMailServer server = await StartAsync(Config(port, retryDelays: "\"01:00:00\""));
            for (int i = 1; i <= 3; i++)
            {
                await SendAsync(server.SmtpPorts[0], "alice@example.test", $"Subject: m{i}\r\n\r\nbody\r\n", "bob@remote.test");
                string expected = $"{connectionOf(i)} message m{i}";
                await WaitUntilAsync(() => Lines(output).Contains(expected), $"expected \"{expected}\", the receiver has: " + string.Join(" | ", Lines(output)));
            }

            await check(server, output);
        }
        finally
        {
            receiver.Kill();
            await receiver.WaitForExitAsync();
        }
    }

    [Fact]
    public Task Messages_to_the_same_smarthost_share_one_connection_which_is_closed_with_quit_once_idle() =>
        RelayThreeMessagesAsync("keep", _ => 1, async (_, output) =>
        {
            // Kept for ~2 s after the last message (Postfix's connection cache time limit), then QUIT.
            await WaitUntilAsync(() => Lines(output).Contains("1 quit"), "the idle connection was never closed with QUIT", seconds: 15);
            Assert.Equal(["1 message m1", "1 message m2", "1 message m3", "1 quit"], Lines(output));
        });

    [Fact]
    public Task A_kept_connection_the_receiver_closed_meanwhile_is_replaced_and_the_message_is_not_deferred() =>
        RelayThreeMessagesAsync("drop", i => i, async (server, _) =>
        {
            await WaitUntilAsync(() => !Directory.EnumerateFiles(Path.Combine(server.DataDirectory, "queue"), "*.msg").Any(), "the queue did not empty");
            Assert.DoesNotContain(server.Log, line => line.Contains("conversation with", StringComparison.Ordinal));
        });
}
