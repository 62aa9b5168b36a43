using System.Globalization;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary><c>slimmail sendmail</c> as cron, mdadm and PHP's mail() call it, against the real server.</summary>
[Collection(ServerCollection.Name)]
public sealed class SendmailTests
{
    private static string Config(int port) => $$"""
        {
          "Hostname": "host.example.test",
          "DataDirectory": "$DATA",
          "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Mx" }, { "Endpoint": "127.0.0.1:{{port}}", "Role": "Local" } ] },
          "Domains": { "example.test": { "Mailboxes": { "root": "root", "admin": "root", "ops": "ops" } } },
          "Users": { "root": {}, "ops": {} }
        }
        """;

    private static Task<ProcessResult> SendmailAsync(SlimMailServer server, string stdin, params string[] arguments) =>
        ProcessRunner.RunAsync("dotnet", new[] { SlimMailServer.SlimMailDll, "sendmail", "--config", Path.Combine(server.Directory, "slimmail.json") }.Concat(arguments), stdin: stdin);

    [Fact]
    public async Task Cron_style_t_reads_recipients_from_the_headers_and_drops_bcc()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(TestPaths.FreePort()), listeners: 2);
        string cronOutput = "To: root@example.test\nBcc: \"Ops, team\" <ops@example.test>\nSubject: Cron <root@host> /usr/local/bin/backup\n\nbackup done\n.not the end\n";
        ProcessResult result = await SendmailAsync(server, cronOutput, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-t", "-oi");
        Assert.True(result.ExitCode == 0, result.Output);

        string root = await File.ReadAllTextAsync(Assert.Single(server.Messages("root")));
        string ops = await File.ReadAllTextAsync(Assert.Single(server.Messages("ops")));
        Assert.Contains("Subject: Cron <root@host> /usr/local/bin/backup\n", root);
        Assert.Contains("\n\nbackup done\n.not the end\n", root);
        Assert.DoesNotContain("Bcc:", root);
        Assert.DoesNotContain("Bcc:", ops);
        Assert.Contains("From: \"CronDaemon\" <", root);
        Assert.Contains("\nDate: ", root);
        Assert.Contains("\nMessage-ID: <", root);
    }

    [Fact]
    public async Task Recipients_as_arguments_and_a_lone_dot_ends_the_message_without_i()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(TestPaths.FreePort()), listeners: 2);
        ProcessResult result = await SendmailAsync(server, "Subject: mdadm\n\nDegradedArray event\n.\nignored\n", "-f", "mdadm@host.example.test", "admin@example.test");
        Assert.True(result.ExitCode == 0, result.Output);
        string stored = await File.ReadAllTextAsync(Assert.Single(server.Messages("root")));
        Assert.EndsWith("\nDegradedArray event\n", stored);
        Assert.Contains("From: mdadm@host.example.test", stored);
    }

    [Fact]
    public async Task A_refused_recipient_exits_69_and_an_unreachable_server_exits_75()
    {
        int port = TestPaths.FreePort();
        await using (SlimMailServer server = await SlimMailServer.StartAsync(Config(port), listeners: 2))
        {
            ProcessResult refused = await SendmailAsync(server, "Subject: x\n\nx\n", "nobody@example.test");
            Assert.Equal(69, refused.ExitCode);
            Assert.Contains("550 5.1.1", refused.Stderr);

            ProcessResult usage = await SendmailAsync(server, "Subject: x\n\nx\n");
            Assert.Equal(64, usage.ExitCode);

            await server.TerminateAsync();
            ProcessResult down = await SendmailAsync(server, "Subject: x\n\nx\n", "root@example.test");
            Assert.Equal(75, down.ExitCode);
        }
    }
}
