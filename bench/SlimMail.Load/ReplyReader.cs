using System.Net.Sockets;
using System.Text;

namespace SlimMail.Load;

/// <summary>
/// A connection with a read buffer: SMTP replies (multi-line), POP3 status lines and dot-terminated bodies.
/// SMTP replies are read asynchronously (the SMTP load's many sessions), POP3 responses with blocking calls (the
/// POP3 load: one thread per session, as a mail client does, so that the client costs the machine little besides
/// its system calls and the servers' differences show). Line parsing works on what is buffered and is shared.
/// </summary>
internal sealed class ReplyReader(Socket socket) : IDisposable
{
    private readonly byte[] _buffer = new byte[256 * 1024];
    private int _start;
    private int _end;

    public Socket Socket { get; } = socket;

    public async Task SendAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = await Socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
            data = data[n..];
        }
    }

    public void Send(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            data = data[Socket.Send(data, SocketFlags.None)..];
        }
    }

    /// <summary>Reads one SMTP reply (all its lines) and returns its code.</summary>
    public async Task<int> ReadSmtpReplyAsync()
    {
        while (true)
        {
            string line = await ReadLineAsync().ConfigureAwait(false);
            if (line.Length < 3)
            {
                throw new IOException($"malformed reply: {line}");
            }

            if (line.Length == 3 || line[3] != '-')
            {
                return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            }
        }
    }

    public async Task ExpectSmtpAsync(int code, string what)
    {
        int actual = await ReadSmtpReplyAsync().ConfigureAwait(false);
        if (actual != code)
        {
            throw new IOException($"{what}: expected {code}, got {actual}");
        }
    }

    /// <summary>Reads one POP3 status line; throws on -ERR.</summary>
    public string ExpectOk(string what)
    {
        string line = ReadLine();
        return line.StartsWith("+OK", StringComparison.Ordinal) ? line : throw new IOException($"{what}: {line}");
    }

    /// <summary>Consumes a dot-terminated multi-line body, returning its size in bytes (terminator excluded).</summary>
    public long SkipDotBody()
    {
        // The status line's CRLF already went: the body ends at "\r\n.\r\n", or at ".\r\n" right away (an empty body).
        while (_end - _start < 3)
        {
            Fill();
        }

        if (_buffer.AsSpan(_start, 3).SequenceEqual(".\r\n"u8))
        {
            _start += 3;
            return 0;
        }

        // The last four bytes stay buffered until the terminator is found, so that one split across reads is seen whole.
        long size = 0;
        while (true)
        {
            ReadOnlySpan<byte> data = _buffer.AsSpan(_start, _end - _start);
            int end = data.IndexOf("\r\n.\r\n"u8);
            if (end >= 0)
            {
                _start += end + 5;
                return size + end + 2;
            }

            int consumed = Math.Max(0, data.Length - 4);
            size += consumed;
            _start += consumed;
            Fill();
        }
    }

    private async Task<string> ReadLineAsync()
    {
        string? line;
        while ((line = TryReadLine()) is null)
        {
            await FillAsync().ConfigureAwait(false);
        }

        return line;
    }

    private string ReadLine()
    {
        string? line;
        while ((line = TryReadLine()) is null)
        {
            Fill();
        }

        return line;
    }

    private string? TryReadLine()
    {
        int lf = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
        if (lf < 0)
        {
            return null;
        }

        string line = Encoding.ASCII.GetString(_buffer, _start, lf).TrimEnd('\r');
        _start += lf + 1;
        return line;
    }

    private async Task FillAsync() => Filled(await Socket.ReceiveAsync(FreeSpace(), SocketFlags.None).ConfigureAwait(false));

    private void Fill() => Filled(Socket.Receive(FreeSpace().Span, SocketFlags.None));

    private Memory<byte> FreeSpace()
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_end == _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        return _buffer.AsMemory(_end);
    }

    private void Filled(int n)
    {
        if (n == 0)
        {
            throw new IOException("connection closed by the server");
        }

        _end += n;
    }

    public void Dispose() => Socket.Dispose();
}
