using System.Globalization;
using System.Text;
using System.Text.Json;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>
/// <c>Type: Pipe</c> through the real program with real programs on the other end: shell scripts that record
/// what they got, procmail delivering to a Maildir, programs that fail, hang, or stop reading.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class PipeDeliveryTests : IDisposable
{
    private readonly string _scripts = Directory.CreateTempSubdirectory("slimmail-pipe-").FullName;

    public void Dispose() => Directory.Delete(_scripts, recursive: true);

    private string Script(string name, string body)
    {
        string path = Path.Combine(_scripts, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body.Replace("$OUT", _scripts, StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    private string Config(string timeout = "00:00:03")
    {
        string record = Script("record.sh", """
            n=$(date +%s%N)
            printf '%s\0' "$@" > "$OUT/$n.args"
            printf 'SENDER=%s\nRECIPIENT=%s\nUSER=%s\n' "$SLIMMAIL_SENDER" "$SLIMMAIL_RECIPIENT" "$SLIMMAIL_USER" > "$OUT/$n.env"
            cat > "$OUT/$n.msg"
            """);
        string temp = Script("temp.sh", "cat > /dev/null; echo 'mailbox busy' >&2; exit 75");
        string perm = Script("perm.sh", "cat > /dev/null; echo 'no such folder: inbox' >&2; echo second line >&2; exit 67");
        string slow = Script("slow.sh", "echo $$ > $OUT/slow.pid; sleep 60 & echo $! > $OUT/slow-child.pid; cat > /dev/null; wait");
        string deaf = Script("deaf.sh", "sleep 60");
        string early = Script("early.sh", "head -c 10 > /dev/null; exit 0");
        File.WriteAllText(Path.Combine(_scripts, "procmailrc"), $"MAILDIR={_scripts}\nDEFAULT={_scripts}/procmail/\n");
        return """
            {
              "Hostname": "mx.example.test",
              "DataDirectory": "$DATA",
              "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Mx" } ] },
              "Domains": {
                "example.test": { "Mailboxes": { "alice": "alice", "temp": "temp", "perm": "perm", "perm2": "perm2", "slow": "slow",
                                                 "deaf": "deaf", "early": "early", "procmail": "procmail", "missing": "missing",
                                                 "*": "rec" } }
              },
              "Users": {
                "alice": {}, "rec": { "Delivery": "record" }, "temp": { "Delivery": "temp" }, "perm": { "Delivery": "perm" },
                "perm2": { "Delivery": "perm" }, "slow": { "Delivery": "slow" }, "deaf": { "Delivery": "deaf" },
                "early": { "Delivery": "early" }, "procmail": { "Delivery": "procmail" }, "missing": { "Delivery": "missing" }
              },
              "Deliveries": {
                "record": { "Type": "Pipe", "Command": "RECORD --user={user} '{recipient}' \"{sender}\" literal" },
                "temp": { "Type": "Pipe", "Command": "TEMP" },
                "perm": { "Type": "Pipe", "Command": "PERM {user}" },
                "slow": { "Type": "Pipe", "Command": "SLOW", "Timeout": "TIMEOUT" },
                "deaf": { "Type": "Pipe", "Command": "DEAF", "Timeout": "TIMEOUT" },
                "early": { "Type": "Pipe", "Command": "EARLY" },
                "procmail": { "Type": "Pipe", "Command": "/usr/bin/procmail -m PROCMAILRC" },
                "missing": { "Type": "Pipe", "Command": "/nonexistent/slimmail-deliver {user}" }
              }
            }
            """.Replace("RECORD", record, StringComparison.Ordinal).Replace("TEMP", temp, StringComparison.Ordinal)
            .Replace("PERM", perm, StringComparison.Ordinal).Replace("SLOW", slow, StringComparison.Ordinal)
            .Replace("DEAF", deaf, StringComparison.Ordinal).Replace("EARLY", early, StringComparison.Ordinal)
            .Replace("PROCMAILRC", Path.Combine(_scripts, "procmailrc"), StringComparison.Ordinal)
            .Replace("TIMEOUT", timeout, StringComparison.Ordinal);
    }

    // Sends one message with smtplib and prints a JSON object: each RCPT's code and the DATA reply.
    private const string SendScript = """
        import smtplib, sys, json
        port, sender, body = int(sys.argv[1]), sys.argv[2], sys.stdin.buffer.read()
        s = smtplib.SMTP('127.0.0.1', port, timeout=60)
        s.ehlo('client.test')
        out = {}
        s.mail(sender)
        for r in sys.argv[3:]:
            out[r] = s.rcpt(r)[0]
        if any(c == 250 for c in out.values()):
            code, msg = s.data(body)
            out['DATA'] = '%d %s' % (code, msg.decode())
        out['NOOP'] = s.noop()[0]
        s.quit()
        print(json.dumps(out))
        """;

    private static async Task<JsonElement> SendAsync(SlimMailServer server, string sender, string body, params string[] recipients)
    {
        ProcessResult result = await ProcessRunner.RunAsync("python3",
            ["-c", SendScript, server.Port.ToString(CultureInfo.InvariantCulture), sender, .. recipients], stdin: body);
        Assert.True(result.ExitCode == 0, result.Output);
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    private string[] Recorded(string extension) => Directory.GetFiles(_scripts, "*." + extension).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task The_program_gets_the_message_with_lf_endings_and_each_placeholder_as_exactly_one_argument()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        const string body = "Subject: pipe\r\n\r\nline one\r\n.dotted\r\nlast\r\n";
        JsonElement reply = await SendAsync(server, "sender@remote.test", body, "\"x y;$(touch /tmp/pwned) -f\"@example.test");
        Assert.StartsWith("250 ", reply.GetProperty("DATA").GetString(), StringComparison.Ordinal);

        string[] args = File.ReadAllText(Assert.Single(Recorded("args"))).TrimEnd('\0').Split('\0');
        Assert.Equal(["--user=rec", "\"x y;$(touch /tmp/pwned) -f\"@example.test", "sender@remote.test", "literal"], args);
        string env = File.ReadAllText(Assert.Single(Recorded("env")));
        Assert.Equal("SENDER=sender@remote.test\nRECIPIENT=\"x y;$(touch /tmp/pwned) -f\"@example.test\nUSER=rec\n", env);
        string message = File.ReadAllText(Assert.Single(Recorded("msg")));
        Assert.StartsWith("Received: from client.test", message, StringComparison.Ordinal);
        Assert.EndsWith("\n\nline one\n.dotted\nlast\n", message, StringComparison.Ordinal);
        Assert.DoesNotContain("\r", message, StringComparison.Ordinal);
        Assert.False(File.Exists("/tmp/pwned"));
    }

    [Fact]
    public async Task The_null_sender_is_one_empty_argument_and_an_empty_variable()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        JsonElement reply = await SendAsync(server, "<>", "Subject: bounce\r\n\r\nx\r\n", "anyone@example.test");
        Assert.StartsWith("250 ", reply.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        Assert.Equal(["--user=rec", "anyone@example.test", "", "literal"], File.ReadAllText(Assert.Single(Recorded("args")))[..^1].Split('\0'));
        Assert.StartsWith("SENDER=\n", File.ReadAllText(Assert.Single(Recorded("env"))), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Addresses_that_begin_with_a_dash_never_reach_a_program()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        JsonElement reply = await SendAsync(server, "sender@remote.test", "x\r\n", "-oQ/tmp/x@example.test", "alice@example.test");
        Assert.Equal(550, reply.GetProperty("-oQ/tmp/x@example.test").GetInt32());
        reply = await SendAsync(server, "-f@remote.test", "x\r\n", "someone@example.test");
        Assert.Equal(553, reply.GetProperty("someone@example.test").GetInt32());
        Assert.Empty(Recorded("args"));
    }

    [Fact]
    public async Task Exit_75_is_451_and_any_other_failure_is_554_with_the_programs_stderr_logged()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        JsonElement temp = await SendAsync(server, "sender@remote.test", "x\r\n", "temp@example.test");
        Assert.StartsWith("451 4.3.0", temp.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        JsonElement perm = await SendAsync(server, "sender@remote.test", "x\r\n", "perm@example.test");
        Assert.StartsWith("554 5.3.0", perm.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        await server.WaitForLogAsync("exited with 67: no such folder: inbox");
        Assert.DoesNotContain(server.Log, l => l.Contains("second line", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_program_that_cannot_be_started_is_451_and_logged_with_its_session()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        // A second session open meanwhile, so that the program is started on a disk thread (a lone session starts
        // it on its own thread); the failure is logged back in the session, so the line still names it.
        using var other = new System.Net.Sockets.TcpClient();
        await other.ConnectAsync(System.Net.IPAddress.Loopback, server.Port);
        Assert.True(await other.GetStream().ReadAsync(new byte[512]) > 0, "no greeting");
        JsonElement reply = await SendAsync(server, "sender@remote.test", "x\r\n", "missing@example.test");
        Assert.StartsWith("451 4.3.0", reply.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        Assert.Equal(250, reply.GetProperty("NOOP").GetInt32());
        string line = await server.WaitForLogAsync("pipe delivery for missing: cannot start /nonexistent/slimmail-deliver");
        Assert.Contains("session=s", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_program_past_its_timeout_is_killed_with_its_children_and_the_client_gets_451()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(timeout: "00:00:02"));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        JsonElement reply = await SendAsync(server, "sender@remote.test", "x\r\n", "slow@example.test");
        Assert.StartsWith("451 4.3.0", reply.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), clock.Elapsed.ToString());
        foreach (string pidFile in new[] { "slow.pid", "slow-child.pid" })
        {
            int pid = int.Parse(File.ReadAllText(Path.Combine(_scripts, pidFile)).Trim(), CultureInfo.InvariantCulture);
            await WaitGoneAsync(pid);
        }
    }

    [Fact]
    public async Task A_program_that_never_reads_its_input_is_killed_and_the_session_goes_on()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(timeout: "00:00:02"));
        // Far more than a pipe buffer, so writing blocks until the timeout.
        string body = "Subject: big\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('x', 998) + "\r\n", 2000));
        JsonElement reply = await SendAsync(server, "sender@remote.test", body, "deaf@example.test");
        Assert.StartsWith("451 4.3.0", reply.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        Assert.Equal(250, reply.GetProperty("NOOP").GetInt32());
    }

    [Fact]
    public async Task A_program_that_closes_its_input_early_and_exits_0_has_delivered()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        string body = "Subject: big\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('y', 998) + "\r\n", 2000));
        JsonElement reply = await SendAsync(server, "sender@remote.test", body, "early@example.test");
        Assert.StartsWith("250 ", reply.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        Assert.Equal(250, reply.GetProperty("NOOP").GetInt32());
    }

    [Fact]
    public async Task Procmail_delivers_into_its_maildir()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        JsonElement reply = await SendAsync(server, "sender@remote.test", "Subject: for procmail\r\n\r\nfiltered\r\n", "procmail@example.test");
        Assert.StartsWith("250 ", reply.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        string file = Assert.Single(Directory.GetFiles(Path.Combine(_scripts, "procmail", "new")));
        string stored = File.ReadAllText(file);
        Assert.Contains("Subject: for procmail\n", stored, StringComparison.Ordinal);
        Assert.Contains("\nfiltered\n", stored, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mixed_deliveries_follow_the_contract_and_a_partial_failure_bounces_to_the_sender()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config());
        JsonElement tempAndMaildir = await SendAsync(server, "sender@remote.test", "x\r\n", "alice@example.test", "temp@example.test");
        Assert.StartsWith("451 4.3.0", tempAndMaildir.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        JsonElement allPermanent = await SendAsync(server, "sender@remote.test", "x\r\n", "perm@example.test", "perm2@example.test");
        Assert.StartsWith("554 5.3.0", allPermanent.GetProperty("DATA").GetString(), StringComparison.Ordinal);

        // alice sends to herself, a recorder and a failing program: kept for two, bounced for one.
        int before = server.Messages("alice").Length;
        JsonElement partial = await SendAsync(server, "alice@example.test", "Subject: partial\r\nMessage-ID: <p1@example.test>\r\n\r\nbody\r\n",
            "alice@example.test", "perm@example.test", "someone@example.test");
        Assert.StartsWith("250 ", partial.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        Assert.Single(Recorded("msg"));
        string[] messages = server.Messages("alice");
        Assert.Equal(before + 2, messages.Length);
        string bounce = messages.Select(File.ReadAllText).Single(m => m.Contains("multipart/report", StringComparison.Ordinal));

        const string parse = """
            import email, sys, json
            from email import policy
            m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=policy.default)
            parts = list(m.iter_parts())
            status = parts[1].get_payload()
            out = {
              'from': m['From'], 'to': m['To'], 'ct': m.get_content_type(), 'report': m.get_param('report-type'),
              'auto': m['Auto-Submitted'], 'types': [p.get_content_type() for p in parts],
              'per_message': dict(status[0].items()), 'recipients': [dict(r.items()) for r in status[1:]],
              'headers': parts[2].get_payload() if isinstance(parts[2].get_payload(), str) else str(parts[2].get_payload()[0]),
            }
            print(json.dumps(out))
            """;
        string path = messages.Single(m => File.ReadAllText(m) == bounce);
        ProcessResult parsed = await ProcessRunner.PythonAsync(parse, path);
        Assert.True(parsed.ExitCode == 0, parsed.Output);
        JsonElement dsn = JsonDocument.Parse(parsed.Stdout).RootElement;
        Assert.Equal("Mail Delivery System <MAILER-DAEMON@mx.example.test>", dsn.GetProperty("from").GetString());
        Assert.Equal("alice@example.test", dsn.GetProperty("to").GetString()!.Trim('<', '>'));
        Assert.Equal("multipart/report", dsn.GetProperty("ct").GetString());
        Assert.Equal("delivery-status", dsn.GetProperty("report").GetString());
        Assert.Equal("auto-replied", dsn.GetProperty("auto").GetString());
        Assert.Equal(["text/plain", "message/delivery-status", "text/rfc822-headers"], dsn.GetProperty("types").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("dns; mx.example.test", dsn.GetProperty("per_message").GetProperty("Reporting-MTA").GetString());
        JsonElement failed = Assert.Single(dsn.GetProperty("recipients").EnumerateArray());
        Assert.Equal("rfc822; perm@example.test", failed.GetProperty("Final-Recipient").GetString());
        Assert.Equal("failed", failed.GetProperty("Action").GetString());
        Assert.Equal("5.3.0", failed.GetProperty("Status").GetString());
        Assert.Contains("Message-ID: <p1@example.test>", dsn.GetProperty("headers").GetString(), StringComparison.Ordinal);

        // Never a bounce for a bounce: the same partial failure from the null sender is only logged.
        JsonElement fromNull = await SendAsync(server, "<>", "Subject: a bounce\r\n\r\nx\r\n", "alice@example.test", "perm@example.test");
        Assert.StartsWith("250 ", fromNull.GetProperty("DATA").GetString(), StringComparison.Ordinal);
        Assert.Equal(before + 3, server.Messages("alice").Length);
    }

    private static async Task WaitGoneAsync(int pid)
    {
        for (int i = 0; i < 100 && Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture)); i++)
        {
            await Task.Delay(100);
        }

        string stat = Path.Combine("/proc", pid.ToString(CultureInfo.InvariantCulture), "stat");
        // A zombie waiting for its reaper is dead too.
        Assert.True(!File.Exists(stat) || File.ReadAllText(stat).Split(' ')[2] == "Z", $"process {pid} is still running");
    }
}
