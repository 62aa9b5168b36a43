using System.Buffers;
using System.IO.Pipelines;
using SlimMail.Delivery;

namespace SlimMail.Pop3;

/// <summary>
/// Sends a stored message as a POP3 multi-line response body (RFC 1939 §3): CRLF line endings, a '.'
/// doubled at the start of a line, a final CRLF if the message lacks one. Streams in 64 KB pieces,
/// flushing each, so a large message is never held in memory.
/// </summary>
internal static class Pop3MessageWriter
{
    private const int ChunkSize = 64 * 1024;

    /// <summary>
    /// Writes <paramref name="statusLine"/> and the message; with <paramref name="bodyLines"/> set, only the headers,
    /// the blank line and that many body lines (TOP). Output is flushed only once 64 KB are pending, so a small
    /// message, its status line and its terminator leave in one write; a large one's status line leaves with its
    /// first 64 KB, not in a packet of its own that wakes the client for 20 bytes.
    /// </summary>
    public static async ValueTask WriteAsync(Stream message, ReadOnlyMemory<byte> statusLine, PipeWriter output, int? bodyLines, CancellationToken cancellationToken)
    {
        byte[] input = ArrayPool<byte>.Shared.Rent(ChunkSize);
        byte[] converted = ArrayPool<byte>.Shared.Rent((2 * ChunkSize) + 4);
        try
        {
            var state = new State { AtLineStart = true, InHeaders = true, BodyLinesLeft = bodyLines ?? int.MaxValue };
            int n;
            // Messages are read from the page cache; a synchronous read is cheaper than an async hop.
            while (!state.Done && (n = message.Read(input, 0, ChunkSize)) > 0)
            {
                int written = Convert(input.AsSpan(0, n), converted, ref state);
                // One buffer of the pipe for the whole piece: PipeWriter.Write would split it into the pipe's
                // 4 KB minimum segments, and each segment leaves in a send(2) of its own.
                int length = statusLine.Length + written;
                Span<byte> buffer = output.GetSpan(length);
                statusLine.Span.CopyTo(buffer);
                converted.AsSpan(0, written).CopyTo(buffer[statusLine.Length..]);
                output.Advance(length);
                statusLine = default;
                if (!output.CanGetUnflushedBytes || output.UnflushedBytes >= ChunkSize)
                {
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            if (!statusLine.IsEmpty)
            {
                output.Write(statusLine.Span); // an empty message
            }

            if (state.PendingCr && !state.Done)
            {
                output.Write("\r"u8);
            }

            if (!state.AtLineStart && !state.Done)
            {
                output.Write("\r\n"u8);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(input);
            ArrayPool<byte>.Shared.Return(converted);
        }
    }

    /// <summary>The size of a file's message with CRLF line endings, as <see cref="WriteAsync"/> sends it (without stuffing).</summary>
    public static long CountCrlfSize(string path)
    {
        using var file = new MessageFileStream(path);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            long size = 0;
            byte previous = (byte)'\n';
            int n;
            while ((n = file.Read(buffer, 0, ChunkSize)) > 0)
            {
                ReadOnlySpan<byte> span = buffer.AsSpan(0, n);
                size += n;
                for (int i = span.IndexOf((byte)'\n'); i >= 0; i = NextLf(span, i))
                {
                    byte before = i > 0 ? span[i - 1] : previous;
                    if (before != (byte)'\r')
                    {
                        size++;
                    }
                }

                previous = span[^1];
            }

            return previous == (byte)'\n' ? size : size + 2;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static int NextLf(ReadOnlySpan<byte> span, int i)
    {
        int next = span[(i + 1)..].IndexOf((byte)'\n');
        return next < 0 ? -1 : i + 1 + next;
    }

    private struct State
    {
        public bool AtLineStart;
        public bool PendingCr;
        public bool InHeaders;
        public bool LineEmpty;
        public int BodyLinesLeft;
        public bool Done;
    }

    // Copies runs between line breaks with vectorised searches and copies; only CR, LF and a leading '.'
    // are looked at one by one.
    private static int Convert(ReadOnlySpan<byte> input, Span<byte> output, ref State state)
    {
        int o = 0;
        if (state.InHeaders == false && state.BodyLinesLeft <= 0)
        {
            state.Done = true;
            return 0;
        }

        int i = 0;
        while (i < input.Length)
        {
            if (state.PendingCr)
            {
                state.PendingCr = false;
                if (input[i] != (byte)'\n')
                {
                    // A CR not followed by LF goes out as it came.
                    output[o++] = (byte)'\r';
                    state.LineEmpty = false;
                }
                else
                {
                    i++;
                    if (EndLine(output, ref o, ref state))
                    {
                        return o;
                    }

                    continue;
                }
            }

            if (state.AtLineStart && input[i] == (byte)'.')
            {
                output[o++] = (byte)'.';
            }

            ReadOnlySpan<byte> rest = input[i..];
            int stop = rest.IndexOfAny((byte)'\r', (byte)'\n');
            ReadOnlySpan<byte> run = stop < 0 ? rest : rest[..stop];
            if (!run.IsEmpty)
            {
                run.CopyTo(output[o..]);
                o += run.Length;
                i += run.Length;
                state.AtLineStart = false;
                state.LineEmpty = false;
            }

            if (stop < 0)
            {
                break;
            }

            byte b = input[i++];
            if (b == (byte)'\r')
            {
                state.PendingCr = true;
                continue;
            }

            if (EndLine(output, ref o, ref state))
            {
                return o;
            }
        }

        return o;
    }

    // Writes CRLF for a line break; true when TOP has sent all the body lines it asked for.
    private static bool EndLine(Span<byte> output, ref int o, ref State state)
    {
        output[o++] = (byte)'\r';
        output[o++] = (byte)'\n';
        if (state.InHeaders)
        {
            if (state.LineEmpty || state.AtLineStart)
            {
                state.InHeaders = false;
            }
        }
        else
        {
            state.BodyLinesLeft--;
        }

        state.AtLineStart = true;
        state.LineEmpty = true;
        if (!state.InHeaders && state.BodyLinesLeft <= 0)
        {
            state.Done = true;
            return true;
        }

        return false;
    }
}
