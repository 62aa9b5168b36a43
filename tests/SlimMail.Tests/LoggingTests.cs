using System.Globalization;
using System.Text.Json;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>The log an administrator greps: one JSON object per line with the session's fields on every session line.</summary>
[Collection(ServerCollection.Name)]
public sealed class LoggingTests
{
    [Fact]
    public async Task Json_log_lines_carry_session_client_queue_id_and_message_id_as_fields()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(configJson: null,
            ["--Smtp:Listeners:0:Endpoint=127.0.0.1:0", "--Pop3:Listeners:0:Endpoint=127.0.0.1:0", "--Logging:Console:FormatterName=json"]);
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            s.sendmail('cron@host.test', ['root@localhost'], b'Subject: log\r\nMessage-ID: <log-1@host.test>\r\n\r\nbody\r\n')
            s.quit()
            """;
        ProcessResult sent = await ProcessRunner.PythonAsync(script, server.Port.ToString(CultureInfo.InvariantCulture));
        Assert.True(sent.ExitCode == 0, sent.Output);
        await server.WaitForLogAsync("accepted");

        JsonElement[] lines = server.Log.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToArray();
        Assert.NotEmpty(lines);
        JsonElement accepted = lines.Single(l => l.GetProperty("Message").GetString()!.Contains("accepted", StringComparison.Ordinal));
        JsonElement state = accepted.GetProperty("State");
        Assert.Equal("<log-1@host.test>", state.GetProperty("MessageId").GetString());
        Assert.Equal("cron@host.test", state.GetProperty("Sender").GetString());
        Assert.Matches("^[0-9A-F]{13}$", state.GetProperty("QueueId").GetString());
        JsonElement scope = Assert.Single(accepted.GetProperty("Scopes").EnumerateArray());
        Assert.Matches("^s[0-9A-F]+$", scope.GetProperty("SessionId").GetString());
        Assert.StartsWith("127.0.0.1:", scope.GetProperty("Client").GetString(), StringComparison.Ordinal);

        // Every line of that session carries the same session id.
        string session = scope.GetProperty("SessionId").GetString()!;
        JsonElement connect = lines.Single(l => l.GetProperty("Message").GetString()!.StartsWith("connect from", StringComparison.Ordinal));
        Assert.Equal(session, connect.GetProperty("Scopes")[0].GetProperty("SessionId").GetString());
    }
}
