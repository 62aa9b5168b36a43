using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;
using SlimMail.Transport;

namespace SlimMail.Tests.Core;

public class ProxyProtocolTests
{
    private static byte[] V2(byte command, byte family, byte[] addresses)
    {
        byte[] header = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, (byte)(0x20 | command), family, (byte)(addresses.Length >> 8), (byte)addresses.Length];
        return [.. header, .. addresses];
    }

    private static readonly byte[] V2Tcp4 = V2(1, 0x11, [203, 0, 113, 9, 192, 0, 2, 1, 0xDB, 0x04, 0, 25]);

    public static TheoryData<string, byte[], string?> Headers => new()
    {
        { "v1 TCP4", Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.9 192.0.2.1 56068 25\r\n"), "203.0.113.9:56068" },
        { "v1 TCP6", Encoding.ASCII.GetBytes("PROXY TCP6 2001:db8::9 2001:db8::1 4000 25\r\n"), "[2001:db8::9]:4000" },
        { "v1 UNKNOWN", Encoding.ASCII.GetBytes("PROXY UNKNOWN\r\n"), null },
        { "v2 TCP4", V2Tcp4, "203.0.113.9:56068" },
        { "v2 LOCAL", V2(0, 0x00, []), null },
    };

    [Theory]
    [MemberData(nameof(Headers))]
    public void Valid_headers_give_the_client_address(string name, byte[] header, string? client)
    {
        _ = name;
        byte[] wire = [.. header, .. "EHLO x\r\n"u8.ToArray()];
        Assert.Equal(ProxyProtocol.ParseStatus.Done, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(wire), out IPEndPoint? endPoint, out long consumed));
        Assert.Equal(header.Length, consumed);
        Assert.Equal(client, endPoint?.ToString());
        for (int split = 0; split < header.Length; split++)
        {
            Assert.Equal(ProxyProtocol.ParseStatus.NeedMore, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(header[..split]), out _, out _));
        }
    }

    [Theory]
    [InlineData("EHLO client.test\r\n")]
    [InlineData("PROXY TCP4 203.0.113.9 192.0.2.1 56068\r\n")]
    [InlineData("PROXY TCP4 2001:db8::9 192.0.2.1 1 25\r\n")]
    [InlineData("PROXY TCP4 203.0.113.9 192.0.2.1 99999 25\r\n")]
    [InlineData("PROXY TCP4 203.0.113.9 192.0.2.1 1 25\n")]
    [InlineData("PROXY UDP4 203.0.113.9 192.0.2.1 1 25\r\n")]
    public void Malformed_or_missing_headers_are_invalid(string text)
    {
        Assert.Equal(ProxyProtocol.ParseStatus.Invalid, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(text)), out _, out _));
    }

    [Fact]
    public void An_endless_v1_line_is_invalid_after_107_bytes()
    {
        byte[] wire = Encoding.ASCII.GetBytes("PROXY TCP4 " + new string('1', 200));
        Assert.Equal(ProxyProtocol.ParseStatus.Invalid, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(wire), out _, out _));
    }

    private static async Task<(SmtpServer, MemoryMessageHandler)> StartAsync(IReadOnlyList<IPNetwork>? trusted = null)
    {
        var handler = new MemoryMessageHandler();
        var listener = new SmtpListenerOptions(new IPEndPoint(IPAddress.Loopback, 0), ListenerRole.Mx) { ProxyProtocol = true };
        if (trusted is not null)
        {
            listener = new SmtpListenerOptions(listener.EndPoint, listener.Role) { ProxyProtocol = true, ProxyTrustedNetworks = trusted };
        }

        var server = new SmtpServer(new SmtpServerOptions { Hostname = "mx.test", Listeners = [listener], CommandTimeout = TimeSpan.FromSeconds(2) }, handler);
        await server.StartAsync();
        return (server, handler);
    }

    private static async Task<string> ExchangeAsync(SmtpServer server, byte[] first, string rest)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(server.EndPoints[0]);
        NetworkStream stream = client.GetStream();
        try
        {
            await stream.WriteAsync(first);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(rest));
            using var reader = new StreamReader(stream, Encoding.ASCII);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            return await reader.ReadToEndAsync(timeout.Token);
        }
        catch (IOException)
        {
            // The server closed the connection before (or while) we wrote: nothing was answered.
            return "";
        }
    }

    [Fact]
    public async Task The_proxied_client_address_is_used_in_the_received_header()
    {
        (SmtpServer server, MemoryMessageHandler handler) = await StartAsync();
        await using (server)
        {
            string replies = await ExchangeAsync(server, V2Tcp4, "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");
            Assert.Contains("221 2.0.0", replies);
            Assert.Contains("from c.test ([203.0.113.9])", Assert.Single(handler.Messages).Text);
        }
    }

    [Fact]
    public async Task A_missing_header_closes_the_connection_without_a_greeting()
    {
        (SmtpServer server, MemoryMessageHandler handler) = await StartAsync();
        await using (server)
        {
            Assert.Equal("", await ExchangeAsync(server, "EHLO c.test\r\n"u8.ToArray(), "MAIL FROM:<a@b.test>\r\n"));
            Assert.Empty(handler.Messages);
        }
    }

    [Fact]
    public async Task A_header_from_an_untrusted_address_closes_the_connection()
    {
        (SmtpServer server, _) = await StartAsync([IPNetwork.Parse("10.0.0.0/8")]);
        await using (server)
        {
            Assert.Equal("", await ExchangeAsync(server, V2Tcp4, "EHLO c.test\r\n"));
        }
    }
}
