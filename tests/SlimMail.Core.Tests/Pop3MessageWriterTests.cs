using System.IO.Pipelines;
using System.Text;
using SlimMail.Pop3;

namespace SlimMail.Tests.Core;

public class Pop3MessageWriterTests
{
    private static async Task<string> WriteAsync(string stored, int? bodyLines = null)
    {
        var pipe = new Pipe();
        await Pop3MessageWriter.WriteAsync(new MemoryStream(Encoding.UTF8.GetBytes(stored)), "+OK\r\n"u8.ToArray(), pipe.Writer, bodyLines, default);
        await pipe.Writer.CompleteAsync();
        using var reader = new StreamReader(pipe.Reader.AsStream(), Encoding.UTF8);
        string sent = await reader.ReadToEndAsync();
        Assert.StartsWith("+OK\r\n", sent, StringComparison.Ordinal);
        return sent["+OK\r\n".Length..];
    }

    [Theory]
    [InlineData("a\nb\n", "a\r\nb\r\n")]
    [InlineData("a\r\nb\r\n", "a\r\nb\r\n")]
    [InlineData(".x\n..y\nz.\n", "..x\r\n...y\r\nz.\r\n")]
    [InlineData("no final newline", "no final newline\r\n")]
    [InlineData("", "")]
    public async Task Messages_go_out_with_crlf_and_byte_stuffing(string stored, string sent)
    {
        Assert.Equal(sent, await WriteAsync(stored));
    }

    [Theory]
    [InlineData(0, "H: 1\r\nH: 2\r\n\r\n")]
    [InlineData(2, "H: 1\r\nH: 2\r\n\r\nl1\r\n..l2\r\n")]
    [InlineData(10, "H: 1\r\nH: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n")]
    public async Task Top_sends_the_headers_and_n_body_lines(int lines, string sent)
    {
        Assert.Equal(sent, await WriteAsync("H: 1\nH: 2\n\nl1\n.l2\nl3\n", lines));
    }

    [Theory]
    [InlineData("a\nb\n")]
    [InlineData("a\r\nb\n")]
    [InlineData("no final newline")]
    [InlineData(".dots\n..\n")]
    public async Task The_counted_size_is_what_is_sent_before_stuffing(string stored)
    {
        string path = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(path, stored);
            string sent = await WriteAsync(stored);
            string unstuffed = string.Join("\r\n", sent.Split("\r\n").Select(l => l.StartsWith('.') ? l[1..] : l));
            Assert.Equal(Encoding.UTF8.GetByteCount(unstuffed), Pop3MessageWriter.CountCrlfSize(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_100_KB_message_leaves_with_its_status_line_in_two_large_writes_not_4_KB_pieces()
    {
        // The connection's pipe writer as SocketConnection makes it: 4 KB minimum segments over the stream.
        var socket = new CountingStream();
        PipeWriter output = PipeWriter.Create(socket, new StreamPipeWriterOptions(minimumBufferSize: 4096, leaveOpen: true));
        byte[] stored = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(new string('x', 99) + "\n", 1000)));

        await Pop3MessageWriter.WriteAsync(new MemoryStream(stored), "+OK 101000 octets\r\n"u8.ToArray(), output, null, default);
        await output.FlushAsync();

        Assert.Equal("+OK 101000 octets\r\n".Length + 101_000, socket.Length);
        Assert.Equal(2, socket.Writes);
        Assert.StartsWith("+OK 101000 octets\r\nxxx", Encoding.ASCII.GetString(socket.ToArray(), 0, 24), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_message_still_gets_its_status_line()
    {
        var pipe = new Pipe();
        await Pop3MessageWriter.WriteAsync(new MemoryStream([]), "+OK 0 octets\r\n"u8.ToArray(), pipe.Writer, null, default);
        await pipe.Writer.CompleteAsync();
        using var reader = new StreamReader(pipe.Reader.AsStream(), Encoding.ASCII);
        Assert.Equal("+OK 0 octets\r\n", await reader.ReadToEndAsync());
    }

    private sealed class CountingStream : MemoryStream
    {
        public int Writes { get; private set; }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes++;
            return base.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Writes++;
            return base.WriteAsync(buffer, offset, count, cancellationToken);
        }
    }
}
