using System.Buffers;
using System.Text;

namespace SlimMail.Host.Logging;

/// <summary>
/// Formatted log lines on their way to stdout/stderr. One thread writes them: it sleeps while nothing is queued, is
/// woken by the first line, writes everything queued in one write(2) per stream, then lingers
/// <see cref="Linger"/> before looking again, so that under load it wakes a few hundred times a second instead of
/// once per line. A lone line still goes out at once. A full queue makes loggers wait rather than drop or grow.
/// </summary>
internal sealed class ConsoleLogQueue : IDisposable
{
    /// <summary>How long the writer lets lines gather after a batch (a line's extra delay under load).</summary>
    internal static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(2);

    private const int MaxQueued = 10_000;
    private const int MaxWrite = 64 * 1024;
    private static readonly TimeSpan ShutdownWait = TimeSpan.FromSeconds(2);
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly Stream _out;
    private readonly Stream _error;
    private readonly object _gate = new();
    private readonly Lock _writeLock = new();
    private readonly Thread _writer;
    private List<Line> _queued = [];
    private List<Line> _writing = [];
    private bool _writerAsleep;
    private bool _completed;

    public ConsoleLogQueue(Stream standardOutput, Stream standardError)
    {
        _out = standardOutput;
        _error = standardError;
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "SlimMail log writer" };
        _writer.Start();
    }

    /// <summary>Queues a formatted line (with its newline); waits while the queue is full.</summary>
    public void Enqueue(string text, bool toStandardError)
    {
        lock (_gate)
        {
            while (_queued.Count >= MaxQueued && !_completed)
            {
                Monitor.Wait(_gate);
            }

            if (!_completed)
            {
                _queued.Add(new Line(text, toStandardError));
                if (_writerAsleep)
                {
                    _writerAsleep = false;
                    Monitor.PulseAll(_gate);
                }

                return;
            }
        }

        // After shutdown began, a late line is written by its caller.
        lock (_writeLock)
        {
            Write([new Line(text, toStandardError)]);
        }
    }

    /// <summary>Writes what is queued and stops the writer.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _completed = true;
            Monitor.PulseAll(_gate);
        }

        _writer.Join(ShutdownWait);
    }

    private void WriteLoop()
    {
        while (true)
        {
            bool last;
            lock (_gate)
            {
                while (_queued.Count == 0 && !_completed)
                {
                    _writerAsleep = true;
                    Monitor.Wait(_gate);
                }

                if (_queued.Count == 0)
                {
                    return;
                }

                bool wasFull = _queued.Count >= MaxQueued;
                (_queued, _writing) = (_writing, _queued);
                last = _completed;
                if (wasFull)
                {
                    Monitor.PulseAll(_gate);
                }
            }

            lock (_writeLock)
            {
                Write(_writing);
            }

            _writing.Clear();
            if (!last)
            {
                Thread.Sleep(Linger);
            }
        }
    }

    private void Write(List<Line> lines)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(MaxWrite);
        try
        {
            WriteTo(_out, lines, toStandardError: false, ref buffer);
            WriteTo(_error, lines, toStandardError: true, ref buffer);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void WriteTo(Stream stream, List<Line> lines, bool toStandardError, ref byte[] buffer)
    {
        int used = 0;
        try
        {
            foreach (Line line in lines)
            {
                if (line.ToStandardError != toStandardError)
                {
                    continue;
                }

                int most = Utf8.GetMaxByteCount(line.Text.Length);
                if (used > 0 && used + most > buffer.Length)
                {
                    stream.Write(buffer, 0, used);
                    used = 0;
                }

                if (most > buffer.Length)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(most);
                }

                used += Utf8.GetBytes(line.Text, 0, line.Text.Length, buffer, used);
            }

            if (used > 0)
            {
                stream.Write(buffer, 0, used);
                stream.Flush();
            }
        }
        catch (IOException)
        {
            // stdout closed or full beyond repair: losing log lines must not stop mail.
        }
    }

    private readonly record struct Line(string Text, bool ToStandardError);
}
