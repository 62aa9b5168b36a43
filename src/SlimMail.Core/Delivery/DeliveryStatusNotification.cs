using System.Globalization;
using System.Text;

namespace SlimMail.Delivery;

/// <summary>What happened to one recipient, as a delivery-status notification reports it (RFC 3464 §2.3).</summary>
/// <param name="Address">The recipient address as the client gave it.</param>
/// <param name="Action"><c>failed</c> or <c>delayed</c>.</param>
/// <param name="Status">The enhanced status code, e.g. <c>5.1.1</c>.</param>
/// <param name="Diagnostic">What the remote server or local program said (<c>Diagnostic-Code</c>), or null.</param>
/// <param name="RemoteMta">The host that gave <paramref name="Diagnostic"/>, or null for a local delivery.</param>
public sealed record DsnRecipient(string Address, string Action, string Status, string? Diagnostic = null, string? RemoteMta = null);

/// <summary>
/// Builds a delivery-status notification (a bounce): a <c>multipart/report</c> (RFC 6522) with a human
/// part, a <c>message/delivery-status</c> part (RFC 3464) and the original message's headers, sent from
/// <c>MAILER-DAEMON</c> with the null reverse-path so it can never bounce back.
/// </summary>
public static class DeliveryStatusNotification
{
    private const int MaxHeaderBytes = 64 * 1024;

    /// <summary>The message, CRLF line endings, ready to be submitted with <c>MAIL FROM:&lt;&gt;</c>.</summary>
    /// <param name="hostname">This server's name (<c>Reporting-MTA</c>, <c>From</c>).</param>
    /// <param name="to">The original sender, to whom the notification goes.</param>
    /// <param name="queueId">The original message's queue id.</param>
    /// <param name="arrival">When the original message arrived.</param>
    /// <param name="recipients">The recipients reported on.</param>
    /// <param name="originalHeaders">The original message's header section (as received), or empty.</param>
    public static byte[] Build(string hostname, string to, string queueId, DateTimeOffset arrival,
        IReadOnlyList<DsnRecipient> recipients, ReadOnlySpan<byte> originalHeaders)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        bool delayed = recipients.Count > 0 && recipients.All(r => r.Action == "delayed");
        string boundary = string.Create(CultureInfo.InvariantCulture, $"{queueId}.{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}/{hostname}");
        var text = new StringBuilder(2048);
        Line(text, $"From: Mail Delivery System <MAILER-DAEMON@{hostname}>");
        Line(text, $"To: <{to}>");
        Line(text, delayed ? "Subject: Delayed Mail (still being retried)" : "Subject: Undelivered Mail Returned to Sender");
        Line(text, "Date: " + Smtp.ReceivedHeader.FormatDate(DateTimeOffset.Now));
        Line(text, $"Message-ID: <{queueId}.{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}.dsn@{hostname}>");
        Line(text, "Auto-Submitted: auto-replied");
        Line(text, "MIME-Version: 1.0");
        Line(text, $"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"");
        Line(text, "");
        Line(text, "This is a MIME-encapsulated message.");
        Line(text, "");
        Line(text, "--" + boundary);
        Line(text, "Content-Description: Notification");
        Line(text, "Content-Type: text/plain; charset=utf-8");
        Line(text, "");
        Line(text, $"This is the mail system at host {hostname}.");
        Line(text, "");
        if (delayed)
        {
            Line(text, "Your message could not be delivered yet. The mail system will keep trying;");
            Line(text, "you do not need to send it again.");
        }
        else
        {
            Line(text, "I'm sorry to have to inform you that your message could not be delivered");
            Line(text, "to one or more recipients. The attached headers identify the message.");
        }

        Line(text, "");
        foreach (DsnRecipient recipient in recipients)
        {
            Line(text, $"<{recipient.Address}>: {recipient.Diagnostic ?? recipient.Status}");
        }

        Line(text, "");
        Line(text, "--" + boundary);
        Line(text, "Content-Description: Delivery report");
        Line(text, "Content-Type: message/delivery-status");
        Line(text, "");
        Line(text, $"Reporting-MTA: dns; {hostname}");
        Line(text, $"X-SlimMail-Queue-ID: {queueId}");
        Line(text, "Arrival-Date: " + Smtp.ReceivedHeader.FormatDate(arrival));
        foreach (DsnRecipient recipient in recipients)
        {
            Line(text, "");
            // RFC 6533: an address that is not ASCII is typed utf-8.
            string type = Ascii(recipient.Address) ? "rfc822" : "utf-8";
            Line(text, $"Final-Recipient: {type}; {recipient.Address}");
            Line(text, $"Original-Recipient: {type}; {recipient.Address}");
            Line(text, $"Action: {recipient.Action}");
            Line(text, $"Status: {recipient.Status}");
            if (recipient.RemoteMta is not null)
            {
                Line(text, $"Remote-MTA: dns; {recipient.RemoteMta}");
            }

            if (recipient.Diagnostic is not null)
            {
                Line(text, $"Diagnostic-Code: {(recipient.RemoteMta is null ? "x-local" : "smtp")}; {OneLine(recipient.Diagnostic)}");
            }
        }

        Line(text, "");
        Line(text, "--" + boundary);
        Line(text, "Content-Description: Undelivered Message Headers");
        Line(text, "Content-Type: text/rfc822-headers");
        Line(text, "");
        byte[] head = Encoding.UTF8.GetBytes(text.ToString());
        ReadOnlySpan<byte> headers = HeaderSection(originalHeaders);
        byte[] tail = Encoding.ASCII.GetBytes("\r\n--" + boundary + "--\r\n");
        byte[] message = new byte[head.Length + headers.Length + tail.Length];
        head.CopyTo(message, 0);
        headers.CopyTo(message.AsSpan(head.Length));
        tail.CopyTo(message, head.Length + headers.Length);
        return message;
    }

    /// <summary>The header section of <paramref name="message"/> (up to and without the blank line), at most 64 KB of whole lines.</summary>
    public static ReadOnlySpan<byte> HeaderSection(ReadOnlySpan<byte> message)
    {
        int end = message.IndexOf("\r\n\r\n"u8);
        ReadOnlySpan<byte> headers = end >= 0 ? message[..(end + 2)] : message;
        if (headers.Length > MaxHeaderBytes)
        {
            headers = headers[..MaxHeaderBytes];
        }

        // Never end inside a line: a cut line would run into the closing boundary.
        int lastLine = headers.LastIndexOf("\r\n"u8);
        return lastLine >= 0 ? headers[..(lastLine + 2)] : [];
    }

    private static void Line(StringBuilder text, string line) => text.Append(line).Append("\r\n");

    private static bool Ascii(string value) => System.Text.Ascii.IsValid(value);

    private static string OneLine(string value) => value.ReplaceLineEndings(" ");
}
