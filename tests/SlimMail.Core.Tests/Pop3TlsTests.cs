using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using SlimMail.Auth;
using SlimMail.Delivery;
using SlimMail.Pop3;
using SlimMail.Tests.Core.Harness;
using SlimMail.Transport;

namespace SlimMail.Tests.Core;

public sealed class Pop3TlsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-pop3tls-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Plaintext_pipelined_after_stls_is_discarded()
    {
        (string cert, string key) = TestCertificates.Write(_directory);
        var tls = new TlsCertificateProvider(cert, key);
        var mailbox = new MaildirMailbox(Path.Combine(_directory, "alice"));
        await using var server = new Pop3Server(new Pop3ServerOptions
        {
            Listeners = [new Pop3ListenerOptions(new IPEndPoint(IPAddress.Loopback, 0))],
            Tls = tls.GetOptions,
            Authenticator = new FakeAuthenticator(),
        }, new MaildirMailboxStore(_ => mailbox));
        await server.StartAsync();

        using var client = new TcpClient();
        await client.ConnectAsync(server.EndPoints[0]);
        NetworkStream plain = client.GetStream();
        await ReadLineAsync(plain);
        // The injected USER must not run inside the TLS session (RFC 2595 §4).
        await plain.WriteAsync("STLS\r\nUSER alice\r\n"u8.ToArray());
        Assert.StartsWith("+OK", await ReadLineAsync(plain));
        using var secure = new SslStream(plain);
        await secure.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        await secure.WriteAsync("PASS secret\r\n"u8.ToArray());
        Assert.StartsWith("-ERR", await ReadLineAsync(secure));
        await secure.WriteAsync("USER alice\r\nPASS secret\r\n"u8.ToArray());
        Assert.StartsWith("+OK", await ReadLineAsync(secure));
        Assert.StartsWith("+OK Logged in", await ReadLineAsync(secure));
    }

    private static async Task<string> ReadLineAsync(Stream stream)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (!line.ToString().EndsWith("\r\n", StringComparison.Ordinal) && await stream.ReadAsync(one) == 1)
        {
            line.Append((char)one[0]);
        }

        return line.ToString();
    }
}
