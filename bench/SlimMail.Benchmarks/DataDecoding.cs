using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using SlimMail.Smtp;

namespace SlimMail.Benchmarks;

/// <summary>DATA: dot-unstuffing and the smuggling guard over a message, into a fixed body buffer.</summary>
[MemoryDiagnoser]
public class DataDecoding
{
    private byte[] _message = [];
    private readonly byte[] _body = new byte[64 * 1024];

    [Params(1024, 100 * 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var text = new StringBuilder("Subject: bench\r\n\r\n");
        while (text.Length < Size)
        {
            text.Append(text.Length % 7 == 0 ? ".leading dot line\r\n" : "an ordinary line of text in the message body, about seventy characters\r\n");
        }

        text.Append(".\r\n");
        _message = Encoding.ASCII.GetBytes(text.ToString());
    }

    [Benchmark]
    public int Decode()
    {
        var decoder = new DotDataDecoder();
        ReadOnlySpan<byte> input = _message;
        int total = 0;
        while (true)
        {
            OperationStatus status = decoder.Decode(input, _body, out int consumed, out int written);
            total += written;
            input = input[consumed..];
            if (status == OperationStatus.Done || input.IsEmpty)
            {
                return total;
            }
        }
    }
}
