using System.Globalization;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

[Collection(ServerCollection.Name)]
public sealed class MetricsTests
{
    [Fact]
    public async Task Metrics_endpoint_serves_prometheus_counters_and_healthz()
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }

        string config = ServeEndToEndTests.Config.Replace("\"Hostname\"", $"\"Metrics\": {{ \"Endpoint\": \"127.0.0.1:{port}\" }}, \"Hostname\"", StringComparison.Ordinal);
        await using SlimMailServer server = await SlimMailServer.StartAsync(config);
        await server.WaitForLogAsync("metrics on");
        ProcessResult sent = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--from", "a@remote.test", "--to", "alice@example.test", "--body", "counted"]);
        Assert.Equal(0, sent.ExitCode);
        await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--from", "a@remote.test", "--to", "alice@example.test", "--body", new string('x', 30_000_000 / 1000)]);

        ProcessResult health = await ProcessRunner.RunAsync("curl", ["-sS", $"http://127.0.0.1:{port}/healthz"]);
        Assert.Equal("ok", health.Stdout);
        ProcessResult metrics = await ProcessRunner.RunAsync("curl", ["-sS", $"http://127.0.0.1:{port}/metrics"]);
        Assert.Contains("# TYPE slimmail_connections_total counter", metrics.Stdout);
        Assert.Matches(@"slimmail_connections_total\{protocol=""smtp""\} [2-9]", metrics.Stdout);
        Assert.Contains("slimmail_messages_accepted_total 2", metrics.Stdout);
        Assert.Matches(@"slimmail_received_bytes_total \d{3,}", metrics.Stdout);
        Assert.Contains("slimmail_deliveries_total{outcome=\"delivered\",type=\"maildir\"} 2", metrics.Stdout);
        Assert.Contains("slimmail_queue_messages 0", metrics.Stdout);
    }
}
