using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;
using SlimMail.Auth;
using SlimMail.Delivery;
using SlimMail.Pop3;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;
using SlimMail.Transport;

namespace SlimMail.Tests.Core.Fuzzing;

/// <summary>
/// Short fuzzing runs of every parser on the committed corpus (a few seconds each in CI).
/// SLIMMAIL_FUZZ_SECONDS=600 runs each target that long; SLIMMAIL_FUZZ_SEED picks the seed.
/// </summary>
public sealed partial class FuzzTests(ITestOutputHelper output)
{
    private static TimeSpan Duration => TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("SLIMMAIL_FUZZ_SECONDS"), out int s) ? s : 3);

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("SLIMMAIL_FUZZ_SEED"), out int s) ? s : Environment.TickCount;

    [GeneratedRegex(@"^[2-5]\d\d[ -]")]
    private static partial Regex SmtpReplyLine();

    [Fact]
    public void Smtp_sessions_answer_every_input_with_well_formed_replies_and_never_store_a_smuggled_message()
    {
        int seed = Seed;
        var fuzzer = new MutationFuzzer(MutationFuzzer.LoadCorpus("smtp"), seed);
        int runs = fuzzer.Run(Duration, CheckSmtpSession);
        Report("smtp", runs, seed);
    }

    /// <summary>Inputs the fuzzer once failed on, replayed every run.</summary>
    [Theory]
    // 2026-12-06: "dATA" before "DATA"; the check's count skipped the first (an exact match was searched first).
    [InlineData("RUhMTyBjbGllbnQudGVzdA0KTUFJTCBGUk9NOjxhQGIudGVzdD4gU0laRT0xMDAgQk9EWT04QklUTUlNRQ0KUkNQVCBUTzo8eEB5LnRlc3Q+DQpkQVRBDQpTdWJqZWN0OiBoaQ0KDQouLmRvdA0KYm9keQ0KLg0KUUxPIGNsaWVudC50ZXN0DQpNQUlMIEZST006PGFAYi50ZXN0PiBTSVpFPTEwMCBCT0RZPThCSVRNSU1FDQpSQ1BUIFRPOjx4QHkudGVzdD4NCkRBVEENClN1YmplY3Q6IGhpDQoNCi4uZG90DQpib2R5DQouDQpRVUlUDQo=")]
    public void Smtp_inputs_the_fuzzer_once_failed_on_pass_the_same_checks(string base64) => CheckSmtpSession(Convert.FromBase64String(base64));

    // Every reply well formed; no more messages stored than DATA/BDAT commands (in any letter case); none with a
    // bare CR, bare LF or NUL.
    private static void CheckSmtpSession(byte[] input)
    {
        var handler = new MemoryMessageHandler();
        var toServer = new Pipe();
        var toClient = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var connection = new PipeConnection(toServer, toClient, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 1));
        var info = new SmtpSessionInfo(connection.RemoteEndPoint, connection.LocalEndPoint, ListenerRole.Mx);
        var options = new SmtpServerOptions { Hostname = "mx.test", MaxMessageSize = 4096, CommandTimeout = TimeSpan.FromSeconds(5), DataTimeout = TimeSpan.FromSeconds(5) };
        var session = new SmtpSession(connection, info, options, handler, NullLogger.Instance, CancellationToken.None, CancellationToken.None);
        toServer.Writer.Write(input);
        toServer.Writer.Complete();
        Assert.True(session.RunAsync().Wait(TimeSpan.FromSeconds(10)), "session did not end");
        toClient.Writer.Complete();
        string replies = Encoding.UTF8.GetString(ReadAll(toClient.Reader));
        foreach (string line in replies.Split("\r\n", StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.Matches(SmtpReplyLine(), line);
        }

        int ends = Count(input, "DATA"u8) + Count(input, "BDAT"u8);
        Assert.True(handler.Messages.Count <= ends, "more messages than DATA/BDAT commands");
        foreach (MemoryMessageHandler.StoredMessage message in handler.Messages)
        {
            // A committed message never carries a bare CR, a bare LF or a NUL: the smuggling material.
            string text = message.Text;
            Assert.DoesNotContain('\0', text);
            Assert.Equal(-1, text.Replace("\r\n", "", StringComparison.Ordinal).IndexOfAny(['\r', '\n']));
        }
    }

    [Fact]
    public void The_address_parser_never_throws_and_round_trips_what_it_accepts()
    {
        var fuzzer = new MutationFuzzer(MutationFuzzer.LoadCorpus("address"), Seed);
        int runs = fuzzer.Run(Duration, input =>
        {
            if (AddressParser.TryParsePath(input, allowNull: true, allowBarePostmaster: true, out MailAddress? address, out int used) && address is { IsBarePostmaster: false })
            {
                Assert.InRange(used, 2, input.Length);
                byte[] again = Encoding.UTF8.GetBytes("<" + address + ">");
                Assert.True(AddressParser.TryParsePath(again, false, false, out MailAddress? reparsed, out _), address.ToString());
                Assert.Equal(address.LocalPart, reparsed!.LocalPart);
                Assert.Equal(address.Domain, reparsed.Domain);
            }
        }, maxLength: 1024);
        Report("address", runs, Seed);
    }

    [Fact]
    public void The_data_decoder_gives_the_same_result_however_the_input_is_split()
    {
        var random = new Random(Seed);
        var fuzzer = new MutationFuzzer(MutationFuzzer.LoadCorpus("smtp"), Seed);
        int runs = fuzzer.Run(Duration, input =>
        {
            (int consumed, byte[] output, bool bare) whole = Decode(input, input.Length + 1);
            (int consumed, byte[] output, bool bare) pieces = Decode(input, 1 + random.Next(16));
            Assert.Equal(whole.consumed, pieces.consumed);
            Assert.Equal(whole.output, pieces.output);
            Assert.Equal(whole.bare, pieces.bare);
        });
        Report("data decoder", runs, Seed);
    }

    [Fact]
    public void The_proxy_header_parser_never_throws_and_never_consumes_more_than_it_got()
    {
        var fuzzer = new MutationFuzzer(MutationFuzzer.LoadCorpus("proxy"), Seed);
        int runs = fuzzer.Run(Duration, input =>
        {
            if (ProxyProtocol.TryParse(new ReadOnlySequence<byte>(input), out _, out long consumed) == ProxyProtocol.ParseStatus.Done)
            {
                Assert.InRange(consumed, 1, input.Length);
            }
        }, maxLength: 4096);
        Report("proxy", runs, Seed);
    }

    [Fact]
    public void Pop3_sessions_survive_any_input_and_only_quit_deletes()
    {
        string root = Directory.CreateTempSubdirectory("slimmail-fuzz-pop3-").FullName;
        try
        {
            var mailbox = new MaildirMailbox(Path.Combine(root, "local"));
            mailbox.EnsureCreated();
            for (int i = 0; i < 3; i++)
            {
                File.WriteAllText(Path.Combine(mailbox.Cur, $"17000000{i}.M1P1Q{i}.h,S=20,W=22:2,"), $"Subject: {i}\n\n.line {i}\n");
            }

            var store = new MaildirMailboxStore(_ => mailbox);
            var options = new Pop3ServerOptions
            {
                Authenticator = new PasswordAuthenticator(new Dictionary<string, string>(), user => user == "local" ? "secret" : null),
                AuthThrottle = new AuthThrottle(maxFailures: int.MaxValue, delayStep: TimeSpan.Zero),
            };
            var fuzzer = new MutationFuzzer(MutationFuzzer.LoadCorpus("pop3"), Seed);
            int runs = fuzzer.Run(Duration, input =>
            {
                var toServer = new Pipe();
                var toClient = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
                var connection = new PipeConnection(toServer, toClient, new IPEndPoint(IPAddress.Loopback, 1));
                var session = new Pop3Session(connection, connection.RemoteEndPoint, options, store, NullLogger.Instance, CancellationToken.None);
                toServer.Writer.Write(input);
                toServer.Writer.Complete();
                Assert.True(session.RunAsync().Wait(TimeSpan.FromSeconds(10)), "session did not end");
                toClient.Writer.Complete();
                string replies = Encoding.UTF8.GetString(ReadAll(toClient.Reader));
                Assert.True(replies.StartsWith("+OK", StringComparison.Ordinal), replies);
                if (!Encoding.ASCII.GetString(input).Contains("QUIT", StringComparison.OrdinalIgnoreCase))
                {
                    Assert.Equal(3, Directory.GetFiles(mailbox.Cur).Length);
                }

                // Put back what a QUIT deleted, so every run starts from the same mailbox.
                for (int i = 0; i < 3; i++)
                {
                    string path = Path.Combine(mailbox.Cur, $"17000000{i}.M1P1Q{i}.h,S=20,W=22:2,");
                    if (!File.Exists(path))
                    {
                        File.WriteAllText(path, $"Subject: {i}\n\n.line {i}\n");
                    }
                }
            }, maxLength: 4096);
            Report("pop3", runs, Seed);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private void Report(string target, int runs, int seed)
    {
        output.WriteLine($"{target}: {runs} inputs in {Duration.TotalSeconds} s (seed {seed})");
        Assert.True(runs > 0);
    }

    private static (int, byte[], bool) Decode(byte[] input, int piece)
    {
        var decoder = default(DotDataDecoder);
        var output = new List<byte>();
        var buffer = new byte[64];
        int offset = 0;
        while (offset < input.Length)
        {
            int end = Math.Min(input.Length, offset + piece);
            OperationStatus status;
            do
            {
                status = decoder.Decode(input.AsSpan(offset, end - offset), buffer, out int used, out int written);
                offset += used;
                output.AddRange(buffer[..written]);
                if (status == OperationStatus.Done)
                {
                    return (offset, output.ToArray(), decoder.SawBareLineEnding || decoder.SawNul);
                }
            }
            while (status == OperationStatus.DestinationTooSmall);
        }

        return (offset, output.ToArray(), decoder.SawBareLineEnding || decoder.SawNul);
    }

    private static int Count(byte[] input, ReadOnlySpan<byte> word)
    {
        int count = 0;
        ReadOnlySpan<byte> rest = input;
        int at;
        while ((at = IndexOfIgnoreCase(rest, word)) >= 0)
        {
            count++;
            rest = rest[(at + word.Length)..];
        }

        return count;
    }

    private static int IndexOfIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> word)
    {
        for (int i = 0; i + word.Length <= text.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(text.Slice(i, word.Length), word))
            {
                return i;
            }
        }

        return -1;
    }

    private static byte[] ReadAll(PipeReader reader)
    {
        using var stream = reader.AsStream();
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
