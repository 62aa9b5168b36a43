using System.Text;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;

namespace SlimMail.Tests.Core;

public class SmtpSessionTests
{
    private readonly MemoryMessageHandler _handler = new();

    private Task<SmtpTestClient> ConnectAsync(SmtpServerOptions? options = null) => SmtpTestClient.ConnectAsync(_handler, options);

    [Fact]
    public async Task Ehlo_lists_the_extensions_of_the_contract()
    {
        await using SmtpTestClient client = await ConnectAsync();
        string reply = await client.CommandAsync("EHLO client.test");
        Assert.Equal(
            "250-mx.test\n250-PIPELINING\n250-SIZE 26214400\n250-8BITMIME\n250-SMTPUTF8\n250-ENHANCEDSTATUSCODES\n250 CHUNKING",
            reply);
    }

    [Fact]
    public async Task Helo_answers_with_the_host_name()
    {
        await using SmtpTestClient client = await ConnectAsync();
        Assert.Equal("250 mx.test", await client.CommandAsync("HELO client.test"));
    }

    [Fact]
    public async Task Ehlo_without_a_name_is_501()
    {
        await using SmtpTestClient client = await ConnectAsync();
        Assert.StartsWith("501 5.5.4", await client.CommandAsync("EHLO"));
    }

    [Fact]
    public async Task Mail_before_ehlo_is_503_5_5_1()
    {
        await using SmtpTestClient client = await ConnectAsync();
        Assert.StartsWith("503 5.5.1", await client.CommandAsync("MAIL FROM:<a@b.test>"));
    }

