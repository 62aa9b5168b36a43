using System.Globalization;
using System.Text;

namespace SlimMail.Smtp;

/// <summary>
/// One SMTP reply: a three-digit code, an optional RFC 3463 enhanced status code and a text.
/// The wire form is encoded once, so the common replies cost no allocation when sent.
/// </summary>
public sealed class SmtpReply
{
    private byte[]? _encoded;

    /// <summary>Creates a reply.</summary>
    /// <param name="code">The RFC 5321 reply code (200–599).</param>
    /// <param name="enhancedCode">The RFC 3463 status code such as <c>2.1.5</c>, or null.</param>
    /// <param name="text">Human-readable text; it must not contain CR or LF.</param>
    public SmtpReply(int code, string? enhancedCode, string text)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(code, 200);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(code, 599);
        ArgumentNullException.ThrowIfNull(text);
        if (text.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            throw new ArgumentException("Reply text must be one line.", nameof(text));
        }

        Code = code;
        EnhancedCode = enhancedCode;
        Text = text;
    }

    /// <summary>The three-digit reply code.</summary>
    public int Code { get; }

    /// <summary>The enhanced status code (<c>5.1.1</c>), or null.</summary>
    public string? EnhancedCode { get; }

    /// <summary>The reply text.</summary>
    public string Text { get; }

    /// <summary>True for 2xx and 3xx replies.</summary>
    public bool IsPositive => Code < 400;

    /// <summary>True for 4xx replies: the client may try again later.</summary>
    public bool IsTransient => Code is >= 400 and < 500;

    /// <summary>True for 5xx replies.</summary>
    public bool IsPermanent => Code >= 500;

    /// <summary>The reply as sent on the wire, ending with CRLF.</summary>
    public ReadOnlyMemory<byte> Encoded => _encoded ??= Encoding.UTF8.GetBytes(ToString() + "\r\n");

    /// <inheritdoc />
    public override string ToString() => EnhancedCode is null
        ? string.Create(CultureInfo.InvariantCulture, $"{Code} {Text}")
        : string.Create(CultureInfo.InvariantCulture, $"{Code} {EnhancedCode} {Text}");
}
