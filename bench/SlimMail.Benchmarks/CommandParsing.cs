using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using SlimMail.Pop3;
using SlimMail.Smtp;
using SlimMail.Transport;

namespace SlimMail.Benchmarks;

/// <summary>SMTP command lines read from a pipe by the LineReader and split into verb and argument.</summary>
[MemoryDiagnoser]
public class CommandParsing
{
    private const int Batches = 250;
    private static readonly byte[] Commands = "EHLO client.example.test\r\nMAIL FROM:<sender@example.test> SIZE=1024 BODY=8BITMIME\r\nRCPT TO:<rcpt@example.test>\r\nNOOP\r\n"u8.ToArray();
    private readonly LineReader _lines = new(2048);
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));

    /// <summary>Per operation: one command line (1,000 lines per invocation, written to the pipe first).</summary>
    [Benchmark(OperationsPerInvoke = Batches * 4)]
    public async Task<int> ReadAndParseLine()
    {
        for (int i = 0; i < Batches; i++)
        {
            Commands.CopyTo(_pipe.Writer.GetSpan(Commands.Length));
            _pipe.Writer.Advance(Commands.Length);
        }

        await _pipe.Writer.FlushAsync();
        int verbs = 0;
        for (int i = 0; i < Batches * 4; i++)
        {
            await _lines.ReadAsync(_pipe.Reader, static _ => default, default);
            verbs += (int)SmtpCommandParser.Parse(_lines.Line, out _);
        }

        return verbs;
    }
}

/// <summary>POP3 command lines, as a client fetching message by message sends them, read and split into verb and argument.</summary>
[MemoryDiagnoser]
public class Pop3CommandParsing
{
    private const int Batches = 250;
    private static readonly byte[] Commands = "LIST 1\r\nUIDL 1\r\nRETR 1\r\nDELE 1\r\n"u8.ToArray();
    private readonly LineReader _lines = new(1024);
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));

    /// <summary>Per operation: one command line (1,000 lines per invocation, written to the pipe first).</summary>
    [Benchmark(OperationsPerInvoke = Batches * 4)]
    public async Task<int> ReadAndParseLine()
    {
        for (int i = 0; i < Batches; i++)
        {
            Commands.CopyTo(_pipe.Writer.GetSpan(Commands.Length));
            _pipe.Writer.Advance(Commands.Length);
        }

        await _pipe.Writer.FlushAsync();
        int verbs = 0;
        for (int i = 0; i < Batches * 4; i++)
        {
            await _lines.ReadAsync(_pipe.Reader, static _ => default, default);
            verbs += (int)Pop3CommandParser.Parse(_lines.Line, out _);
        }

        return verbs;
    }
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
