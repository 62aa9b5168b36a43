using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace SlimMail.Smtp;

/// <summary>The EHLO reply with the extensions SlimMail offers, encoded once per host name and size limit.</summary>
internal sealed class EhloReply
{
    private static readonly ConcurrentDictionary<(string, long, bool, bool), EhloReply> Cache = new();

    private EhloReply(string hostname, long maxMessageSize, bool startTls, bool auth)
    {
        string text = string.Create(CultureInfo.InvariantCulture,
            $"250-{hostname}\r\n250-PIPELINING\r\n250-SIZE {maxMessageSize}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n")
            + (startTls ? "250-STARTTLS\r\n" : "")
            + (auth ? "250-AUTH PLAIN LOGIN\r\n" : "")
            + "250 CHUNKING\r\n";
        Bytes = Encoding.ASCII.GetBytes(text);
        Helo = new SmtpReply(250, null, hostname);
    }

    public byte[] Bytes { get; }

    public SmtpReply Helo { get; }

    public static EhloReply For(string hostname, long maxMessageSize, bool startTls, bool auth) =>
        Cache.GetOrAdd((hostname, maxMessageSize, startTls, auth), static key => new EhloReply(key.Item1, key.Item2, key.Item3, key.Item4));
}
