using System.Globalization;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

[Collection(ServerCollection.Name)]
public sealed class ReloadTests
{
    private const string Before = """
        { "DataDirectory": "$DATA", "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Mx" } ] },
          "Domains": { "example.test": { "Mailboxes": { "alice": "alice" } } }, "Users": { "alice": {} } }
        """;

    private static async Task<string> RcptAsync(SlimMailServer server, string recipient)
    {
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--from", "a@remote.test", "--to", recipient, "--body", "x"]);
        return swaks.Stdout;
    }

    [Fact]
    public async Task Sighup_reloads_users_and_mailboxes_and_a_broken_file_keeps_the_old_configuration()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Before);
        Assert.Contains("550 5.1.1", await RcptAsync(server, "carol@example.test"));

        string configFile = Path.Combine(server.Directory, "slimmail.json");
        string data = Path.Combine(server.Directory, "data");
        await File.WriteAllTextAsync(configFile, Before.Replace("$DATA", data, StringComparison.Ordinal)
            .Replace("\"alice\": \"alice\"", "\"alice\": \"alice\", \"carol\": \"carol\"", StringComparison.Ordinal)
            .Replace("\"alice\": {}", "\"alice\": {}, \"carol\": {}", StringComparison.Ordinal));
        await ProcessRunner.RunAsync("kill", ["-HUP", server.ProcessId.ToString(CultureInfo.InvariantCulture)]);
        await server.WaitForLogAsync("configuration reloaded");
        Assert.Contains("250 2.0.0 Ok: queued", await RcptAsync(server, "carol@example.test"));
        Assert.Single(server.Messages("carol"));

        await File.WriteAllTextAsync(configFile, "{ \"Smtp\": { \"MaxRecipients\": \"many\" } }");
        await server.WaitForLogAsync("configuration not reloaded");
        Assert.Contains("Smtp:MaxRecipients", string.Join("\n", server.Log));
        Assert.Contains("250 2.0.0 Ok: queued", await RcptAsync(server, "carol@example.test"));
    }
}
