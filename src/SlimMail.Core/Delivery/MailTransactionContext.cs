using SlimMail.Smtp;

namespace SlimMail.Delivery;

/// <summary>The envelope sender and what the client declared about the message at <c>MAIL FROM</c>.</summary>
public sealed class MailTransactionContext
{
    /// <summary>Creates the context of one transaction.</summary>
    public MailTransactionContext(string queueId, SmtpSessionInfo session, MailAddress? sender, bool smtpUtf8, bool eightBit, long declaredSize)
    {
        QueueId = queueId;
        Session = session;
        Sender = sender;
        SmtpUtf8 = smtpUtf8;
        EightBitMime = eightBit;
        DeclaredSize = declaredSize;
    }

    /// <summary>The id this message is logged under and named by.</summary>
    public string QueueId { get; }

    /// <summary>The session the transaction runs on.</summary>
    public SmtpSessionInfo Session { get; }

    /// <summary>The reverse-path, or null for the null sender <c>&lt;&gt;</c> (bounces).</summary>
    public MailAddress? Sender { get; }

    /// <summary>True when the client gave the <c>SMTPUTF8</c> parameter (RFC 6531).</summary>
    public bool SmtpUtf8 { get; }

    /// <summary>True for <c>BODY=8BITMIME</c>.</summary>
    public bool EightBitMime { get; }

    /// <summary>The <c>SIZE=</c> the client declared, or 0.</summary>
    public long DeclaredSize { get; }
}
