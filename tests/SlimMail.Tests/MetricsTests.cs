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
        Assert.Contains("slimmail_sessions_total{protocol=\"smtp\",role=\"Mx\"}", metrics.Stdout);
        Assert.Contains("# TYPE slimmail_delivery_duration_seconds histogram", metrics.Stdout);
        Assert.Contains("slimmail_delivery_duration_seconds_count{type=\"maildir\"} 2", metrics.Stdout);
        Assert.Contains("slimmail_delivery_duration_seconds_bucket{type=\"maildir\",le=\"+Inf\"} 2", metrics.Stdout);

        // Under a load of 3 clients × 25 messages (the configuration allows 3 per address) and some failed logins, the numbers move by exactly that much.
        const string load = """
            import smtplib, sys, threading
            port = int(sys.argv[1])
            def client():
                s = smtplib.SMTP('127.0.0.1', port)
                for i in range(25):
                    s.sendmail('load@remote.test', ['alice@example.test'], b'Subject: load\r\n\r\nx\r\n')
                s.quit()
            threads = [threading.Thread(target=client) for _ in range(3)]
            [t.start() for t in threads]; [t.join() for t in threads]
            s = smtplib.SMTP('127.0.0.1', port); s.ehlo('x')
            for _ in range(3):
                try: s.login('nobody', 'wrong')
                except smtplib.SMTPAuthenticationError: pass
            s.quit()
            """;
        ProcessResult loaded = await ProcessRunner.PythonAsync(load, server.Port.ToString(CultureInfo.InvariantCulture));
        Assert.True(loaded.ExitCode == 0, loaded.Output);
        string after = (await ProcessRunner.RunAsync("curl", ["-sS", $"http://127.0.0.1:{port}/metrics"])).Stdout;
        Assert.Contains("slimmail_messages_accepted_total 77", after);
        Assert.Contains("slimmail_deliveries_total{outcome=\"delivered\",type=\"maildir\"} 77", after);
        Assert.Contains("slimmail_delivery_duration_seconds_count{type=\"maildir\"} 77", after);
        // smtplib tries PLAIN, then LOGIN: two failures per login, unless the throttle refuses the later ones first.
        Assert.Matches(@"slimmail_auth_failures_total\{protocol=""smtp""\} [3-6]\n", after);
        Assert.Matches(@"slimmail_sessions_total\{protocol=""smtp"",role=""Mx""\} 6\n", after);
    }
}
