using System.Text;

namespace SlimMail.Auth;

/// <summary>SASL helpers shared by SMTP AUTH and POP3 AUTH.</summary>
public static class Sasl
{
    /// <summary>Splits a PLAIN response (RFC 4616: authzid NUL authcid NUL passwd). An authorization identity
    /// other than the user itself is refused: SlimMail does not let one user act as another.</summary>
    public static bool TryParsePlain(ReadOnlySpan<byte> response, out string? user, out string? password)
    {
        user = null;
        password = null;
        int first = response.IndexOf((byte)0);
        if (first < 0)
        {
            return false;
        }

        int second = response[(first + 1)..].IndexOf((byte)0);
        if (second < 0)
        {
            return false;
        }

        second += first + 1;
        string authzid = Encoding.UTF8.GetString(response[..first]);
        user = Encoding.UTF8.GetString(response[(first + 1)..second]);
        password = Encoding.UTF8.GetString(response[(second + 1)..]);
        return user.Length > 0 && (authzid.Length == 0 || authzid == user);
    }

    /// <summary>A user name as it may appear in a log line: control characters shown as '?', at most 64 characters.</summary>
    public static string Printable(string user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var result = new StringBuilder(Math.Min(user.Length, 64));
        foreach (char c in user)
        {
            if (result.Length == 64)
            {
                break;
            }

            result.Append(char.IsControl(c) ? '?' : c);
        }

        return result.ToString();
    }
}
