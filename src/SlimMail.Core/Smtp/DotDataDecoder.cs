using System.Buffers;

namespace SlimMail.Smtp;

/// <summary>
/// Decodes the text after <c>DATA</c> (RFC 5321 §4.1.1.4 and §4.5.2): removes dot-stuffing and finds
/// the end of data. Only <c>&lt;CRLF&gt;.&lt;CRLF&gt;</c> ends the message; a bare CR or LF anywhere marks the
/// message as unacceptable but is never taken as a line boundary, so the SMTP smuggling sequences
/// (<c>&lt;LF&gt;.&lt;LF&gt;</c>, <c>&lt;CR&gt;.&lt;CR&gt;</c>, ...) stay inside the message they came with.
/// A byte state machine over spans: no allocation, no per-line work beyond an <c>IndexOfAny</c>.
/// </summary>
internal struct DotDataDecoder
{
    private static readonly SearchValues<byte> Specials = SearchValues.Create("\r\n\0"u8);

    private State _state;

    private enum State : byte
    {
        LineStart,
        Text,
        Cr,
        Dot,
        DotCr,
    }

    /// <summary>True once a CR not followed by LF, or an LF not preceded by CR, was seen.</summary>
    public bool SawBareLineEnding { get; private set; }

    /// <summary>True once a NUL byte was seen; RFC 5321 text never contains one.</summary>
    public bool SawNul { get; private set; }

    /// <summary>When set, the message is being drained: nothing more is written to the output.</summary>
    public bool Discarding { get; set; }

    /// <summary>
    /// Decodes from <paramref name="input"/> into <paramref name="output"/>.
    /// Returns <see cref="OperationStatus.Done"/> when the end of data was consumed,
    /// <see cref="OperationStatus.NeedMoreData"/> when all input was used, or
    /// <see cref="OperationStatus.DestinationTooSmall"/> when the output filled up first.
    /// </summary>
    public OperationStatus Decode(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written)
    {
        int i = 0;
        int o = 0;
        OperationStatus status = OperationStatus.NeedMoreData;
        while (i < input.Length)
        {
            switch (_state)
            {
                case State.Text:
                    ReadOnlySpan<byte> rest = input[i..];
                    int stop = rest.IndexOfAny(Specials);
                    int run = stop < 0 ? rest.Length : stop;
                    if (!Discarding)
                    {
                        int room = output.Length - o;
                        if (run > room)
                        {
                            rest[..room].CopyTo(output[o..]);
                            i += room;
                            o += room;
                            status = OperationStatus.DestinationTooSmall;
                            goto Finish;
                        }

                        rest[..run].CopyTo(output[o..]);
                        o += run;
                    }

                    i += run;
                    if (stop >= 0)
                    {
                        if (input[i] == (byte)'\r')
                        {
                            _state = State.Cr;
                        }
                        else if (input[i] == 0)
                        {
                            // NUL is not text in any body type we offer (no BINARYMIME).
                            SawNul = true;
                            Discarding = true;
                        }
                        else
                        {
                            MarkBare();
                        }

                        i++;
                    }

                    break;

                case State.Cr:
                    if (input[i] == (byte)'\n')
                    {
                        if (!Discarding)
                        {
                            if (output.Length - o < 2)
                            {
                                status = OperationStatus.DestinationTooSmall;
                                goto Finish;
                            }

                            output[o++] = (byte)'\r';
                            output[o++] = (byte)'\n';
                        }

                        i++;
                        _state = State.LineStart;
                    }
                    else
                    {
                        // The byte after a bare CR is ordinary text (and may itself be a CR).
                        MarkBare();
                        _state = State.Text;
                    }

                    break;

                case State.LineStart:
                    if (input[i] == (byte)'.')
                    {
                        i++;
                        _state = State.Dot;
                    }
                    else
                    {
                        _state = State.Text;
                    }

                    break;

                case State.Dot:
                    if (input[i] == (byte)'\r')
                    {
                        i++;
                        _state = State.DotCr;
                    }
                    else
                    {
                        // A stuffed dot: drop it, the rest of the line is text.
                        _state = State.Text;
                    }

                    break;

                case State.DotCr:
                    if (input[i] == (byte)'\n')
                    {
                        i++;
                        _state = State.LineStart;
                        status = OperationStatus.Done;
                        goto Finish;
                    }

                    // ".<CR>x": a bare CR after a stuffed dot, not the end of data.
                    MarkBare();
                    _state = State.Text;
                    break;
            }
        }

    Finish:
        consumed = i;
        written = o;
        return status;
    }

    /// <summary>Prepares for the next message.</summary>
    public void Reset()
    {
        _state = State.LineStart;
        SawBareLineEnding = false;
        SawNul = false;
        Discarding = false;
    }

    private void MarkBare()
    {
        SawBareLineEnding = true;
        Discarding = true;
    }
}