    [Fact]
    public async Task Rcpt_before_mail_is_503_5_5_1()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        Assert.Equal("503 5.5.1 Error: need MAIL command", await client.CommandAsync("RCPT TO:<a@b.test>"));
    }

    [Fact]
    public async Task Data_before_rcpt_is_503_5_5_1()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<a@b.test>"));
        Assert.Equal("503 5.5.1 Error: need RCPT command", await client.CommandAsync("DATA"));
    }

    [Fact]
    public async Task Nested_mail_is_503_5_5_1()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        Assert.Equal("503 5.5.1 Error: nested MAIL command", await client.CommandAsync("MAIL FROM:<a@b.test>"));
    }

    [Fact]
    public async Task Unknown_command_is_500_5_5_2()
    {
        await using SmtpTestClient client = await ConnectAsync();
        Assert.StartsWith("500 5.5.2", await client.CommandAsync("FOO bar"));
    }

    [Theory]
    [InlineData("NOOP", "250 2.0.0 Ok")]
    [InlineData("RSET", "250 2.0.0 Ok")]
    [InlineData("VRFY postmaster", "252 2.0.0")]
    [InlineData("VRFY", "501 5.1.3")]
    [InlineData("HELP", "214 2.0.0")]
    [InlineData("EXPN staff", "502 5.5.1")]
    [InlineData("RSET now", "501 5.5.4")]
    public async Task Simple_commands_get_their_replies(string command, string expected)
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        Assert.StartsWith(expected, await client.CommandAsync(command));
    }

    [Fact]
    public async Task Quit_says_goodbye_and_closes()
    {
        await using SmtpTestClient client = await ConnectAsync();
        Assert.Equal("221 2.0.0 Bye", await client.CommandAsync("QUIT"));
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task A_message_is_delivered_with_a_received_header_and_dot_stuffing_removed()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        Assert.Equal("250 2.1.0 Ok", await client.CommandAsync("MAIL FROM:<alice@example.test>"));
        Assert.Equal("250 2.1.5 Ok", await client.CommandAsync("RCPT TO:<bob@example.test>"));
        Assert.StartsWith("354 ", await client.CommandAsync("DATA"));
        string reply = await client.CommandAsync("Subject: hi\r\n\r\n..leading dot\r\nline\r\n.");
        Assert.StartsWith("250 2.0.0 Ok: queued as ", reply);

        MemoryMessageHandler.StoredMessage message = Assert.Single(_handler.Messages);
        Assert.Equal("alice@example.test", message.Sender);
        Assert.Equal(["bob@example.test"], message.Recipients);
        Assert.Equal("Subject: hi\r\n\r\n.leading dot\r\nline\r\n", message.Body);
        Assert.Matches(@"^Received: from client\.test \(\[192\.0\.2\.10\]\)\r\n\tby mx\.test \(SlimMail\) with ESMTP id [0-9A-F]+\r\n\tfor <bob@example\.test>; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n", message.Text);
    }

    [Fact]
    public async Task Pipelined_commands_are_answered_in_order()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.SendAsync("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<unknown@y.test>\r\nRCPT TO:<z@y.test>\r\nDATA\r\n");
        Assert.StartsWith("250-mx.test", await client.ReadReplyAsync());
        Assert.StartsWith("250 2.1.0", await client.ReadReplyAsync());
        Assert.StartsWith("250 2.1.5", await client.ReadReplyAsync());
        Assert.StartsWith("550 5.1.1", await client.ReadReplyAsync());
        Assert.StartsWith("250 2.1.5", await client.ReadReplyAsync());
        Assert.StartsWith("354", await client.ReadReplyAsync());
        await client.SendAsync("body\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<x@y.test>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n");
        Assert.StartsWith("250 2.0.0", await client.ReadReplyAsync());
        Assert.StartsWith("250 2.1.0", await client.ReadReplyAsync());
        Assert.StartsWith("250 2.1.5", await client.ReadReplyAsync());
        Assert.StartsWith("354", await client.ReadReplyAsync());
        Assert.StartsWith("250 2.0.0", await client.ReadReplyAsync());
        Assert.StartsWith("221", await client.ReadReplyAsync());
        Assert.Equal(2, _handler.Messages.Count);
        Assert.Equal(["x@y.test", "z@y.test"], _handler.Messages.First().Recipients);
        Assert.Null(_handler.Messages.Last().Sender);
    }

    [Fact]
    public async Task Rset_abandons_the_transaction()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("RSET"));
        Assert.StartsWith("503", await client.CommandAsync("DATA"));
        Assert.Equal(1, _handler.Aborted);
    }

    [Theory]
    [InlineData("MAIL FROM:<>", "250 2.1.0")]
    [InlineData("MAIL FROM: <a@b.test>", "250 2.1.0")]
    [InlineData("mail from:<A@B.TEST>", "250 2.1.0")]
    [InlineData("MAIL FROM:<\"john smith\"@b.test>", "250 2.1.0")]
    [InlineData("MAIL FROM:<john@[192.0.2.1]>", "250 2.1.0")]
    [InlineData("MAIL FROM:<john@[IPv6:2001:db8::1]>", "250 2.1.0")]
    [InlineData("MAIL FROM:<@relay.test,@other.test:a@b.test>", "250 2.1.0")]
    [InlineData("MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME", "250 2.1.0")]
    [InlineData("MAIL FROM:<a@b.test> BODY=7BIT SMTPUTF8", "250 2.1.0")]
    [InlineData("MAIL FROM:<a@b.test> AUTH=<>", "250 2.1.0")]
    [InlineData("MAIL FROM:<a@b.test> SIZE=99999999999", "552 5.3.4")]
    [InlineData("MAIL FROM:<a@b.test> RET=HDRS", "555 5.5.4")]
    [InlineData("MAIL FROM:<a@b.test> BODY=BINARYMIME", "501 5.5.4")]
    [InlineData("MAIL FROM:<a@b.test> SIZE=abc", "501 5.5.4")]
    [InlineData("MAIL FROM:a@b.test", "501 5.5.4")]
    [InlineData("MAIL TO:<a@b.test>", "501 5.5.4")]
    [InlineData("MAIL FROM:<a@b.test.>", "501 5.1.7")]
    [InlineData("MAIL FROM:<a..b@b.test>", "501 5.1.7")]
    [InlineData("MAIL FROM:<a@b@c.test>", "501 5.1.7")]
    [InlineData("MAIL FROM:<a@[300.1.1.1]>", "501 5.1.7")]
    [InlineData("MAIL FROM:<a@-b.test>", "501 5.1.7")]
    [InlineData("MAIL FROM:<jörg@b.test>", "553 5.6.7")]
    [InlineData("MAIL FROM:<jörg@b.test> SMTPUTF8", "250 2.1.0")]
    public async Task Mail_from_follows_rfc_5321_path_syntax(string command, string expected)
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        Assert.StartsWith(expected, await client.CommandAsync(command));
    }

    [Theory]
    [InlineData("RCPT TO:<x@y.test>", "250 2.1.5")]
    [InlineData("RCPT TO:<postmaster>", "250 2.1.5")]
    [InlineData("RCPT TO:<Postmaster>", "250 2.1.5")]
    [InlineData("RCPT TO:<unknown@y.test>", "550 5.1.1")]
    [InlineData("RCPT TO:<x@y.test> NOTIFY=NEVER", "555 5.5.4")]
    [InlineData("RCPT TO:<>", "501 5.1.3")]
    [InlineData("RCPT TO:x@y.test", "501 5.5.4")]
    [InlineData("RCPT TO:<x@y.test", "501 5.1.3")]
    [InlineData("RCPT TO:<\"unterminated@y.test>", "501 5.1.3")]
    public async Task Rcpt_to_follows_rfc_5321_path_syntax(string command, string expected)
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        Assert.StartsWith(expected, await client.CommandAsync(command));
    }

    [Fact]
    public async Task Recipients_over_the_limit_get_452_4_5_3()
    {
        await using SmtpTestClient client = await ConnectAsync(new SmtpServerOptions { Hostname = "mx.test", MaxRecipients = 2 });
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<r1@y.test>"));
        Assert.StartsWith("250", await client.CommandAsync("RCPT TO:<r2@y.test>"));
        Assert.StartsWith("452 4.5.3", await client.CommandAsync("RCPT TO:<r3@y.test>"));
    }

    [Fact]
    public async Task Message_over_max_size_is_refused_with_552_after_draining_to_the_real_end()
    {
        await using SmtpTestClient client = await ConnectAsync(new SmtpServerOptions { Hostname = "mx.test", MaxMessageSize = 100 });
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.CommandAsync("DATA");
        // The smuggled commands inside the oversized message must never run.
        string big = new string('x', 300) + "\r\nQUIT\r\n" + "MAIL FROM:<evil@b.test>\r\n" + new string('y', 300) + "\r\n.\r\n";
        Assert.StartsWith("552 5.3.4", await client.CommandAsync(big.TrimEnd('\r', '\n')));
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
        Assert.Empty(_handler.Messages);
        Assert.StartsWith("250 2.1.0", await client.CommandAsync("MAIL FROM:<a@b.test>"));
    }

    [Fact]
    public async Task Bdat_chunks_make_one_message()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.SendAsync("BDAT 8\r\nSubject:");
        Assert.Equal("250 2.0.0 8 octets received", await client.ReadReplyAsync());
        await client.SendAsync("BDAT 11 LAST\r\n x\r\n\r\n.hi\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued as", await client.ReadReplyAsync());
        Assert.Equal("Subject: x\r\n\r\n.hi\r\n", Assert.Single(_handler.Messages).Body);
    }

    [Fact]
    public async Task Bdat_zero_last_ends_the_message()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.SendAsync("BDAT 4\r\nhi\r\nBDAT 0 LAST\r\n");
        Assert.StartsWith("250 2.0.0 4 octets", await client.ReadReplyAsync());
        Assert.StartsWith("250 2.0.0 Ok", await client.ReadReplyAsync());
        Assert.Equal("hi\r\n", Assert.Single(_handler.Messages).Body);
    }

    [Fact]
    public async Task Bdat_out_of_sequence_drains_the_chunk_before_refusing()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.SendAsync("BDAT 10 LAST\r\nQUIT\r\nQUIT");
        Assert.StartsWith("503 5.5.1", await client.ReadReplyAsync());
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Bdat_over_max_size_is_refused_with_552_and_later_chunks_are_drained()
    {
        await using SmtpTestClient client = await ConnectAsync(new SmtpServerOptions { Hostname = "mx.test", MaxMessageSize = 10 });
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.SendAsync("BDAT 20\r\n01234567890123456789BDAT 6 LAST\r\nQUIT\r\n");
        Assert.StartsWith("552 5.3.4", await client.ReadReplyAsync());
        Assert.StartsWith("503 5.5.1", await client.ReadReplyAsync());
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
        Assert.Empty(_handler.Messages);
    }

    [Fact]
    public async Task Bdat_with_a_bad_size_closes_the_connection()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        Assert.StartsWith("501 5.5.4", await client.CommandAsync("BDAT ten"));
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task Data_after_bdat_is_503()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.SendAsync("BDAT 2\r\nhi");
        await client.ReadReplyAsync();
        Assert.Equal("503 5.5.1 Error: DATA cannot follow BDAT", await client.CommandAsync("DATA"));
    }

    [Fact]
    public async Task A_line_over_the_limit_is_refused_and_the_session_goes_on()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        Assert.Equal("500 5.5.2 Error: line too long", await client.CommandAsync("NOOP " + new string('a', 100_000)));
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Commands_with_bare_cr_or_nul_are_refused()
    {
        await using SmtpTestClient client = await ConnectAsync();
        Assert.StartsWith("500 5.5.2", await client.CommandAsync("EHLO a\rb"));
        Assert.StartsWith("500 5.5.2", await client.CommandAsync("EHLO a\0b"));
    }

    [Fact]
    public async Task The_nth_bad_command_gets_421_4_7_0_and_the_connection_closes()
    {
        await using SmtpTestClient client = await ConnectAsync(new SmtpServerOptions { Hostname = "mx.test", MaxErrors = 3 });
        Assert.StartsWith("500", await client.CommandAsync("BAD1"));
        Assert.StartsWith("500", await client.CommandAsync("BAD2"));
        Assert.StartsWith("421 4.7.0", await client.CommandAsync("BAD3"));
        Assert.True(await client.IsClosedAsync());
    }

    [Theory]
    [InlineData("GET / HTTP/1.1")]
    [InlineData("POST /x HTTP/1.1")]
    [InlineData("CONNECT mx.test:25 HTTP/1.1")]
    public async Task Http_verbs_close_the_connection_at_once(string line)
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.SendAsync(line + "\r\nHost: x\r\n\r\n");
        Assert.True(await client.IsClosedAsync());
        Assert.Equal("", await client.ReadReplyAsync());
    }

    [Fact]
    public async Task A_client_that_sends_a_command_too_slowly_is_cut_off_with_421_4_4_2()
    {
        await using SmtpTestClient client = await ConnectAsync(new SmtpServerOptions { Hostname = "mx.test", CommandTimeout = TimeSpan.FromMilliseconds(500) });
        // One byte at a time, each well within the timeout, the whole line never.
        foreach (char c in "NOOP")
        {
            await client.SendAsync(c.ToString());
            await Task.Delay(200);
        }

        Assert.StartsWith("421 4.4.2", await client.ReadReplyAsync());
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task Silence_during_data_is_cut_off_with_421_4_4_2()
    {
        await using SmtpTestClient client = await ConnectAsync(new SmtpServerOptions { Hostname = "mx.test", DataTimeout = TimeSpan.FromMilliseconds(300) });
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.CommandAsync("DATA");
        await client.SendAsync("partial");
        Assert.StartsWith("421 4.4.2", await client.ReadReplyAsync());
        Assert.True(await client.IsClosedAsync());
        Assert.Empty(_handler.Messages);
        Assert.Equal(1, _handler.Aborted);
    }

    [Fact]
    public async Task Shutdown_answers_an_idle_session_421_4_3_2()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        client.Stop();
        Assert.StartsWith("421 4.3.2", await client.ReadReplyAsync());
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task Shutdown_lets_a_message_in_flight_finish()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.CommandAsync("DATA");
        await client.SendAsync("Subject: x\r\n");
        client.Stop();
        await client.SendAsync("\r\nbody\r\n.\r\n");
        Assert.StartsWith("250 2.0.0", await client.ReadReplyAsync());
        Assert.StartsWith("421 4.3.2", await client.ReadReplyAsync());
        Assert.Single(_handler.Messages);
    }

    [Fact]
    public async Task A_failed_commit_is_reported_to_the_client()
    {
        _handler.CommitReply = new SmtpReply(451, "4.3.0", "disk trouble");
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.CommandAsync("DATA");
        Assert.Equal("451 4.3.0 disk trouble", await client.CommandAsync("x\r\n."));
    }

    [Fact]
    public async Task A_large_message_streams_through_in_pieces_byte_exact()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.CommandAsync("DATA");
        var body = new StringBuilder();
        for (int i = 0; i < 20_000; i++)
        {
            body.Append(i % 7 == 0 ? "." : "").Append("line ").Append(i).Append(" of a long message\r\n");
        }

        string wire = body.ToString().Replace("\r\n.", "\r\n..", StringComparison.Ordinal);
        if (wire.StartsWith('.'))
        {
            wire = "." + wire;
        }

        await client.SendAsync(wire + ".\r\n");
        Assert.StartsWith("250 2.0.0", await client.ReadReplyAsync());
        Assert.Equal(body.ToString(), Assert.Single(_handler.Messages).Body);
    }

    [Fact]
    public async Task Received_header_cannot_be_injected_through_the_ehlo_name()
    {
        await using SmtpTestClient client = await ConnectAsync();
        await client.CommandAsync("EHLO evil(x)\tBcc:victim@x.test;");
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.CommandAsync("DATA");
        await client.CommandAsync("x\r\n.");
        string text = Assert.Single(_handler.Messages).Text;
        string header = text[..text.IndexOf("\r\nx\r\n", StringComparison.Ordinal)];
        Assert.StartsWith("Received: from evil_x__Bcc:victim@x.test_ ([192.0.2.10])", header);
    }
}

public class SubmissionRoleTests
{
    [Fact]
    public async Task Mail_on_a_submission_listener_without_auth_is_530_5_7_0()
    {
        var handler = new MemoryMessageHandler();
        await using SmtpTestClient client = await SmtpTestClient.ConnectAsync(handler, role: ListenerRole.Submission);
        await client.GreetAsync();
        Assert.Equal("530 5.7.0 Authentication required", await client.CommandAsync("MAIL FROM:<a@b.test>"));
    }
}
