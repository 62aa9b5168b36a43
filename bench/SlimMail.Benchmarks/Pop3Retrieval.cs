using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using SlimMail.Pop3;

namespace SlimMail.Benchmarks;

/// <summary>POP3 RETR of a stored (LF) message: LF → CRLF and byte-stuffing into the connection's pipe.</summary>
[MemoryDiagnoser]
public class Pop3Retrieval
{
    private byte[] _stored = [];
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0));

    [Params(1024, 100 * 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _stored = new byte[Size];
        for (int i = 0; i < _stored.Length; i++)
        {
            _stored[i] = i % 72 == 71 ? (byte)'\n' : i % 72 == 0 ? (byte)'.' : (byte)'y';
        }
    }

    [Benchmark]
    public async Task<long> Retrieve()
    {
        using var message = new MemoryStream(_stored, writable: false);
        await Pop3MessageWriter.WriteAsync(message, "+OK\r\n"u8.ToArray(), _pipe.Writer, null, default);
        await _pipe.Writer.FlushAsync();
        ReadResult read = await _pipe.Reader.ReadAsync();
        long length = read.Buffer.Length;
        _pipe.Reader.AdvanceTo(read.Buffer.End);
        return length;
    }
}
