using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using SlimMail.Pop3;
using SlimMail.Smtp;
using SlimMail.Transport;

namespace SlimMail.Benchmarks;

/// <summary>
/// Command lines read from a pipe by the LineReader and split into verb and argument: four lines, 250 times over.
/// </summary>
public abstract class CommandLineParsing
{
    private const int Batches = 250;
    private readonly LineReader _lines = new(2048);
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));

    /// <summary>Four command lines, each ending in CRLF.</summary>
    protected abstract byte[] Commands { get; }

    /// <summary>Per operation: one command line (1,000 lines per invocation, written to the pipe first).</summary>
    [Benchmark(OperationsPerInvoke = Batches * 4)]
    public async Task<int> ReadAndParseLine()
    {
        byte[] commands = Commands;
        for (int i = 0; i < Batches; i++)
        {
            commands.CopyTo(_pipe.Writer.GetSpan(commands.Length));
            _pipe.Writer.Advance(commands.Length);
        }

        await _pipe.Writer.FlushAsync();
        int verbs = 0;
        for (int i = 0; i < Batches * 4; i++)
        {
            await _lines.ReadAsync(_pipe.Reader, static _ => default, default);
            verbs += ParseVerb(_lines.Line);
        }

        return verbs;
    }

    /// <summary>The protocol's verb parser, its verb as a number.</summary>
    protected abstract int ParseVerb(ReadOnlySpan<byte> line);
}

/// <summary>SMTP command lines.</summary>
[MemoryDiagnoser]
public class CommandParsing : CommandLineParsing
{
    private static readonly byte[] Lines = "EHLO client.example.test\r\nMAIL FROM:<sender@example.test> SIZE=1024 BODY=8BITMIME\r\nRCPT TO:<rcpt@example.test>\r\nNOOP\r\n"u8.ToArray();

    /// <inheritdoc />
    protected override byte[] Commands => Lines;

    /// <inheritdoc />
    protected override int ParseVerb(ReadOnlySpan<byte> line) => (int)SmtpCommandParser.Parse(line, out _);
}

/// <summary>POP3 command lines, as a client fetching message by message sends them.</summary>
[MemoryDiagnoser]
public class Pop3CommandParsing : CommandLineParsing
{
    private static readonly byte[] Lines = "LIST 1\r\nUIDL 1\r\nRETR 1\r\nDELE 1\r\n"u8.ToArray();

    /// <inheritdoc />
    protected override byte[] Commands => Lines;

    /// <inheritdoc />
    protected override int ParseVerb(ReadOnlySpan<byte> line) => (int)Pop3CommandParser.Parse(line, out _);
}

/// <summary>A MAIL FROM path: the MailAddress (two strings) is the one allocation a transaction keeps.</summary>
[MemoryDiagnoser]
public class AddressParsing
{
    [Benchmark]
    public bool ParseMailPath()
    {
        AddressParser.TryParsePath("<sender@example.test> SIZE=1024"u8, allowNull: true, allowBarePostmaster: false, out MailAddress? address, out int _);
        return address is not null;
    }
}
