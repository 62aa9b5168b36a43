using SlimMail.Smtp;

namespace SlimMail.Delivery;

/// <summary>
/// The seam between the SMTP engine and whatever keeps the mail: a Maildir, a program, a database,
/// an outbound queue, or an embedding application. One call to <see cref="BeginAsync"/> per
/// <c>MAIL FROM</c>; the returned transaction then sees the recipients, the body and the outcome.
/// </summary>
public interface IMessageHandler
{
    /// <summary>The largest message this handler takes, in bytes; 0 for no limit of its own.
    /// The engine enforces the smaller of this and its configured limit while reading.</summary>
    long MaxMessageSize { get; }

    /// <summary>Opens a transaction for a sender, or refuses the sender with a reply.</summary>
    ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken);
}

/// <summary>
/// One mail transaction. The engine calls, in order: <see cref="AddRecipientAsync"/> once per
/// <c>RCPT</c>; <see cref="WriteAsync"/> with the message as it streams in (a <c>Received:</c> header
/// first, then the body, CRLF line endings, dot-stuffing removed); then <see cref="CommitAsync"/> if the
/// message arrived whole. Disposing without a successful commit aborts: nothing may be kept.
/// </summary>
public interface IMessageTransaction : IAsyncDisposable
{
    /// <summary>Decides one recipient: <c>250</c> to accept, or the rejection (e.g. <c>550 5.1.1</c>).</summary>
    ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the next piece of the message. <paramref name="data"/> is only valid until the returned task
    /// completes. Never called before at least one recipient was accepted.
    /// </summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the message durable and returns the reply to the end of data. The engine answers the client
    /// only after this completes, so a <c>250</c> here must mean the message is safe.
    /// </summary>
    ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken);
}

/// <summary>The outcome of <see cref="IMessageHandler.BeginAsync"/>: a transaction, or a refusal.</summary>
public readonly struct TransactionStart
{
    private TransactionStart(IMessageTransaction? transaction, SmtpReply reply)
    {
        Transaction = transaction;
        Reply = reply;
    }

    /// <summary>The open transaction, or null when the sender was refused.</summary>
    public IMessageTransaction? Transaction { get; }

    /// <summary>The reply to <c>MAIL FROM</c>.</summary>
    public SmtpReply Reply { get; }

    /// <summary>The sender is accepted.</summary>
    public static TransactionStart Accept(IMessageTransaction transaction) => new(transaction, SmtpReplies.SenderOk);

    /// <summary>The sender is refused with <paramref name="reply"/> (a 4xx or 5xx reply).</summary>
    public static TransactionStart Refuse(SmtpReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        if (reply.IsPositive)
        {
            throw new ArgumentException("A refusal needs a 4xx or 5xx reply.", nameof(reply));
        }

        return new(null, reply);
    }
}
