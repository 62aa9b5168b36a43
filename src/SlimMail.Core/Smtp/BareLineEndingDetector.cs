using System.Buffers;

namespace SlimMail.Smtp;

/// <summary>
/// Watches BDAT chunks (RFC 3030), which carry no dot-stuffing, for a CR not followed by LF or an LF
/// not preceded by CR, across chunk boundaries.
/// </summary>
internal struct BareLineEndingDetector
{
    private static readonly SearchValues<byte> LineBreaks = SearchValues.Create("\r\n\0"u8);

    private bool _afterCr;

    /// <summary>True once a bare CR or LF was seen.</summary>
    public bool SawBareLineEnding { get; private set; }

    /// <summary>Scans the next bytes of the message.</summary>
    public void Scan(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty && !SawBareLineEnding)
        {
            if (_afterCr)
            {
                _afterCr = false;
                if (data[0] != (byte)'\n')
                {
                    SawBareLineEnding = true;
                    return;
                }

                data = data[1..];
                continue;
            }

            int stop = data.IndexOfAny(LineBreaks);
            if (stop < 0)
            {
                return;
            }

            if (data[stop] == 0)
            {
                SawNul = true;
                data = data[(stop + 1)..];
                continue;
            }

            if (data[stop] == (byte)'\n')
            {
                SawBareLineEnding = true;
                return;
            }

            _afterCr = true;
            data = data[(stop + 1)..];
        }
    }

    /// <summary>True once a NUL byte was seen (BINARYMIME is not offered, so it is never legal).</summary>
    public bool SawNul { get; private set; }

    /// <summary>True when the message ended in the middle of a CRLF pair.</summary>
    public readonly bool EndsWithBareCr => _afterCr;

    /// <summary>Prepares for the next message.</summary>
    public void Reset()
    {
        _afterCr = false;
        SawBareLineEnding = false;
        SawNul = false;
    }
}
