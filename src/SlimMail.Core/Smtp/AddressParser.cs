using System.Buffers;
using System.Net;
using System.Text;

namespace SlimMail.Smtp;

/// <summary>
/// Parses RFC 5321 paths: <c>&lt;local@domain&gt;</c>, quoted local parts, address literals,
/// the null path <c>&lt;&gt;</c> and source routes (accepted and ignored, §4.1.1.3 and Appendix C).
/// Non-ASCII UTF-8 is accepted in atoms and sub-domains (RFC 6531); whether the client may use it
/// is the session's decision.
/// </summary>
public static class AddressParser
{
    /// <summary>RFC 5321 §4.5.3.1.1: the maximum local-part length in octets.</summary>
    public const int MaxLocalPartLength = 64;

    /// <summary>RFC 5321 §4.5.3.1.2: the maximum domain length in octets.</summary>
    public const int MaxDomainLength = 255;

    /// <summary>RFC 5321 §4.5.3.1.3: the maximum path length in octets, brackets included.</summary>
    public const int MaxPathLength = 256;

    private static readonly SearchValues<byte> AText = SearchValues.Create(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"u8);

    /// <summary>
    /// Parses a path at the start of <paramref name="input"/>. On success <paramref name="consumed"/>
    /// is the number of bytes the path took, and <paramref name="address"/> is null for <c>&lt;&gt;</c>.
    /// </summary>
    /// <param name="input">Text starting with <c>&lt;</c>.</param>
    /// <param name="allowNull">Whether <c>&lt;&gt;</c> is acceptable (reverse-path).</param>
    /// <param name="allowBarePostmaster">Whether <c>&lt;postmaster&gt;</c> is acceptable (forward-path).</param>
    /// <param name="address">The parsed mailbox, or null for the null path.</param>
    /// <param name="consumed">How many bytes of <paramref name="input"/> the path used.</param>
    public static bool TryParsePath(ReadOnlySpan<byte> input, bool allowNull, bool allowBarePostmaster,
        out MailAddress? address, out int consumed)
    {
        address = null;
        consumed = 0;
        if (input.Length < 2 || input[0] != (byte)'<')
        {
            return false;
        }

        // A '>' may legally appear inside a quoted local part; find the real closing bracket.
        int end = FindPathEnd(input);
        if (end < 0 || end + 1 > MaxPathLength)
        {
            return false;
        }

        ReadOnlySpan<byte> inner = input[1..end];
        consumed = end + 1;
        if (inner.IsEmpty)
        {
            return allowNull;
        }

        // Source route: "@a,@b:" is obsolete; RFC 5321 says accept and ignore it.
        if (inner[0] == (byte)'@')
        {
            int colon = inner.IndexOf((byte)':');
            if (colon < 0 || !IsValidRoute(inner[..colon]))
            {
                return false;
            }

            inner = inner[(colon + 1)..];
        }

        if (allowBarePostmaster && Ascii.EqualsIgnoreCase(inner, "postmaster"u8))
        {
            address = new MailAddress(Encoding.UTF8.GetString(inner), string.Empty, false, false);
            return true;
        }

        return TryParseMailbox(inner, out address);
    }

    /// <summary>Parses a bare mailbox <c>local@domain</c> with no brackets.</summary>
    public static bool TryParseMailbox(ReadOnlySpan<byte> mailbox, out MailAddress? address)
    {
        address = null;
        string local;
        bool quoted;
        int at;
        if (!mailbox.IsEmpty && mailbox[0] == (byte)'"')
        {
            if (!TryParseQuotedString(mailbox, out local, out int quotedLength))
            {
                return false;
            }

            at = quotedLength;
            quoted = true;
            if (at >= mailbox.Length || mailbox[at] != (byte)'@')
            {
                return false;
            }
        }
        else
        {
            at = mailbox.LastIndexOf((byte)'@');
            if (at <= 0 || !IsDotString(mailbox[..at]))
            {
                return false;
            }

            local = Encoding.UTF8.GetString(mailbox[..at]);
            quoted = false;
        }

        if (Encoding.UTF8.GetByteCount(local) > MaxLocalPartLength)
        {
            return false;
        }

        ReadOnlySpan<byte> domain = mailbox[(at + 1)..];
        if (domain.IsEmpty || domain.Length > MaxDomainLength)
        {
            return false;
        }

        if (domain[0] == (byte)'[')
        {
            if (!IsAddressLiteral(domain))
            {
                return false;
            }

            address = new MailAddress(local, Encoding.ASCII.GetString(domain), true, quoted);
            return true;
        }

        if (!IsDomain(domain))
        {
            return false;
        }

        address = new MailAddress(local, Encoding.UTF8.GetString(domain), false, quoted);
        return true;
    }

    /// <summary>True when a local part must be quoted to be written as a Dot-string.</summary>
    public static bool NeedsQuoting(string localPart)
    {
        Span<byte> buffer = stackalloc byte[256];
        int count = Encoding.UTF8.GetByteCount(localPart);
        if (count > buffer.Length)
        {
            return true;
        }

        Encoding.UTF8.GetBytes(localPart, buffer);
        return !IsDotString(buffer[..count]);
    }

    /// <summary>Escapes <c>"</c> and <c>\</c> for use inside a quoted string.</summary>
    public static string Quote(string localPart) => localPart.Replace("\\", "\\\\", StringComparison.Ordinal)
        .Replace("\"", "\\\"", StringComparison.Ordinal);

    private static int FindPathEnd(ReadOnlySpan<byte> input)
    {
        bool inQuotes = false;
        for (int i = 1; i < input.Length; i++)
        {
            byte b = input[i];
            if (inQuotes)
            {
                if (b == (byte)'\\')
                {
                    i++;
                }
                else if (b == (byte)'"')
                {
                    inQuotes = false;
                }
            }
            else if (b == (byte)'"')
            {
                inQuotes = true;
            }
            else if (b == (byte)'>')
            {
                return i;
            }
        }

        return -1;
    }

    private static bool IsValidRoute(ReadOnlySpan<byte> route)
    {
        // A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain
        while (!route.IsEmpty)
        {
            if (route[0] != (byte)'@')
            {
                return false;
            }

            int comma = route.IndexOf((byte)',');
            ReadOnlySpan<byte> domain = comma < 0 ? route[1..] : route[1..comma];
            if (!IsDomain(domain))
            {
                return false;
            }

            route = comma < 0 ? default : route[(comma + 1)..];
            if (comma >= 0 && route.IsEmpty)
            {
                return false;
            }
        }

        return true;
    }

    private static bool TryParseQuotedString(ReadOnlySpan<byte> input, out string value, out int length)
    {
        value = string.Empty;
        length = 0;
        var builder = new StringBuilder();
        int i = 1;
        int runStart = 1;
        for (; i < input.Length; i++)
        {
            byte b = input[i];
            if (b == (byte)'"')
            {
                builder.Append(Encoding.UTF8.GetString(input[runStart..i]));
                value = builder.ToString();
                length = i + 1;
                return true;
            }

            if (b == (byte)'\\')
            {
                // quoted-pairSMTP = %d92 %d32-126
                if (i + 1 >= input.Length || input[i + 1] < 32 || input[i + 1] > 126)
                {
                    return false;
                }

                builder.Append(Encoding.UTF8.GetString(input[runStart..i]));
                i++;
                runStart = i;
                continue;
            }

            // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531)
            if (b < 32 || b == 127)
            {
                return false;
            }
        }

        return false;
    }

    internal static bool IsDotString(ReadOnlySpan<byte> text)
    {
        if (text.IsEmpty || text[0] == (byte)'.' || text[^1] == (byte)'.')
        {
            return false;
        }

        byte previous = 0;
        foreach (byte b in text)
        {
            if (b == (byte)'.')
            {
                if (previous == (byte)'.')
                {
                    return false;
                }
            }
            else if (b < 0x80 && !AText.Contains(b))
            {
                return false;
            }

            previous = b;
        }

        return System.Text.Unicode.Utf8.IsValid(text);
    }

    /// <summary>True for an RFC 5321 Domain (dot-separated LDH labels, or UTF-8 U-labels), without a trailing dot.</summary>
    public static bool IsDomain(ReadOnlySpan<byte> domain)
    {
        if (domain.IsEmpty || domain.Length > MaxDomainLength || !System.Text.Unicode.Utf8.IsValid(domain))
        {
            return false;
        }

        // sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. A trailing dot is not allowed.
        while (true)
        {
            int dot = domain.IndexOf((byte)'.');
            ReadOnlySpan<byte> label = dot < 0 ? domain : domain[..dot];
            if (!IsLabel(label))
            {
                return false;
            }

            if (dot < 0)
            {
                return true;
            }

            domain = domain[(dot + 1)..];
        }
    }

    private static bool IsLabel(ReadOnlySpan<byte> label)
    {
        if (label.IsEmpty || label.Length > 63 || label[0] == (byte)'-' || label[^1] == (byte)'-')
        {
            return false;
        }

        foreach (byte b in label)
        {
            bool ok = b >= 0x80 || (b >= (byte)'a' && b <= (byte)'z') || (b >= (byte)'A' && b <= (byte)'Z')
                || (b >= (byte)'0' && b <= (byte)'9') || b == (byte)'-';
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsAddressLiteral(ReadOnlySpan<byte> literal)
    {
        if (literal.Length < 3 || literal[^1] != (byte)']')
        {
            return false;
        }

        ReadOnlySpan<byte> inner = literal[1..^1];
        if (inner.Length > 5 && Ascii.EqualsIgnoreCase(inner[..5], "IPv6:"u8))
        {
            return IPAddress.TryParse(Encoding.ASCII.GetString(inner[5..]), out IPAddress? v6)
                && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        }

        // IPv4-address-literal: exactly four dotted decimal octets (IPAddress.TryParse is laxer).
        int parts = 0;
        while (true)
        {
            int dot = inner.IndexOf((byte)'.');
            ReadOnlySpan<byte> part = dot < 0 ? inner : inner[..dot];
            if (part.IsEmpty || part.Length > 3 || !System.Buffers.Text.Utf8Parser.TryParse(part, out int octet, out int used)
                || used != part.Length || octet > 255)
            {
                return false;
            }

            parts++;
            if (dot < 0)
            {
                return parts == 4;
            }

            inner = inner[(dot + 1)..];
        }
    }
}
