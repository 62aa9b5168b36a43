using System.Text;

namespace SlimMail.Smtp;

/// <summary>
/// Finds the <c>Message-ID:</c> of a message in the first bytes the engine buffered, for the log line that
/// says what happened to the message (as Postfix's <c>message-id=</c>). Headers past the first buffer, or
/// folded over several lines, are not looked for: the log is a convenience, not a parser.
/// </summary>
internal static class MessageIdHeader
{
    private const int MaxLength = 200;

    /// <summary>The header's value (trimmed, printable ASCII only), or null when the buffer has none.</summary>
    public static string? Find(ReadOnlySpan<byte> head)
    {
        while (!head.IsEmpty)
        {
            int end = head.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = end < 0 ? head : head[..end];
            if (line.IsEmpty || line.SequenceEqual("\r"u8))
            {
                return null; // the end of the header section
            }

            if (line.Length > 11 && Ascii.EqualsIgnoreCase(line[..11], "Message-ID:"u8))
            {
                ReadOnlySpan<byte> value = line[11..].Trim(" \t\r"u8);
                if (value.Length > MaxLength)
                {
                    value = value[..MaxLength];
                }

                Span<char> text = stackalloc char[value.Length];
                for (int i = 0; i < value.Length; i++)
                {
                    text[i] = value[i] is >= 0x21 and < 0x7f ? (char)value[i] : '?';
                }

                return new string(text);
            }

            if (end < 0)
            {
                return null;
            }

            head = head[(end + 1)..];
        }

        return null;
    }
}
