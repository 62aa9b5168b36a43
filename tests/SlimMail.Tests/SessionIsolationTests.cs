using System.Net.Sockets;
using System.Text;
using SlimMail.Auth;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>
/// Sessions run on the socket engine threads (inline socket completions); slow work must leave them, or every
/// other connection of that engine waits behind it.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class SessionIsolationTests
{
    // The real cost (600,000 rounds, a few hundred milliseconds of CPU each): that is what must not stall others.
    private static readonly string CarolHash = PasswordHasher.Hash("carol-secret");

    [Fact]
    public async Task Password_checks_in_progress_do_not_hold_up_other_connections()
    {
        const int logins = 4;
        string config = $$"""
            {
              "Hostname": "mx.example.test",
              "DataDirectory": "$DATA",
              "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Submission" } ] },
              "Domains": { "example.test": { "Mailboxes": { "carol": "carol" } } },
              "Users": { "carol": { "PasswordHash": "{{CarolHash}}" } }
            }
            """;
        await using SlimMailServer server = await SlimMailServer.StartAsync(config);

        var sessions = new List<LineClient>();
        for (int i = 0; i <= logins; i++)
        {
            var client = await LineClient.ConnectAsync(server.Port);
            Assert.StartsWith("220 ", await client.ReadLineAsync(), StringComparison.Ordinal);
            await client.SendAsync("HELO client.test");
            Assert.StartsWith("250 ", await client.ReadLineAsync(), StringComparison.Ordinal);
            sessions.Add(client);
        }

        LineClient bystander = sessions[logins];
        string credentials = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0carol\0carol-secret"));
        // Were the checks run on the socket engine threads (one per core), each would be busy for hundreds of
        // milliseconds per check, and the bystander's NOOP would be answered after at least one of them.
        foreach (LineClient client in sessions[..logins])
        {
            await client.SendAsync("AUTH PLAIN " + credentials);
        }

        await bystander.SendAsync("NOOP");
        Assert.StartsWith("250 ", await bystander.ReadLineAsync(), StringComparison.Ordinal);
        Assert.All(sessions[..logins], client => Assert.Equal(0, client.Available));

        foreach (LineClient client in sessions[..logins])
        {
            Assert.StartsWith("235 ", await client.ReadLineAsync(), StringComparison.Ordinal);
        }

        sessions.ForEach(client => client.Dispose());
    }

    private sealed class LineClient : IDisposable
    {
        private readonly TcpClient _tcp;
        private readonly StreamReader _reader;
        private readonly NetworkStream _stream;

        private LineClient(TcpClient tcp)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
            _reader = new StreamReader(_stream, Encoding.ASCII);
        }

        // Bytes the server sent that nobody has read yet (replies are read line by line, nothing is left buffered).
        public int Available => _tcp.Available;

        public static async Task<LineClient> ConnectAsync(int port)
        {
            var tcp = new TcpClient();
            await tcp.ConnectAsync("127.0.0.1", port);
            return new LineClient(tcp);
        }

        public async Task SendAsync(string line) => await _stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"));

        public async Task<string> ReadLineAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            return await _reader.ReadLineAsync(timeout.Token) ?? "";
        }

        public void Dispose()
        {
            _reader.Dispose();
            _tcp.Dispose();
        }
    }
}
