using System.Globalization;
using System.Net.Sockets;
using System.Text;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>POP3 through the real program with Python's poplib, curl and fetchmail, on mail sent over SMTP.</summary>
[Collection(ServerCollection.Name)]
public sealed class Pop3EndToEndTests
{
    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static async Task<SlimMailServer> StartZeroConfigAsync() =>
        await SlimMailServer.StartAsync(configJson: null, ["--Smtp:Listeners:0:Endpoint=127.0.0.1:0", "--Pop3:Listeners:0:Endpoint=127.0.0.1:0"]);

    private static async Task SendAsync(SlimMailServer server, params string[] bodies)
    {
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            for body in sys.argv[2:]:
                s.sendmail('cron@localhost', ['root@localhost'], body.encode())
            s.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, [P(server.Port), .. bodies]);
        Assert.True(result.ExitCode == 0, result.Output);
    }

    private static string Password(SlimMailServer server) =>
        File.ReadAllText(Path.Combine(server.Directory, "slimmail-data", "local-password")).Trim();

    [Fact]
    public async Task Poplib_retrieves_byte_exact_with_stable_uidls_and_deletes_only_at_quit()
    {
        await using SlimMailServer server = await StartZeroConfigAsync();
        await SendAsync(server, "Subject: one\r\n\r\nfirst\r\n.dot line\r\n", "Subject: two\r\n\r\nsecond\r\n");
        const string script = """
            import poplib, sys, json
            port, password = int(sys.argv[1]), sys.argv[2]
            out = {}
            p = poplib.POP3('127.0.0.1', port)
            out['capa'] = sorted(p.capa().keys())
            p.user('local'); p.pass_(password)
            out['stat'] = p.stat()
            out['list'] = [l.decode() for l in p.list()[1]]
            out['uidl'] = [l.decode() for l in p.uidl()[1]]
            resp, lines, octets = p.retr(1)
            out['retr1'] = [l.decode() for l in lines]; out['octets1'] = octets
            out['top2'] = [l.decode() for l in p.top(2, 0)[1]]
            p.dele(1); p.rset(); p.dele(2)
            p.quit()
            p = poplib.POP3('127.0.0.1', port); p.user('local'); p.pass_(password)
            out['after'] = [l.decode() for l in p.uidl()[1]]
            p.quit()
            print(json.dumps(out))
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, P(server.Pop3Ports[0]), Password(server));
        Assert.True(result.ExitCode == 0, result.Output);
        using var json = System.Text.Json.JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        string[] capabilities = ["AUTH-RESP-CODE", "IMPLEMENTATION", "PIPELINING", "RESP-CODES", "SASL", "TOP", "UIDL", "USER"];
        Assert.Equal(capabilities, root.GetProperty("capa").EnumerateArray().Select(e => e.GetString()!).Order(StringComparer.Ordinal));
        Assert.Equal(2, root.GetProperty("stat")[0].GetInt32());

        // LIST gives the exact size of what RETR sends (CRLF line endings, before byte-stuffing).
        string[] retr = root.GetProperty("retr1").EnumerateArray().Select(e => e.GetString()!).ToArray();
        long size = long.Parse(root.GetProperty("list")[0].GetString()!.Split(' ')[1], CultureInfo.InvariantCulture);
        Assert.Equal(size, retr.Sum(l => Encoding.UTF8.GetByteCount(l) + 2));
        Assert.StartsWith("Received: from ", retr[0]);
        Assert.Equal(["Subject: one", "", "first", ".dot line"], retr[^4..]);
        Assert.Contains("Subject: two", root.GetProperty("top2").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("", root.GetProperty("top2").EnumerateArray().Last().GetString());

        // Message 2 was deleted at QUIT; message 1 (RSET) kept its UIDL.
        string uid1 = root.GetProperty("uidl")[0].GetString()!.Split(' ')[1];
        Assert.Equal(["1 " + uid1], root.GetProperty("after").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task A_second_session_gets_in_use_and_a_dropped_connection_deletes_nothing()
    {
        await using SlimMailServer server = await StartZeroConfigAsync();
        await SendAsync(server, "Subject: keep me\r\n\r\nx\r\n");
        const string script = """
            import poplib, sys
            port, password = int(sys.argv[1]), sys.argv[2]
            a = poplib.POP3('127.0.0.1', port); a.user('local'); a.pass_(password)
            b = poplib.POP3('127.0.0.1', port); b.user('local')
            try:
                b.pass_(password); print('second got in')
            except poplib.error_proto as e:
                print(e.args[0].decode())
            a.dele(1)
            a.file.close(); a.sock.close()  # dropped without QUIT
            import time; time.sleep(0.5)
            c = poplib.POP3('127.0.0.1', port); c.user('local'); c.pass_(password)
            print('messages', c.stat()[0]); c.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, P(server.Pop3Ports[0]), Password(server));
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("-ERR [IN-USE]", result.Stdout);
        Assert.Contains("messages 1", result.Stdout);
    }

    [Fact]
    public async Task Wrong_passwords_get_auth_response_codes()
    {
        await using SlimMailServer server = await StartZeroConfigAsync();
        const string script = """
            import poplib, sys
            p = poplib.POP3('127.0.0.1', int(sys.argv[1])); p.user('local')
            try:
                p.pass_('wrong')
            except poplib.error_proto as e:
                print(e.args[0].decode())
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, P(server.Pop3Ports[0]));
        Assert.Contains("-ERR [AUTH]", result.Stdout);
        Assert.DoesNotContain(server.Log, l => l.Contains("wrong", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Curl_lists_and_retrieves_over_pop3()
    {
        await using SlimMailServer server = await StartZeroConfigAsync();
        await SendAsync(server, "Subject: curl\r\n\r\nfetched by curl\r\n");
        ProcessResult list = await ProcessRunner.RunAsync("curl", ["-sS", $"pop3://127.0.0.1:{server.Pop3Ports[0]}/", "--user", "local:" + Password(server)]);
        Assert.True(list.ExitCode == 0, list.Output);
        Assert.Matches(@"^1 \d+\r?\n", list.Stdout);
        ProcessResult retr = await ProcessRunner.RunAsync("curl", ["-sS", $"pop3://127.0.0.1:{server.Pop3Ports[0]}/1", "--user", "local:" + Password(server)]);
        Assert.EndsWith("Subject: curl\r\n\r\nfetched by curl\r\n", retr.Stdout);
    }

    [Fact]
    public async Task Fetchmail_pulls_mail_that_was_sent_over_smtp()
    {
        await using SlimMailServer server = await StartZeroConfigAsync();
        await SendAsync(server, "Subject: for fetchmail\r\n\r\nhello fetchmail\r\n", "Subject: second\r\n\r\nagain\r\n");
        string output = Path.Combine(server.Directory, "fetched");
        string rc = Path.Combine(server.Directory, "fetchmailrc");
        await File.WriteAllTextAsync(rc, $"""
            poll 127.0.0.1 protocol pop3 port {server.Pop3Ports[0]} auth password:
              user "local" there with password "{Password(server)}" is "root" here
              mda "/bin/sh -c 'cat >> {output}'"
              no keep
            """);
        File.SetUnixFileMode(rc, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        ProcessResult fetch = await ProcessRunner.RunAsync("fetchmail", ["-f", rc, "--nosyslog", "-v", "--sslproto", ""],
            environment: new Dictionary<string, string> { ["HOME"] = server.Directory, ["FETCHMAILHOME"] = server.Directory });
        Assert.True(fetch.ExitCode == 0, fetch.Output);
        string fetched = await File.ReadAllTextAsync(output);
        Assert.Contains("hello fetchmail", fetched);
        Assert.Contains("Subject: second", fetched);
        Assert.Empty(Directory.GetFiles(Path.Combine(server.Directory, "slimmail-data", "mail", "local", "cur")));
    }

    [Fact]
    public async Task Pipelined_commands_are_answered_in_order()
    {
        await using SlimMailServer server = await StartZeroConfigAsync();
        await SendAsync(server, "Subject: a\r\n\r\nx\r\n");
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", server.Pop3Ports[0]);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"USER local\r\nPASS {Password(server)}\r\nSTAT\r\nNOOP\r\nQUIT\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        string all = await reader.ReadToEndAsync();
        string[] lines = all.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        Assert.All(lines, l => Assert.StartsWith("+OK", l));
        Assert.StartsWith("+OK 1 ", lines[3]);
    }
}
