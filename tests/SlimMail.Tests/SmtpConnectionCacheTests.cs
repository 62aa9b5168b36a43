using System.Net;
using SlimMail.Relay;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

public sealed class SmtpConnectionCacheTests
{
    private static async Task<SmtpClientConnection> OpenAsync(ScriptedSmarthost receiver)
    {
        SmtpClientConnection connection = await SmtpClientConnection.ConnectAsync("127.0.0.1", receiver.Port, TimeSpan.FromSeconds(10));
        await connection.HelloAsync("client.test");
        return connection;
    }

    [Fact]
    public async Task Kept_connections_are_capped_per_host_and_in_all_and_a_taken_one_carries_a_transaction()
    {
        await using ScriptedSmarthost receiver = await ScriptedSmarthost.StartAsync();
        await using var cache = new SmtpConnectionCache(maxIdlePerHost: 1, maxIdle: 2);
        var a = new RemoteHost("a.test", IPAddress.Loopback, receiver.Port);
        var b = new RemoteHost("b.test", IPAddress.Loopback, receiver.Port);
        var c = new RemoteHost("c.test", IPAddress.Loopback, receiver.Port);

        await cache.ReturnAsync(a, await OpenAsync(receiver));
        await cache.ReturnAsync(a, await OpenAsync(receiver)); // over the per-host cap: closed
        await cache.ReturnAsync(b, await OpenAsync(receiver));
        await cache.ReturnAsync(c, await OpenAsync(receiver)); // over the total cap: closed
        Assert.Equal(2, cache.IdleCount);
        Assert.Null(cache.TryTake(c));

        SmtpClientConnection? kept = cache.TryTake(a);
        Assert.NotNull(kept);
        Assert.Equal(1, cache.IdleCount);
        await using (kept)
        {
            await kept.MailAsync("sender@client.test", 0, smtpUtf8: false);
            IReadOnlyList<SmtpClientReply> replies = await kept.RecipientsAsync(["accept@remote.test"]);
            Assert.Equal(250, replies[0].Code);
            Assert.Equal(250, (await kept.DataAsync("Subject: kept\r\n\r\nbody\r\n"u8.ToArray())).Code);
        }

        Assert.Contains(receiver.Messages, m => m.Data.Contains("Subject: kept", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_kept_connection_the_server_closed_is_not_handed_out()
    {
        var receiver = await ScriptedSmarthost.StartAsync();
        await using var cache = new SmtpConnectionCache(maxIdlePerHost: 4, maxIdle: 4);
        var host = new RemoteHost("a.test", IPAddress.Loopback, receiver.Port);
        await cache.ReturnAsync(host, await OpenAsync(receiver));
        await receiver.DisposeAsync(); // the server goes away: its sessions are closed
        SmtpClientConnection? taken = null;
        for (int i = 0; i < 100 && (taken = cache.TryTake(host)) is not null; i++)
        {
            // Until the close has reached this side, the connection still looks open: put it back and wait.
            await cache.ReturnAsync(host, taken);
            await Task.Delay(50);
        }

        Assert.Null(taken);
        Assert.Equal(0, cache.IdleCount);
    }
}
