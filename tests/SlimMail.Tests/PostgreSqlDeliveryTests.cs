using System.Globalization;
using System.Text;
using System.Text.Json;
using SlimMail.Auth;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary><c>Type: PostgreSql</c> against a real PostgreSQL server: SMTP in, rows in the database, POP3 out.</summary>
[Collection(ServerCollection.Name)]
public sealed class PostgreSqlDeliveryTests
{
    private static readonly string DaveHash = PasswordHasher.Hash("dave-secret", 1000);

    private static string Config(string connectionString) => $$"""
        {
          "Hostname": "mx.example.test",
          "DataDirectory": "$DATA",
          "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:0", "Role": "Mx" } ] },
          "Pop3": { "Listeners": [ { "Endpoint": "127.0.0.1:0" } ] },
          "Domains": { "example.test": { "Mailboxes": { "dave": "dave", "alice": "alice", "sales": "dave" } } },
          "Users": { "dave": { "PasswordHash": "{{DaveHash}}", "Delivery": "db" }, "alice": {} },
          "Deliveries": { "db": { "Type": "PostgreSql", "ConnectionString": "{{connectionString}}" } }
        }
        """;

    private static async Task<string> SmtpAsync(SlimMailServer server, string script, params string[] arguments)
    {
        ProcessResult result = await ProcessRunner.PythonAsync(script, [server.Port.ToString(CultureInfo.InvariantCulture), .. arguments]);
        Assert.True(result.ExitCode == 0, result.Output);
        return result.Stdout;
    }

    private const string SendTwo = """
        import smtplib, sys
        s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
        print(s.sendmail('sender@remote.test', ['dave@example.test'], b'Subject: one\r\n\r\nfirst\r\n.dotted\r\n'))
        print(s.sendmail('', ['sales@example.test', 'alice@example.test', 'dave@example.test'], b'Subject: two\r\n\r\nsecond\r\n'))
        s.quit()
        """;

    [Fact]
    public async Task Mail_for_a_database_user_is_stored_with_its_envelope_and_read_back_and_deleted_over_pop3()
    {
        await using PostgreSqlDatabase database = await PostgreSqlDatabase.CreateAsync();
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(database.ConnectionString), pop3Listeners: 1);
        await SmtpAsync(server, SendTwo);

        List<object?[]> rows = await database.QueryAsync(
            "SELECT message_uid, queue_id, user_name, sender, recipient, size, received_at, body FROM slimmail.messages ORDER BY id");
        Assert.Equal(2, rows.Count);
        Assert.Equal(["dave", "sender@remote.test", "dave@example.test"], rows[0][2..5]);
        // One copy per user however many of their addresses were given; the first address is the recipient.
        Assert.Equal(["dave", "", "sales@example.test"], rows[1][2..5]);
        byte[] first = (byte[])rows[0][7]!;
        Assert.Equal((long)first.Length, rows[0][5]);
        string text = Encoding.UTF8.GetString(first);
        Assert.StartsWith("Received: from ", text, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nfirst\r\n.dotted\r\n", text, StringComparison.Ordinal);
        Assert.InRange((DateTime)rows[0][6]!, DateTime.UtcNow.AddMinutes(-5), DateTime.UtcNow.AddMinutes(1));
        Assert.Single(server.Messages("alice"));

        const string pop = """
            import poplib, sys, json
            p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
            p.user('dave'); p.pass_('dave-secret')
            out = {'stat': p.stat(), 'uidl': [l.decode() for l in p.uidl()[1]]}
            resp, lines, octets = p.retr(1)
            out['retr'] = [l.decode() for l in lines]; out['octets'] = octets
            q = poplib.POP3('127.0.0.1', int(sys.argv[1])); q.user('dave')
            try:
                q.pass_('dave-secret'); out['second'] = 'opened'
            except poplib.error_proto as e:
                out['second'] = e.args[0].decode()
            p.dele(1); p.quit()
            print(json.dumps(out))
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(pop, server.Pop3Ports[0].ToString(CultureInfo.InvariantCulture));
        Assert.True(result.ExitCode == 0, result.Output);
        JsonElement out_ = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.Equal(2, out_.GetProperty("stat")[0].GetInt32());
        Assert.Equal(first.Length + ((byte[])rows[1][7]!).Length, out_.GetProperty("stat")[1].GetInt32());
        Assert.Equal("1 " + ((Guid)rows[0][0]!).ToString("N"), out_.GetProperty("uidl")[0].GetString());
        Assert.Equal(first.Length, out_.GetProperty("octets").GetInt32() - 0);
        Assert.Equal(".dotted", out_.GetProperty("retr").EnumerateArray().Last().GetString());
        Assert.StartsWith("-ERR [IN-USE]", out_.GetProperty("second").GetString(), StringComparison.Ordinal);

        Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM slimmail.messages"));
        Assert.Equal("", (await database.QueryAsync("SELECT sender FROM slimmail.messages"))[0][0]);
    }

    [Fact]
    public async Task The_schema_is_created_once_and_recorded_so_a_restart_does_not_migrate_again()
    {
        await using PostgreSqlDatabase database = await PostgreSqlDatabase.CreateAsync();
        for (int i = 0; i < 2; i++)
        {
            await using SlimMailServer server = await SlimMailServer.StartAsync(Config(database.ConnectionString), pop3Listeners: 1);
            await SmtpAsync(server, SendTwo);
        }

        List<object?[]> migrations = await database.QueryAsync("SELECT version, name FROM slimmail.schema_migrations");
        Assert.Equal([1, "001_messages"], Assert.Single(migrations));
        Assert.Equal(4, await database.CountAsync("SELECT count(*) FROM slimmail.messages"));
        Assert.Equal(4, await database.CountAsync("SELECT count(DISTINCT message_uid) FROM slimmail.messages"));
    }

    [Fact]
    public async Task An_unreachable_database_is_451_for_its_users_while_everyone_else_gets_mail()
    {
        string nowhere = "Host=/nonexistent-socket-dir;Username=slimmail;Database=x;Timeout=3";
        await using SlimMailServer server = await SlimMailServer.StartAsync(Config(nowhere), pop3Listeners: 1);
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            try:
                s.sendmail('sender@remote.test', ['dave@example.test', 'alice@example.test'], b'Subject: x\r\n\r\nx\r\n')
            except smtplib.SMTPDataError as e:
                print('DATA', e.smtp_code, e.smtp_error.decode())
            print(s.sendmail('sender@remote.test', ['alice@example.test'], b'Subject: y\r\n\r\ny\r\n'))
            print('NOOP', s.noop()[0])
            s.quit()
            """;
        string output = await SmtpAsync(server, script);
        Assert.Contains("DATA 451 4.3.0", output, StringComparison.Ordinal);
        Assert.Contains("NOOP 250", output, StringComparison.Ordinal);
        Assert.Single(server.Messages("alice"));

        const string pop = """
            import poplib, sys
            p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
            p.user('dave')
            try:
                p.pass_('dave-secret'); print('opened')
            except poplib.error_proto as e:
                print(e.args[0].decode())
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(pop, server.Pop3Ports[0].ToString(CultureInfo.InvariantCulture));
        Assert.Contains("-ERR [SYS/TEMP]", result.Stdout, StringComparison.Ordinal);
    }
}
