using System.Globalization;
using System.Net.Sockets;
using System.Text;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>The real program over real sockets, with real clients: swaks, curl and Python's smtplib.</summary>
[Collection(ServerCollection.Name)]
public sealed class ServeEndToEndTests
{
    internal const string Config = """
        {
          "Hostname": "mx.example.test",
          "DataDirectory": "$DATA",
          "Smtp": {
            "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Mx" } ],
            "MaxConnectionsPerAddress": 3
          },
          "Domains": {
            "example.test": { "Mailboxes": { "alice": "alice", "postmaster": "alice", "info": "alice", "*": "bob" } },
            "strict.test": { "Mailboxes": { "carol": "carol" } }
          },
          "Users": { "alice": {}, "bob": {}, "carol": { "FileMode": "0640" } }
        }
        """;

    [Fact]
    public async Task Swaks_mail_to_a_configured_mailbox_lands_byte_exact_in_its_maildir()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config);
        string body = "Subject: swaks test\r\nX-Test: 1\r\n\r\nline one\r\n.leading dot\r\nlast line\r\n";
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--from", "sender@remote.test", "--to", "alice@example.test", "--data", "-"],
            stdin: body);
        Assert.True(swaks.ExitCode == 0, swaks.Output);
        Assert.Contains("250 2.0.0 Ok: queued as", swaks.Stdout);

        string file = Assert.Single(server.Messages("alice"));
        string stored = await File.ReadAllTextAsync(file);
        Assert.StartsWith("Received: from ", stored);
        Assert.Contains("\tby mx.example.test (SlimMail) with ESMTP id ", stored);
        // swaks ends --data with one more CRLF of its own before the final dot.
        Assert.EndsWith(body.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n", stored);
        Assert.DoesNotContain("\r", stored);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
    }

    [Fact]
    public async Task Python_smtplib_delivers_to_several_users_once_each_and_refuses_the_rest()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config);
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            s.ehlo('python.test')
            s.mail('sender@remote.test')
            for r in ['alice@example.test', 'ALICE@EXAMPLE.TEST', 'info@example.test', 'whoever@example.test',
                      'carol@strict.test', 'nobody@strict.test', 'someone@elsewhere.test', 'user%elsewhere.test@strict.test']:
                print(r, s.rcpt(r)[0])
            code, msg = s.data(b'Subject: python\r\n\r\nhello from smtplib\r\n')
            print('DATA', code, msg.decode())
            s.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, server.Port.ToString(CultureInfo.InvariantCulture));
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("alice@example.test 250", result.Stdout);
        Assert.Contains("ALICE@EXAMPLE.TEST 250", result.Stdout);
        Assert.Contains("whoever@example.test 250", result.Stdout);
        Assert.Contains("nobody@strict.test 550", result.Stdout);
        Assert.Contains("someone@elsewhere.test 550", result.Stdout);
        Assert.Contains("user%elsewhere.test@strict.test 550", result.Stdout);
        Assert.Contains("DATA 250", result.Stdout);

        // alice had three addresses in the transaction and gets one copy; bob (catch-all) and carol one each.
        Assert.Single(server.Messages("alice"));
        Assert.Single(server.Messages("bob"));
        string carol = Assert.Single(server.Messages("carol"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(carol));
        Assert.EndsWith("Subject: python\n\nhello from smtplib\n", await File.ReadAllTextAsync(carol));
    }

    [Fact]
    public async Task Curl_uploads_a_message_that_is_stored_byte_exact()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config);
        string path = Path.Combine(server.Directory, "mail.eml");
        var body = new StringBuilder("From: curl@remote.test\r\nTo: alice@example.test\r\nSubject: curl\r\n\r\n");
        for (int i = 0; i < 2000; i++)
        {
            body.Append(i % 10 == 0 ? "." : "").Append("line ").Append(i).Append("\r\n");
        }

        await File.WriteAllTextAsync(path, body.ToString());
        ProcessResult curl = await ProcessRunner.RunAsync("curl",
            ["-sS", $"smtp://127.0.0.1:{server.Port}/client.test", "--mail-from", "curl@remote.test", "--mail-rcpt", "alice@example.test", "-T", path]);
        Assert.True(curl.ExitCode == 0, curl.Output);
        string stored = await File.ReadAllTextAsync(Assert.Single(server.Messages("alice")));
        Assert.EndsWith(body.ToString().Replace("\r\n", "\n", StringComparison.Ordinal), stored);
    }

    [Fact]
    public async Task Relay_to_a_foreign_domain_is_refused_at_rcpt_and_nothing_is_stored()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config);
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--from", "a@remote.test", "--to", "victim@elsewhere.test"]);
        Assert.NotEqual(0, swaks.ExitCode);
        Assert.Contains("550 5.7.1", swaks.Stdout);
        Assert.False(Directory.Exists(Path.Combine(server.DataDirectory, "mail")) && Directory.EnumerateFiles(Path.Combine(server.DataDirectory, "mail"), "*", SearchOption.AllDirectories).Any());
    }

    [Fact]
    public async Task Bdat_and_8bitmime_and_smtputf8_work_through_swaks_and_python()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config);
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            s.ehlo('python.test')
            assert s.has_extn('chunking') and s.has_extn('smtputf8') and s.has_extn('8bitmime')
            s.sendmail('jörg@remote.test', ['info@example.test'], 'Subject: ünïcödé\r\n\r\nGrüße\r\n'.encode('utf-8'), mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
            s.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, server.Port.ToString(CultureInfo.InvariantCulture));
        Assert.True(result.ExitCode == 0, result.Output);
        string stored = await File.ReadAllTextAsync(Assert.Single(server.Messages("alice")), Encoding.UTF8);
        Assert.Contains("with UTF8SMTP id", stored);
        Assert.EndsWith("Subject: ünïcödé\n\nGrüße\n", stored);
    }

    [Fact]
    public async Task The_log_has_one_line_per_accepted_message_with_id_sender_recipients_size_and_time()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config);
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--from", "s@remote.test", "--to", "alice@example.test", "--body", "x"]);
        Assert.Equal(0, swaks.ExitCode);
        string line = await server.WaitForLogAsync("accepted from=");
        Assert.Matches(@"[0-9A-F]{13}: accepted from=<s@remote\.test> to=<alice@example\.test> size=\d+ time=[\d.]+ms", line);
        Assert.DoesNotContain(server.Log, l => l.Contains("\tby ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Json_logging_can_be_chosen_on_the_command_line()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config, ["--Logging:Console:FormatterName=json"]);
        string line = await server.WaitForLogAsync("listening on");
        using var json = System.Text.Json.JsonDocument.Parse(line);
        Assert.Equal("Information", json.RootElement.GetProperty("LogLevel").GetString());
    }

    [Fact]
    public async Task Connections_over_the_per_address_limit_get_421_4_7_0()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config);
        var open = new List<TcpClient>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", server.Port);
                open.Add(client);
                Assert.StartsWith("220 ", await ReadLineAsync(client));
            }

            using var extra = new TcpClient();
            await extra.ConnectAsync("127.0.0.1", server.Port);
            Assert.StartsWith("421 4.7.0", await ReadLineAsync(extra));
        }
        finally
        {
            open.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task Environment_and_command_line_override_the_file()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config, ["--Smtp:MaxMessageSize=2000"],
            new Dictionary<string, string> { ["SLIMMAIL__Hostname"] = "env.example.test" });
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--from", "s@remote.test", "--to", "alice@example.test", "--body", new string('x', 5000)]);
        Assert.Contains("220 env.example.test ESMTP", swaks.Stdout);
        Assert.Contains("250-SIZE 2000", swaks.Stdout);
        Assert.Contains("552 5.3.4", swaks.Stdout);
        Assert.Empty(server.Messages("alice"));
    }

    [Fact]
    public async Task Sigterm_drains_answers_idle_clients_421_and_removes_the_pid_file()
    {
        string config = Config.Replace("\"DataDirectory\"", "\"PidFile\": \"$DATA/slimmail.pid\", \"DataDirectory\"", StringComparison.Ordinal);
        await using SlimMailServer server = await SlimMailServer.StartAsync(config);
        string pidFile = Path.Combine(server.DataDirectory, "slimmail.pid");
        Assert.Equal(server.ProcessId.ToString(CultureInfo.InvariantCulture), (await File.ReadAllTextAsync(pidFile)).Trim());

        using var idle = new TcpClient();
        await idle.ConnectAsync("127.0.0.1", server.Port);
        await ReadLineAsync(idle);
        Task<int> exit = server.TerminateAsync();
        Assert.StartsWith("421 4.3.2", await ReadLineAsync(idle));
        Assert.Equal(0, await exit);
        Assert.False(File.Exists(pidFile));
    }

    /// <summary>
    /// Concurrent senders, <c>kill -9</c> at a random moment, restart on the same Maildir, repeated: every
    /// message that got 250 is present, complete and stored once, and nothing half-written is in new/.
    /// CI runs 3 rounds; SLIMMAIL_CRASH_ROUNDS=100 runs more.
    /// </summary>
    [Fact]
    public async Task Every_message_acknowledged_before_kill_9_is_complete_on_disk_round_after_round()
    {
        int rounds = int.TryParse(Environment.GetEnvironmentVariable("SLIMMAIL_CRASH_ROUNDS"), out int n) ? n : 3;
        string directory = Directory.CreateTempSubdirectory("slimmail-crash-").FullName;
        var acked = new List<string>();
        try
        {
            for (int round = 0; round < rounds; round++)
            {
                await using SlimMailServer server = await SlimMailServer.StartAsync(Config, directory: directory);
                acked.AddRange(await SendUntilKilledAsync(server, round, killAfter: Random.Shared.Next(10, 80)));
                VerifyMaildir(Path.Combine(directory, "data", "mail", "alice", "new"), acked);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    // Four concurrent senders; each prints the Subject of every message that got 250. The server is killed
    // once killAfter messages were acknowledged; returns every acknowledged Subject. The configuration allows three
    // connections per address, so a sender reconnecting while three are open gets 421 and, like any MTA, tries again;
    // a sender stops when the server is gone (one that stopped at the 421 left too few senders, once, under load).
    private static async Task<List<string>> SendUntilKilledAsync(SlimMailServer server, int round, int killAfter)
    {
        const string script = """
            import smtplib, sys, threading, time
            port, round = int(sys.argv[1]), sys.argv[2]; lock = threading.Lock()
            def send(worker):
                n = 0
                while True:
                    try:
                        s = smtplib.SMTP('127.0.0.1', port, timeout=10)
                    except smtplib.SMTPConnectError:
                        time.sleep(0.01)
                        continue
                    except Exception:
                        return
                    try:
                        for _ in range(5):
                            subject = 'r%s-w%d-%d' % (round, worker, n); n += 1
                            body = ('Subject: %s\r\n\r\n' % subject) + ('payload %s\r\n' % subject) * 200
                            s.sendmail('s@remote.test', ['alice@example.test'], body.encode())
                            with lock:
                                print(subject, flush=True)
                        s.quit()
                    except Exception:
                        return
            threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
            [t.start() for t in threads]; [t.join() for t in threads]
            """;
        var python = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3")
        {
            ArgumentList = { "-u", "-c", script, server.Port.ToString(CultureInfo.InvariantCulture), round.ToString(CultureInfo.InvariantCulture) },
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        var acked = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (acked.Count < killAfter && DateTime.UtcNow < deadline && await python.StandardOutput.ReadLineAsync() is { } line)
        {
            acked.Add(line);
        }

        await server.KillAsync();
        acked.AddRange((await python.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        await python.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(acked.Count >= killAfter, $"only {acked.Count} messages were acknowledged");
        return acked;
    }

    private static void VerifyMaildir(string newDirectory, IEnumerable<string> acked)
    {
        var stored = new HashSet<string>();
        foreach (string file in Directory.GetFiles(newDirectory))
        {
            string text = File.ReadAllText(file);
            string subject = text.Split('\n').First(l => l.StartsWith("Subject: ", StringComparison.Ordinal))["Subject: ".Length..];
            Assert.True(stored.Add(subject), $"{subject} stored twice");
            // Nothing half-written is ever visible in new/, acknowledged or not.
            Assert.EndsWith($"Subject: {subject}\n\n" + string.Concat(Enumerable.Repeat($"payload {subject}\n", 200)), text);
        }

        foreach (string subject in acked)
        {
            Assert.True(stored.Contains(subject), $"{subject} got 250 but is not in new/");
        }
    }

    private static async Task<string> ReadLineAsync(TcpClient client)
    {
        var buffer = new byte[512];
        var line = new StringBuilder();
        NetworkStream stream = client.GetStream();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!line.ToString().Contains('\n', StringComparison.Ordinal))
        {
            int n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0)
            {
                break;
            }

            line.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        return line.ToString();
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ServerCollection
{
    public const string Name = "real server";
}
