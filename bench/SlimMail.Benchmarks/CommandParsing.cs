using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using SlimMail.Smtp;
using SlimMail.Transport;

namespace SlimMail.Benchmarks;

/// <summary>One SMTP command line: read from a pipe, split into verb and argument, the path parsed.</summary>
[MemoryDiagnoser]
public class CommandParsing
{
    private static readonly byte[] Commands = "EHLO client.example.test\r\nMAIL FROM:<sender@example.test> SIZE=1024 BODY=8BITMIME\r\nRCPT TO:<rcpt@example.test>\r\nNOOP\r\n"u8.ToArray();
    private readonly LineReader _lines = new(2048);
    private Pipe _pipe = new();

    [IterationSetup]
    public void Setup() => _pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0));

    /// <summary>Four command lines through the LineReader and the verb parser (per iteration: 1,000 × 4 lines).</summary>
    [Benchmark(OperationsPerInvoke = 4000)]
    public async Task<int> ReadAndParseLines()
    {
        for (int i = 0; i < 1000; i++)
        {
            await _pipe.Writer.WriteAsync(Commands);
        }

        int verbs = 0;
        for (int i = 0; i < 4000; i++)
        {
            await _lines.ReadAsync(_pipe.Reader, static _ => default, default);
            verbs += (int)SmtpCommandParser.Parse(_lines.Line, out _);
        }

        return verbs;
    }

    /// <summary>A MAIL FROM path with parameters (the address object is the one allocation a transaction keeps).</summary>
    [Benchmark]
    public bool ParseMailPath()
    {
        AddressParser.TryParsePath("<sender@example.test> SIZE=1024"u8, allowNull: true, allowBarePostmaster: false, out MailAddress? address, out int _);
        return address is not null;
    }
}
