using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SlimMail.Delivery;
using SlimMail.Pop3;
using SlimMail.Tests.Core.Harness;

namespace SlimMail.Tests.Core;

public sealed class Pop3SessionThreadTests
{
    [Fact]
    public async Task A_session_runs_on_its_own_thread_and_comes_back_to_it_after_the_mailbox_opened_elsewhere()
    {
        var store = new ThreadRecordingStore();
        await using Pop3Server server = await StartAsync(store, sessionThreads: 64, TimeSpan.FromMinutes(10));

        await using var client = await Pop3TestClient.ConnectAsync(server.EndPoints[0]);
        await client.LoginAsync();
        Assert.Equal("+OK 5 octets", await client.CommandAsync("RETR 1"));
        Assert.Equal("hello", await client.ReadLineAsync());
        Assert.Equal(".", await client.ReadLineAsync());

        Assert.NotEqual("pop3 session", store.OpenedOn);
        Assert.Equal(["pop3 session"], store.ReadOn);
    }

    [Fact]
    public async Task Sessions_beyond_the_thread_limit_are_served_on_the_socket_engines()
    {
        var store = new ThreadRecordingStore();
        await using Pop3Server server = await StartAsync(store, sessionThreads: 1, TimeSpan.FromMinutes(10));

        await using var first = await Pop3TestClient.ConnectAsync(server.EndPoints[0]);
        await using var second = await Pop3TestClient.ConnectAsync(server.EndPoints[0]);
        foreach (Pop3TestClient client in new[] { first, second })
        {
            await client.LoginAsync();
            Assert.Equal("+OK 5 octets", await client.CommandAsync("RETR 1"));
            Assert.Equal("hello", await client.ReadLineAsync());
            Assert.Equal(".", await client.ReadLineAsync());
        }

        Assert.Equal(2, store.ReadOn.Count);
        Assert.Single(store.ReadOn, name => name == "pop3 session");
    }

    [Theory]
    [InlineData(64)]
    [InlineData(0)]
    public async Task An_idle_session_is_logged_out_with_a_reply(int sessionThreads)
    {
        await using Pop3Server server = await StartAsync(new ThreadRecordingStore(), sessionThreads, TimeSpan.FromMilliseconds(300));

        await using var client = await Pop3TestClient.ConnectAsync(server.EndPoints[0]);
        Assert.Equal("-ERR Autologout; idle for too long", await client.ReadLineAsync());
        Assert.Null(await client.ReadLineAsync());
    }

    [Theory]
    [InlineData(64)]
    [InlineData(0)]
    public async Task Stopping_the_server_ends_a_session_that_waits_for_a_command(int sessionThreads)
    {
        await using Pop3Server server = await StartAsync(new ThreadRecordingStore(), sessionThreads, TimeSpan.FromMinutes(10));
        await using var client = await Pop3TestClient.ConnectAsync(server.EndPoints[0]);
        await client.LoginAsync();

        Task stopped = server.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("-ERR [SYS/TEMP] Server shutting down", await client.ReadLineAsync());
        Assert.Null(await client.ReadLineAsync());
        await stopped.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static async Task<Pop3Server> StartAsync(IMailboxStore store, int sessionThreads, TimeSpan commandTimeout)
    {
        var server = new Pop3Server(new Pop3ServerOptions
        {
            Listeners = [new Pop3ListenerOptions(new IPEndPoint(IPAddress.Loopback, 0))],
            Authenticator = new FakeAuthenticator(),
            SessionThreads = sessionThreads,
            CommandTimeout = commandTimeout,
        }, store);
        await server.StartAsync();
        return server;
    }

    /// <summary>One mailbox of one message ("hello"); notes the thread that opened the mailbox and each that read a message.</summary>
    internal sealed class ThreadRecordingStore : IMailboxStore
    {
        public string? OpenedOn { get; private set; }

        public ConcurrentQueue<string?> ReadOn { get; } = new();

        public async ValueTask<IMailboxSession?> OpenAsync(string user, CancellationToken cancellationToken)
        {
            // As a real store's listing on a disk thread: the session continues elsewhere.
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            OpenedOn = Thread.CurrentThread.Name;
            return new Mailbox(this);
        }

        private sealed class Mailbox(ThreadRecordingStore store) : IMailboxSession
        {
            public IReadOnlyList<MailboxMessage> Messages { get; } = [new MailboxMessage("uid-1", 5)];

            public ValueTask<Stream> OpenReadAsync(int index, CancellationToken cancellationToken)
            {
                store.ReadOn.Enqueue(Thread.CurrentThread.Name);
                return ValueTask.FromResult<Stream>(new MemoryStream("hello"u8.ToArray()));
            }

            public ValueTask DeleteAsync(IReadOnlyCollection<int> indexes, CancellationToken cancellationToken) => ValueTask.CompletedTask;

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
