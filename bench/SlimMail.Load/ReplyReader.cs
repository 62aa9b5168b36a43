using System.Net.Sockets;
using System.Text;

namespace SlimMail.Load;

/// <summary>A connection with a read buffer: SMTP replies (multi-line), POP3 status lines and dot-terminated bodies.</summary>
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
    public async Task<string> ExpectOkAsync(string what)
    {
        string line = await ReadLineAsync().ConfigureAwait(false);
        return line.StartsWith("+OK", StringComparison.Ordinal) ? line : throw new IOException($"{what}: {line}");
    }

    /// <summary>Consumes a dot-terminated multi-line body, returning its size in bytes (terminator excluded).</summary>
    public async Task<long> SkipDotBodyAsync()
    {
        // The status line's CRLF already went: the body ends at "\r\n.\r\n", or at ".\r\n" right away.
        long size = 0;
        int matched = 2; // as if a CRLF had just been seen
        while (true)
        {
            if (_start == _end)
            {
                await FillAsync().ConfigureAwait(false);
            }

            ReadOnlySpan<byte> data = _buffer.AsSpan(_start, _end - _start);
            for (int i = 0; i < data.Length; i++)
            {
                matched = Advance(matched, data[i]);
                if (matched == 5)
                {
                    _start += i + 1;
                    size += i + 1;
                    return size - 3;
                }
            }

            size += data.Length;
            _start = _end;
        }
    }

    // States: 0 nothing, 1 "\r", 2 "\r\n", 3 "\r\n.", 4 "\r\n.\r", 5 done.
    private static int Advance(int state, byte b) => (state, b) switch
    {
        (2, (byte)'.') => 3,
        (3, (byte)'\r') => 4,
        (4, (byte)'\n') => 5,
        (_, (byte)'\r') => 1,
        (1, (byte)'\n') => 2,
        _ => 0,
    };

    private async Task<string> ReadLineAsync()
    {
        while (true)
        {
            int lf = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (lf >= 0)
            {
                string line = Encoding.ASCII.GetString(_buffer, _start, lf).TrimEnd('\r');
                _start += lf + 1;
                return line;
            }

            await FillAsync().ConfigureAwait(false);
        }
    }

    private async Task FillAsync()
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

        int n = await Socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None).ConfigureAwait(false);
        if (n == 0)
        {
            throw new IOException("connection closed by the server");
        }

        _end += n;
    }

    public void Dispose() => Socket.Dispose();
}
