using System.Globalization;
using System.Net.Sockets;
using System.Text;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>
/// systemd integration: the sd_notify datagrams the real program sends to a socket of the test's own (as
/// systemd's NOTIFY_SOCKET would be), and the shipped unit checked by <c>systemd-analyze verify</c>.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class SystemdTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-systemd-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

        public NotifySocket(string address)
        {
            _socket.Bind(new UnixDomainSocketEndPoint(address.StartsWith('@') ? "\0" + address[1..] : address));
            Address = address;
        }

        public string Address { get; }

        // The next datagram that contains <paramref name="fragment"/>; the others are skipped.
        public async Task<string> WaitForAsync(string fragment)
        {
            byte[] buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (true)
            {
                int length = await _socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                string message = Encoding.UTF8.GetString(buffer, 0, length);
                if (message.Contains(fragment, StringComparison.Ordinal))
                {
                    return message;
                }
            }
        }

        public void Dispose() => _socket.Dispose();
    }

    [Fact]
    public async Task Ready_reloading_and_stopping_are_sent_over_the_notify_socket()
    {
        using var notify = new NotifySocket(Path.Combine(_directory, "notify"));
        await using SlimMailServer server = await SlimMailServer.StartAsync(ServeEndToEndTests.Config,
            environment: new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Address });

        string ready = await notify.WaitForAsync("READY=1");
        Assert.Contains($"STATUS=listening: SMTP 127.0.0.1:{server.Port} (Mx)", ready, StringComparison.Ordinal);
        Assert.Contains("MAINPID=" + server.ProcessId.ToString(CultureInfo.InvariantCulture), ready, StringComparison.Ordinal);

        string pid = server.ProcessId.ToString(CultureInfo.InvariantCulture);
        await ProcessRunner.RunAsync("kill", ["-HUP", pid]);
        string reloading = await notify.WaitForAsync("RELOADING=1");
        Assert.Matches(@"MONOTONIC_USEC=\d+", reloading);
        Assert.Contains("STATUS=configuration reloaded: 3 users, 2 domains", await notify.WaitForAsync("READY=1"), StringComparison.Ordinal);

        // A broken file: still READY (the old configuration serves), and the status says so.
        await File.WriteAllTextAsync(Path.Combine(server.Directory, "slimmail.json"), "{ \"Smtp\": ");
        await ProcessRunner.RunAsync("kill", ["-HUP", pid]);
        await notify.WaitForAsync("RELOADING=1");
        Assert.Contains("reload failed; the previous configuration stays in force", await notify.WaitForAsync("READY=1"), StringComparison.Ordinal);

        await server.TerminateAsync();
        Assert.Contains("STATUS=draining", await notify.WaitForAsync("STOPPING=1"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_abstract_notify_socket_and_the_watchdog_are_served()
    {
        using var notify = new NotifySocket("@slimmail-test-" + Guid.NewGuid().ToString("N"));
        await using SlimMailServer server = await SlimMailServer.StartAsync(ServeEndToEndTests.Config,
            environment: new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Address, ["WATCHDOG_USEC"] = "400000" });
        await notify.WaitForAsync("READY=1");
        await notify.WaitForAsync("WATCHDOG=1");
        await notify.WaitForAsync("WATCHDOG=1");
    }

    [Fact]
    public async Task The_shipped_unit_passes_systemd_analyze_verify()
    {
        string unit = await File.ReadAllTextAsync(Path.Combine(TestPaths.Repository, "deploy", "slimmail.service"));
        Assert.Contains("Type=notify", unit, StringComparison.Ordinal);
        Assert.Contains("AmbientCapabilities=CAP_NET_BIND_SERVICE", unit, StringComparison.Ordinal);
        Assert.Contains("User=slimmail", unit, StringComparison.Ordinal);
        // verify insists that ExecStart's program exists; the test machine has no installed slimmail.
        string copy = Path.Combine(_directory, "slimmail.service");
        await File.WriteAllTextAsync(copy, unit.Replace("/usr/local/bin/slimmail", "/bin/true", StringComparison.Ordinal));
        ProcessResult verify = await ProcessRunner.RunAsync("systemd-analyze", ["verify", copy]);
        Assert.True(verify.ExitCode == 0, verify.Output);
        Assert.DoesNotContain("slimmail.service:", verify.Output, StringComparison.Ordinal);
    }

}
