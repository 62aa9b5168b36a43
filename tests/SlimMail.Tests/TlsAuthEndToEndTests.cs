using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using SlimMail.Auth;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>TLS and AUTH through the real program with openssl, swaks, curl and Python's smtplib.</summary>
[Collection(ServerCollection.Name)]
public sealed class TlsAuthEndToEndTests : IAsyncLifetime
{
    private string _directory = "";
    private string _cert = "";
    private string _key = "";

    // Cheap hashes keep the tests fast; the format is the same as slimmail hash-password's.
    private static readonly string AliceHash = PasswordHasher.Hash("alice-secret", 1000);

    public Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("slimmail-tls-e2e-").FullName;
        _cert = Path.Combine(_directory, "cert.pem");
        _key = Path.Combine(_directory, "key.pem");
        using RSA rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using X509Certificate2 certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(_cert, certificate.ExportCertificatePem());
        File.WriteAllText(_key, rsa.ExportPkcs8PrivateKeyPem());
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    private string Config(string authentication = """{ "Type": "Users" }""") => $$"""
        {
          "Hostname": "mx.example.test",
          "DataDirectory": "$DATA",
          "Tls": { "CertificateFile": "{{_cert}}", "KeyFile": "{{_key}}" },
          "Smtp": {
            "Listeners": [
              { "Endpoint": "127.0.0.1:0", "Role": "Mx" },
              { "Endpoint": "127.0.0.1:0", "Role": "Submission" },
              { "Endpoint": "127.0.0.1:0", "Role": "Submission", "ImplicitTls": true }
            ]
          },
          "Pop3": { "Listeners": [ { "Endpoint": "127.0.0.1:0" }, { "Endpoint": "127.0.0.1:0", "ImplicitTls": true } ] },
          "Domains": { "example.test": { "Mailboxes": { "alice": "alice", "bob": "bob" } } },
          "Users": { "alice": { "PasswordHash": "{{AliceHash}}" }, "bob": {} },
          "Authentication": {{authentication}}
        }
        """;

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Openssl_s_client_negotiates_starttls_with_tls_1_2_or_1_3()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(), listeners: 3, pop3Listeners: 2);
        ProcessResult result = await ProcessRunner.RunAsync("openssl",
            ["s_client", "-starttls", "smtp", "-connect", $"127.0.0.1:{server.SmtpPorts[0]}", "-servername", "localhost", "-brief", "-ign_eof"],
            stdin: "EHLO openssl.test\r\nQUIT\r\n");
        Assert.Matches(@"Protocol version: TLSv1\.[23]", result.Output);
        Assert.Contains("250-AUTH PLAIN LOGIN", result.Output);

        ProcessResult old = await ProcessRunner.RunAsync("openssl",
            ["s_client", "-starttls", "smtp", "-connect", $"127.0.0.1:{server.SmtpPorts[0]}", "-tls1_1", "-brief"], stdin: "QUIT\r\n");
        Assert.DoesNotContain("Protocol version: TLSv1.1", old.Output);
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    public async Task Swaks_submits_with_starttls_and_auth(string mechanism)
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(), listeners: 3, pop3Listeners: 2);
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", P(server.SmtpPorts[1]), "--tls", "--auth", mechanism, "--auth-user", "alice",
             "--auth-password", "alice-secret", "--from", "alice@example.test", "--to", "bob@example.test"]);
        Assert.True(swaks.ExitCode == 0, swaks.Output);
        Assert.Contains("235 2.7.0", swaks.Stdout);
        string stored = await File.ReadAllTextAsync(Assert.Single(server.Messages("bob")));
        Assert.Contains("with ESMTPSA id", stored);
        Assert.DoesNotContain(server.Log, l => l.Contains("alice-secret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Swaks_submits_over_implicit_tls()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(), listeners: 3, pop3Listeners: 2);
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", P(server.SmtpPorts[2]), "--tlsc", "--auth", "PLAIN", "--auth-user", "alice",
             "--auth-password", "alice-secret", "--from", "alice@example.test", "--to", "bob@example.test"]);
        Assert.True(swaks.ExitCode == 0, swaks.Output);
        Assert.Single(server.Messages("bob"));
    }

    [Fact]
    public async Task Python_smtplib_starttls_login_and_send()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(), listeners: 3, pop3Listeners: 2);
        const string script = """
            import smtplib, ssl, sys
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            s.starttls(context=ctx)
            s.login('alice', 'alice-secret')
            s.sendmail('alice@example.test', ['bob@example.test'], b'Subject: py\r\n\r\nhi\r\n')
            try:
                s.sendmail('ceo@example.test', ['bob@example.test'], b'Subject: forged\r\n\r\nhi\r\n')
            except smtplib.SMTPSenderRefused as e:
                print('refused', e.smtp_code, e.smtp_error.decode())
            s.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, P(server.SmtpPorts[1]));
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("refused 553 5.7.1", result.Stdout);
        Assert.Single(server.Messages("bob"));
    }

    [Fact]
    public async Task Curl_submits_over_smtps_with_credentials()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(), listeners: 3, pop3Listeners: 2);
        string mail = Path.Combine(server.Directory, "m.eml");
        await File.WriteAllTextAsync(mail, "Subject: curl\r\n\r\nover smtps\r\n");
        ProcessResult curl = await ProcessRunner.RunAsync("curl",
            ["-sS", "-k", $"smtps://127.0.0.1:{server.SmtpPorts[2]}", "--user", "alice:alice-secret", "--mail-from", "alice@example.test",
             "--mail-rcpt", "bob@example.test", "-T", mail]);
        Assert.True(curl.ExitCode == 0, curl.Output);
        Assert.EndsWith("Subject: curl\n\nover smtps\n", await File.ReadAllTextAsync(Assert.Single(server.Messages("bob"))));
    }

    [Fact]
    public async Task Wrong_passwords_get_535_and_then_454_and_never_reach_the_log()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(), listeners: 3, pop3Listeners: 2);
        const string script = """
            import smtplib, sys
            codes = []
            for i in range(6):
                s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
                s.ehlo()
                try:
                    # One mechanism per attempt (login() would try PLAIN, then LOGIN).
                    s.user, s.password = 'alice', 'guess-%d' % i
                    s.auth('PLAIN', s.auth_plain)
                except smtplib.SMTPAuthenticationError as e:
                    codes.append(e.smtp_code)
                except smtplib.SMTPException as e:
                    codes.append(str(e))
                s.close()
            print(codes)
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, P(server.SmtpPorts[1]));
        Assert.Contains("[535, 535, 535, 535, 535, 454]", result.Stdout);
        Assert.Contains(server.Log, l => l.Contains("authentication failed from 127.0.0.1", StringComparison.Ordinal));
        Assert.DoesNotContain(server.Log, l => l.Contains("guess-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task External_authentication_gets_credentials_on_stdin_only()
    {
        string script = Path.Combine(_directory, "check-auth.sh");
        string seen = Path.Combine(_directory, "seen");
        await File.WriteAllTextAsync(script, $$"""
            #!/bin/sh
            read -r user
            read -r password
            { echo "argv: $0 $*"; env; } > {{seen}}
            [ "$user" = "carol@example.test" ] && [ "$password" = "carol pass" ] && exit 0
            [ "$user" = "slow" ] && sleep 30
            [ "$user" = "broken" ] && exit 3
            exit 1
            """);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string auth = $$"""{ "Type": "External", "Command": "{{script}} --mode smtp", "Timeout": "00:00:02" }""";
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(auth), listeners: 3, pop3Listeners: 2);
        const string client = """
            import smtplib, sys
            for user, password in [('carol@example.test', 'carol pass'), ('carol@example.test', 'nope'), ('broken', 'x'), ('slow', 'x')]:
                s = smtplib.SMTP('127.0.0.1', int(sys.argv[1])); s.ehlo()
                try:
                    s.login(user, password); print(user, 235)
                except smtplib.SMTPAuthenticationError as e:
                    print(user, e.smtp_code)
                s.close()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(client, P(server.SmtpPorts[1]));
        Assert.Contains("carol@example.test 235", result.Stdout);
        Assert.Contains("carol@example.test 535", result.Stdout);
        Assert.Contains("broken 454", result.Stdout);
        Assert.Contains("slow 454", result.Stdout);
        string environment = await File.ReadAllTextAsync(seen);
        Assert.Contains("--mode smtp", environment);
        Assert.DoesNotContain("carol pass", environment);
        Assert.DoesNotContain("nope", environment);
    }

    [Fact]
    public async Task Pop3_over_stls_with_poplib_and_over_pop3s_with_curl()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(), listeners: 3, pop3Listeners: 2);
        ProcessResult send = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", P(server.SmtpPorts[0]), "--from", "x@remote.test", "--to", "alice@example.test", "--body", "for pop3s"]);
        Assert.True(send.ExitCode == 0, send.Output);
        const string script = """
            import poplib, ssl, sys
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
            print('before', sorted(p.capa().keys()))
            p.stls(context=ctx)
            print('after', sorted(p.capa().keys()))
            p.user('alice'); p.pass_('alice-secret')
            print('stat', p.stat()[0]); p.quit()
            """;
        ProcessResult pop = await ProcessRunner.PythonAsync(script, P(server.Pop3Ports[0]));
        Assert.True(pop.ExitCode == 0, pop.Output);
        Assert.Contains("'STLS'", pop.Stdout.Split('\n')[0]);
        Assert.DoesNotContain("'STLS'", pop.Stdout.Split('\n')[1]);
        Assert.Contains("stat 1", pop.Stdout);

        ProcessResult curl = await ProcessRunner.RunAsync("curl", ["-sS", "-k", $"pop3s://127.0.0.1:{server.Pop3Ports[1]}/1", "--user", "alice:alice-secret"]);
        Assert.True(curl.ExitCode == 0, curl.Output);
        Assert.Contains("for pop3s", curl.Stdout);
    }

    [Fact]
    public async Task Check_config_refuses_implicit_tls_and_off_loopback_submission_without_a_certificate()
    {
        string path = Path.Combine(_directory, "bad.json");
        await File.WriteAllTextAsync(path, """
            { "Smtp": { "Listeners": [
                { "Endpoint": "0.0.0.0:587", "Role": "Submission" },
                { "Endpoint": "0.0.0.0:465", "Role": "Submission", "ImplicitTls": true } ] } }
            """);
        ProcessResult result = await ProcessRunner.RunAsync("dotnet", [SlimMailServer.SlimMailDll, "check-config", "--config", path]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("error: Smtp:Listeners:0:Role:", result.Stdout);
        Assert.Contains("error: Smtp:Listeners:1:ImplicitTls:", result.Stdout);
    }
}
