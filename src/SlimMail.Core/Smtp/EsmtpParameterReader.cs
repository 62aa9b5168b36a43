using System.Text;

namespace SlimMail.Smtp;

/// <summary>One <c>KEYWORD[=VALUE]</c> parameter after a MAIL or RCPT path (RFC 5321 §4.1.2).</summary>
internal readonly ref struct EsmtpParameter
{
    public EsmtpParameter(ReadOnlySpan<byte> keyword, ReadOnlySpan<byte> value, bool hasValue, bool isMalformed)
    {
        Keyword = keyword;
        Value = value;
        HasValue = hasValue;
        IsMalformed = isMalformed;
    }

    public ReadOnlySpan<byte> Keyword { get; }

    public ReadOnlySpan<byte> Value { get; }

    public bool HasValue { get; }

    /// <summary>The keyword or value breaks the RFC 5321 grammar.</summary>
    public bool IsMalformed { get; }

    public bool Is(ReadOnlySpan<byte> keyword) => !IsMalformed && Ascii.EqualsIgnoreCase(Keyword, keyword);
}

/// <summary>Enumerates the space-separated parameters of a MAIL or RCPT command without allocating.</summary>
internal ref struct EsmtpParameterReader
{
    private ReadOnlySpan<byte> _rest;

    public EsmtpParameterReader(ReadOnlySpan<byte> parameters)
    {
        _rest = parameters;
        Current = default;
    }

    public EsmtpParameter Current { get; private set; }

    public readonly EsmtpParameterReader GetEnumerator() => this;

    public bool MoveNext()
    {
        _rest = _rest.TrimStart((byte)' ');
        if (_rest.IsEmpty)
        {
            return false;
        }

        int space = _rest.IndexOf((byte)' ');
        ReadOnlySpan<byte> token = space < 0 ? _rest : _rest[..space];
        _rest = space < 0 ? default : _rest[space..];
        int equals = token.IndexOf((byte)'=');
        ReadOnlySpan<byte> keyword = equals < 0 ? token : token[..equals];
        ReadOnlySpan<byte> value = equals < 0 ? default : token[(equals + 1)..];
        bool malformed = !IsKeyword(keyword) || (equals >= 0 && !IsValue(value));
        Current = new EsmtpParameter(keyword, value, equals >= 0, malformed);
        return true;
    }

    // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    private static bool IsKeyword(ReadOnlySpan<byte> keyword)
    {
        if (keyword.IsEmpty || !char.IsAsciiLetterOrDigit((char)keyword[0]))
        {
            return false;
        }

        foreach (byte b in keyword)
        {
            if (!char.IsAsciiLetterOrDigit((char)b) && b != (byte)'-')
            {
                return false;
            }
        }

        return true;
    }

    // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531)
    private static bool IsValue(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
        {
            return false;
        }

        foreach (byte b in value)
        {
            if (b < 33 || b == (byte)'=' || b == 127)
            {
                return false;
            }
        }

        return true;
    }
}
