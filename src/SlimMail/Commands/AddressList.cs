using System.Text;

namespace SlimMail.Host.Commands;

/// <summary>Extracts the addresses of an RFC 5322 address-list header value: <c>"Doe, J" &lt;j@x&gt;, k@y (comment), Team: a@z;</c>.</summary>
internal static class AddressList
{
    public static IReadOnlyList<string> Parse(string value)
    {
        var addresses = new List<string>();
        var current = new StringBuilder();
        string? angle = null;
        bool quoted = false;
        int comment = 0;
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (quoted)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }

                continue;
            }

            if (comment > 0)
            {
                comment += c == '(' ? 1 : c == ')' ? -1 : 0;
                continue;
            }

            switch (c)
            {
                case '"':
                    quoted = true;
                    break;
                case '(':
                    comment = 1;
                    break;
                case '<':
                    int close = value.IndexOf('>', i + 1);
                    angle = close < 0 ? value[(i + 1)..] : value[(i + 1)..close];
                    i = close < 0 ? value.Length : close;
                    break;
                case ':':
                    // "Group: a@b, c@d;" — the display name of a group is not an address.
                    current.Clear();
                    break;
                case ',' or ';':
                    Add(addresses, angle ?? current.ToString());
                    angle = null;
                    current.Clear();
                    break;
                default:
                    current.Append(c);
                    break;
            }
        }

        Add(addresses, angle ?? current.ToString());
        return addresses;
    }

    private static void Add(List<string> addresses, string candidate)
    {
        string address = candidate.Trim();
        if (address.Contains('@', StringComparison.Ordinal) && !address.Contains(' ', StringComparison.Ordinal))
        {
            addresses.Add(address);
        }
    }
}
