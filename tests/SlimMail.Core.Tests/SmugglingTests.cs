using System.Buffers;
using System.Text;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;

namespace SlimMail.Tests.Core;

/// <summary>
/// SMTP smuggling (CVE-2023-51764, -51765, -51766): a message that hides a fake end of data followed by
/// a second transaction. Only &lt;CRLF&gt;.&lt;CRLF&gt; ends data here, and a message with a bare CR or LF
/// is rejected whole, so no second message may ever appear.
/// </summary>
public class SmugglingTests
{
    public static TheoryData<string, string> EndOfDataVariants => new()
    {
        { "LF.LF", "\n.\n" },
        { "LF.CRLF", "\n.\r\n" },
        { "CR.CR", "\r.\r" },
        { "CRLF.LF", "\r\n.\n" },
        { "CRLF.CR", "\r\n.\r" },
        { "LF.CR", "\n.\r" },
        { "CR.LF", "\r.\n" },
        { "CRLF NUL .CRLF", "\r\n\0.\r\n" },
        { "bare LF in a line", "\nX" },
        { "bare CR in a line", "\rX" },
    };

    private const string Smuggled = "MAIL FROM:<admin@bank.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n";

    [Theory]
    [MemberData(nameof(EndOfDataVariants))]
    public async Task Smuggled_transaction_in_data_never_becomes_a_second_message(string name, string variant)
    {
        _ = name;
        var handler = new MemoryMessageHandler();
        await using SmtpTestClient client = await SmtpTestClient.ConnectAsync(handler);
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        Assert.StartsWith("354", await client.CommandAsync("DATA"));
        await client.SendAsync("Subject: first\r\n\r\nhello" + variant + Smuggled + "\r\n.\r\n");
        Assert.StartsWith("550 5.", await client.ReadReplyAsync());
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
        Assert.Empty(handler.Messages);
    }

    [Theory]
    [MemberData(nameof(EndOfDataVariants))]
    public async Task Smuggled_transaction_in_bdat_never_becomes_a_second_message(string name, string variant)
    {
        _ = name;
        var handler = new MemoryMessageHandler();
        await using SmtpTestClient client = await SmtpTestClient.ConnectAsync(handler);
        await client.GreetAsync();
        await client.CommandAsync("MAIL FROM:<a@b.test>");
        await client.CommandAsync("RCPT TO:<x@y.test>");
        byte[] chunk = Encoding.UTF8.GetBytes("Subject: first\r\n\r\nhello" + variant + Smuggled + "\r\n.\r\n");
        await client.SendAsync(Encoding.ASCII.GetBytes($"BDAT {chunk.Length} LAST\r\n").Concat(chunk).ToArray());
        Assert.StartsWith("550 5.", await client.ReadReplyAsync());
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
        Assert.Empty(handler.Messages);
    }

    [Theory]
    [MemberData(nameof(EndOfDataVariants))]
    public void Decoder_finds_only_the_real_end_whatever_the_split(string name, string variant)
    {
        _ = name;
        byte[] wire = Encoding.UTF8.GetBytes("Subject: first\r\n\r\nhello" + variant + Smuggled + "\r\n.\r\nQUIT\r\n");
        int realEnd = wire.Length - "QUIT\r\n".Length;
        for (int split = 0; split <= wire.Length; split++)
        {
            var decoder = default(DotDataDecoder);
            var output = new byte[wire.Length];
            int consumed = 0;
            int written = 0;
            bool done = false;
            foreach ((int start, int end) in new[] { (0, split), (split, wire.Length) })
            {
                int offset = start;
                while (offset < end && !done)
                {
                    OperationStatus status = decoder.Decode(wire.AsSpan(offset, end - offset), output.AsSpan(written), out int used, out int w);
                    offset += used;
                    written += w;
                    done = status == OperationStatus.Done;
                    if (status == OperationStatus.NeedMoreData)
                    {
                        break;
                    }
                }

                consumed = offset;
                if (done)
                {
                    break;
                }
            }

            Assert.True(done, $"split {split}: end not found");
            Assert.Equal(realEnd, consumed);
            Assert.True(decoder.SawBareLineEnding || decoder.SawNul, $"split {split}: not flagged");
        }
    }

    [Fact]
    public async Task Pieces_split_at_every_byte_still_give_one_rejection_and_no_message()
    {
        byte[] wire = Encoding.UTF8.GetBytes("Subject: first\r\n\r\nhello\n.\n" + Smuggled + "\r\n.\r\n");
        for (int split = 1; split < wire.Length; split += 3)
        {
            var handler = new MemoryMessageHandler();
            await using SmtpTestClient client = await SmtpTestClient.ConnectAsync(handler);
            await client.GreetAsync();
            await client.CommandAsync("MAIL FROM:<a@b.test>");
            await client.CommandAsync("RCPT TO:<x@y.test>");
            await client.CommandAsync("DATA");
            await client.SendAsync(wire[..split]);
            await Task.Yield();
            await client.SendAsync(wire[split..]);
            Assert.StartsWith("550 5.5.2", await client.ReadReplyAsync());
            Assert.Empty(handler.Messages);
        }
    }

    [Fact]
    public void Decoder_removes_dot_stuffing_and_keeps_crlf()
    {
        var decoder = default(DotDataDecoder);
        byte[] wire = "..a\r\nb\r\n...\r\n.\r\n"u8.ToArray();
        var output = new byte[64];
        Assert.Equal(OperationStatus.Done, decoder.Decode(wire, output, out int consumed, out int written));
        Assert.Equal(wire.Length, consumed);
        Assert.Equal(".a\r\nb\r\n..\r\n", Encoding.ASCII.GetString(output, 0, written));
        Assert.False(decoder.SawBareLineEnding);
    }

    [Fact]
    public void Decoder_stops_when_the_output_is_full_and_resumes()
    {
        var decoder = default(DotDataDecoder);
        byte[] wire = "abcdef\r\nghij\r\n.\r\n"u8.ToArray();
        var output = new List<byte>();
        int offset = 0;
        while (true)
        {
            var small = new byte[3];
            OperationStatus status = decoder.Decode(wire.AsSpan(offset), small, out int used, out int written);
            offset += used;
            output.AddRange(small[..written]);
            if (status == OperationStatus.Done)
            {
                break;
            }

            Assert.Equal(OperationStatus.DestinationTooSmall, status);
        }

        Assert.Equal("abcdef\r\nghij\r\n", Encoding.ASCII.GetString(output.ToArray()));
    }
}
