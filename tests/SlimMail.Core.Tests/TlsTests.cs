using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;
using SlimMail.Transport;

namespace SlimMail.Tests.Core;

/// <summary>STARTTLS and implicit TLS over real sockets.</summary>
public sealed class TlsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-tls-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private async Task<(SmtpServer Server, MemoryMessageHandler Handler, TlsCertificateProvider Tls)> StartAsync(bool implicitTls = false, bool ecdsa = false)
    {
        (string cert, string key) = TestCertificates.Write(_directory, ecdsa: ecdsa);
        var tls = new TlsCertificateProvider(cert, key);
        var handler = new MemoryMessageHandler();
        var server = new SmtpServer(new SmtpServerOptions
        {
            Hostname = "mx.test",
            Listeners = [new SmtpListenerOptions(new IPEndPoint(IPAddress.Loopback, 0), ListenerRole.Mx) { ImplicitTls = implicitTls }],
            Tls = tls.GetOptions,
            Authenticator = new FakeAuthenticator(),
        }, handler);
        await server.StartAsync();
        return (server, handler, tls);
    }

    private static async Task<string> ReadReplyAsync(Stream stream)
    {
        var text = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one) == 0)
            {
                return text.ToString();
            }

            text.Append((char)one[0]);
            string s = text.ToString();
            if (s.Length >= 6 && s.EndsWith("\r\n", StringComparison.Ordinal))
            {
                int lineStart = s.LastIndexOf('\n', s.Length - 3) + 1;
                if (s[lineStart + 3] == ' ')
                {
                    return s;
                }
            }
        }
    }

    private static async Task<string> CommandAsync(Stream stream, string line)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"));
        return await ReadReplyAsync(stream);
    }

    private static SslClientAuthenticationOptions ClientOptions => new()
    {
        TargetHost = "localhost",
        RemoteCertificateValidationCallback = (_, _, _, _) => true,
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Starttls_upgrades_and_the_session_starts_over(bool ecdsa)
    {
        (SmtpServer server, MemoryMessageHandler handler, _) = await StartAsync(ecdsa: ecdsa);
        await using (server)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(server.EndPoints[0]);
            Stream plain = client.GetStream();
            await ReadReplyAsync(plain);
            Assert.Contains("250-STARTTLS", await CommandAsync(plain, "EHLO c.test"));
            Assert.StartsWith("220 2.0.0", await CommandAsync(plain, "STARTTLS"));
            using var tls = new SslStream(plain);
            await tls.AuthenticateAsClientAsync(ClientOptions);
            Assert.True(tls.SslProtocol is SslProtocols.Tls12 or SslProtocols.Tls13);
            Assert.StartsWith("503 5.5.1", await CommandAsync(tls, "MAIL FROM:<a@b.test>"));
            string ehlo = await CommandAsync(tls, "EHLO c.test");
            Assert.DoesNotContain("STARTTLS", ehlo);
            Assert.Contains("AUTH PLAIN LOGIN", ehlo);
            await CommandAsync(tls, "MAIL FROM:<a@b.test>");
            await CommandAsync(tls, "RCPT TO:<x@y.test>");
            await CommandAsync(tls, "DATA");
            Assert.StartsWith("250", await CommandAsync(tls, "hi\r\n."));
            string received = Assert.Single(handler.Messages).Text;
            Assert.Contains("with ESMTPS id", received);
            Assert.Matches(@"\(TLSv1\.[23] with cipher \w+\)", received);
        }
    }

    [Fact]
    public async Task Plaintext_pipelined_after_starttls_is_discarded()
    {
        (SmtpServer server, MemoryMessageHandler handler, _) = await StartAsync();
        await using (server)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(server.EndPoints[0]);
            Stream plain = client.GetStream();
            await ReadReplyAsync(plain);
            await CommandAsync(plain, "EHLO c.test");
            // CVE-2011-0411: the injected commands must not run inside the TLS session.
            await plain.WriteAsync("STARTTLS\r\nMAIL FROM:<evil@b.test>\r\nRCPT TO:<x@y.test>\r\n"u8.ToArray());
            Assert.StartsWith("220", await ReadReplyAsync(plain));
            using var tls = new SslStream(plain);
            await tls.AuthenticateAsClientAsync(ClientOptions);
            Assert.StartsWith("250-mx.test", await CommandAsync(tls, "EHLO c.test"));
            Assert.StartsWith("503 5.5.1", await CommandAsync(tls, "RCPT TO:<x@y.test>"));
            Assert.StartsWith("250 2.1.0", await CommandAsync(tls, "MAIL FROM:<good@b.test>"));
        }
    }

    [Fact]
    public async Task Implicit_tls_starts_at_connect()
    {
        (SmtpServer server, _, _) = await StartAsync(implicitTls: true);
        await using (server)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(server.EndPoints[0]);
            using var tls = new SslStream(client.GetStream());
            await tls.AuthenticateAsClientAsync(ClientOptions);
            Assert.StartsWith("220 mx.test", await ReadReplyAsync(tls));
            string ehlo = await CommandAsync(tls, "EHLO c.test");
            Assert.DoesNotContain("STARTTLS", ehlo);
            Assert.StartsWith("503 5.5.1", await CommandAsync(tls, "STARTTLS"));
        }
    }

    [Fact]
    public async Task Tls_1_1_is_refused()
    {
        (SmtpServer server, _, _) = await StartAsync(implicitTls: true);
        await using (server)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(server.EndPoints[0]);
            using var tls = new SslStream(client.GetStream());
            var options = ClientOptions;
#pragma warning disable SYSLIB0039 // testing that the obsolete protocol is refused
            options.EnabledSslProtocols = SslProtocols.Tls11;
#pragma warning restore SYSLIB0039
            await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(options));
        }
    }

    [Fact]
    public async Task A_renewed_certificate_is_used_for_new_sessions_without_a_restart()
    {
        (SmtpServer server, _, TlsCertificateProvider provider) = await StartAsync(implicitTls: true);
        await using (server)
        {
            string before = provider.Certificate.Thumbprint;
            await Task.Delay(1100);
            TestCertificates.Write(_directory, commonName: "renewed.test");
            File.SetLastWriteTimeUtc(Path.Combine(_directory, "cert.pem"), DateTime.UtcNow.AddSeconds(1));
            await Task.Delay(1100);
            using var client = new TcpClient();
            await client.ConnectAsync(server.EndPoints[0]);
            using var tls = new SslStream(client.GetStream());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "renewed.test", RemoteCertificateValidationCallback = (_, _, _, _) => true });
            Assert.Contains("CN=renewed.test", tls.RemoteCertificate!.Subject);
            Assert.NotEqual(before, provider.Certificate.Thumbprint);
        }
    }
}
