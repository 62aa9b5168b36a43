using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace SlimMail.Transport;

/// <summary>
/// Reads protocol command lines (SMTP, POP3) from a pipe into one fixed buffer: no allocation per line,
/// and a line longer than the buffer is skipped to its end without being kept. Pending replies are
/// flushed only when no complete line is buffered, which batches replies to pipelined commands.
/// </summary>
public sealed class LineReader
{
    private readonly byte[] _line;
    private int _length;

    /// <summary>Creates a reader for lines of at most <paramref name="maxLength"/> bytes, line ending included.</summary>
    public LineReader(int maxLength) => _line = new byte[maxLength];

    /// <summary>The last line read, without its CRLF (or bare LF).</summary>
    public ReadOnlySpan<byte> Line => _line.AsSpan(0, _length);

    /// <summary>Reads the next line; <paramref name="flush"/> runs before waiting on the network.</summary>
    /// <remarks>
    /// A read that waits reuses a pooled state machine rather than allocating one per line, so the returned
    /// <see cref="ValueTask{TResult}"/> must be awaited exactly once (as any ValueTask should be).
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<LineReadStatus> ReadAsync(PipeReader input, Func<CancellationToken, ValueTask> flush, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(flush);
        bool tooLong = false;
        bool mayHaveLine = true;
        while (true)
        {
            ReadResult result;
            if (!mayHaveLine || !input.TryRead(out result))
            {
                await flush(cancellationToken).ConfigureAwait(false);
                result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            }

            ReadOnlySequence<byte> buffer = result.Buffer;
            SequencePosition? lf = buffer.PositionOf((byte)'\n');
            if (lf is not null)
            {
                ReadOnlySequence<byte> line = buffer.Slice(0, lf.Value);
                SequencePosition next = buffer.GetPosition(1, lf.Value);
                if (tooLong || line.Length >= _line.Length)
                {
                    input.AdvanceTo(next);
                    return LineReadStatus.TooLong;
                }

                line.CopyTo(_line);
                _length = (int)line.Length;
                if (_length > 0 && _line[_length - 1] == (byte)'\r')
                {
                    _length--;
                }

                input.AdvanceTo(next);
                return LineReadStatus.Line;
            }

            if (buffer.Length >= _line.Length)
            {
                tooLong = true;
                input.AdvanceTo(buffer.End);
            }
            else
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (result.IsCompleted)
            {
                return LineReadStatus.Closed;
            }

            mayHaveLine = false;
        }
    }
}

/// <summary>What <see cref="LineReader.ReadAsync"/> found.</summary>
public enum LineReadStatus
{
    /// <summary>A complete line is in <see cref="LineReader.Line"/>.</summary>
    Line,

    /// <summary>A line over the limit was skipped.</summary>
    TooLong,

    /// <summary>The client closed the connection.</summary>
    Closed,
}
