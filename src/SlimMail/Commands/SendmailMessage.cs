using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SlimMail.Host.Commands;

/// <summary>
/// The message a program hands to <c>slimmail sendmail</c>, made ready for SMTP: LF or CRLF input becomes
/// CRLF, missing <c>From:</c>, <c>Date:</c> and <c>Message-ID:</c> headers are added (as sendmail and
/// Postfix do), and with <c>-t</c> the recipients are read from <c>To:</c>, <c>Cc:</c> and <c>Bcc:</c>,
/// and <c>Bcc:</c> is removed.
/// </summary>
internal sealed class SendmailMessage
{
    private SendmailMessage(byte[] data, IReadOnlyList<string> headerRecipients)
    {
        Data = data;
        HeaderRecipients = headerRecipients;
    }

    /// <summary>The message with CRLF line endings.</summary>
    public byte[] Data { get; }

    /// <summary>The addresses in To/Cc/Bcc (filled only when asked to read them).</summary>
    public IReadOnlyList<string> HeaderRecipients { get; }

    /// <summary>Reads the message. Unless <paramref name="ignoreDots"/>, a line of a single "." ends it (sendmail's default).</summary>
    public static SendmailMessage Read(TextReader input, bool ignoreDots, bool readRecipients, string sender, string? fullName, string hostname)
    {
        var headers = new List<string>();
        var body = new StringBuilder();
        bool inHeaders = true;
        string? line;
        while ((line = input.ReadLine()) is not null)
        {
            if (!ignoreDots && line == ".")
            {
                break;
            }

            if (inHeaders)
            {
                if (line.Length == 0)
                {
                    inHeaders = false;
                    continue;
                }

                if ((line[0] == ' ' || line[0] == '\t') && headers.Count > 0)
                {
                    headers[^1] += "\r\n" + line;
                    continue;
                }

                if (line.IndexOf(':', StringComparison.Ordinal) <= 0)
                {
                    // Not a header: the message has no header section; this is body text.
                    inHeaders = false;
                    body.Append(line).Append("\r\n");
                    continue;
                }

                headers.Add(line);
                continue;
            }

            body.Append(line).Append("\r\n");
        }

        var recipients = new List<string>();
        if (readRecipients)
        {
            foreach (string header in headers)
            {
                if (Is(header, "To") || Is(header, "Cc") || Is(header, "Bcc"))
                {
                    recipients.AddRange(AddressList.Parse(Value(header)));
                }
            }

            // Bcc recipients get the message; nobody sees the list.
            headers.RemoveAll(h => Is(h, "Bcc"));
        }

        if (!headers.Exists(h => Is(h, "From")))
        {
            headers.Add(fullName is null ? "From: " + sender : $"From: \"{fullName.Replace("\"", "", StringComparison.Ordinal)}\" <{sender}>");
        }

        if (!headers.Exists(h => Is(h, "Date")))
        {
            headers.Add("Date: " + SlimMail.Smtp.ReceivedHeader.FormatDate(DateTimeOffset.Now));
        }

        if (!headers.Exists(h => Is(h, "Message-ID")))
        {
            string id = Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
            headers.Add(string.Create(CultureInfo.InvariantCulture, $"Message-ID: <{DateTimeOffset.UtcNow:yyyyMMddHHmmss}.{id}@{hostname}>"));
        }

        var text = new StringBuilder();
        foreach (string header in headers)
        {
            text.Append(header).Append("\r\n");
        }

        text.Append("\r\n").Append(body);
        return new SendmailMessage(Encoding.UTF8.GetBytes(text.ToString()), recipients);
    }

    private static bool Is(string header, string name) =>
        header.Length > name.Length && header[name.Length] == ':' && header.StartsWith(name, StringComparison.OrdinalIgnoreCase);

    private static string Value(string header) => header[(header.IndexOf(':', StringComparison.Ordinal) + 1)..];
}
