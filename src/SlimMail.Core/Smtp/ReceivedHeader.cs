using System.Globalization;
using System.Text;

namespace SlimMail.Smtp;

/// <summary>
/// Builds the <c>Received:</c> trace header (RFC 5321 §4.4) prepended to every message. Everything the
/// client chose (the EHLO name, the recipient) is reduced to characters that cannot end the header
/// or break its comment syntax.
/// </summary>
public static class ReceivedHeader
{
    /// <summary>The header bytes, CRLF line endings, ending with CRLF.</summary>
    public static byte[] Build(SmtpSessionInfo session, string hostname, string queueId, bool smtpUtf8,
        string? singleRecipient, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(session);
        var text = new StringBuilder(256);
        text.Append("Received: from ").Append(Clean(session.HeloName ?? "unknown", allowUtf8: false))
            .Append(" ([").Append(session.RemoteEndPoint.Address.ToString()).Append("])\r\n")
            .Append("\tby ").Append(hostname).Append(" (SlimMail) with ").Append(Protocol(session, smtpUtf8))
            .Append(" id ").Append(queueId);
        if (session.TlsDescription is not null)
        {
            text.Append("\r\n\t(").Append(session.TlsDescription).Append(')');
        }

        if (singleRecipient is not null)
        {
            text.Append("\r\n\tfor <").Append(Clean(singleRecipient, allowUtf8: smtpUtf8)).Append('>');
        }

        text.Append("; ").Append(FormatDate(now)).Append("\r\n");
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>The RFC 3848 / RFC 6531 "with" protocol name.</summary>
    public static string Protocol(SmtpSessionInfo session, bool smtpUtf8)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (!session.IsExtended)
        {
            return "SMTP";
        }

        string suffix = (session.TlsDescription is null ? "" : "S") + (session.AuthenticatedUser is null ? "" : "A");
        return (smtpUtf8 ? "UTF8SMTP" : "ESMTP") + suffix;
    }

    /// <summary>An RFC 5322 date-time: <c>Sun, 22 Nov 2026 04:30:00 +0000</c>.</summary>
    public static string FormatDate(DateTimeOffset when)
    {
        TimeSpan offset = when.Offset;
        char sign = offset < TimeSpan.Zero ? '-' : '+';
        offset = offset.Duration();
        return when.ToString("ddd, dd MMM yyyy HH:mm:ss ", CultureInfo.InvariantCulture)
            + sign + offset.Hours.ToString("00", CultureInfo.InvariantCulture) + offset.Minutes.ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>Keeps visible characters; anything that could end the line or the comment becomes '_'.</summary>
    internal static string Clean(string value, bool allowUtf8)
    {
        const int MaxLength = 255;
        var result = new StringBuilder(Math.Min(value.Length, MaxLength));
        foreach (char c in value)
        {
            if (result.Length == MaxLength)
            {
                break;
            }

            bool visible = c is > ' ' and < (char)127 and not '(' and not ')' and not '\\' and not ';' and not '<' and not '>';
            result.Append(visible || (allowUtf8 && c > 127 && !char.IsControl(c)) ? c : '_');
        }

        return result.ToString();
    }
}
