using SlimMail.Smtp;

namespace SlimMail.Delivery;

/// <summary>
/// Where the mail of some users goes: their Maildirs, a program, a database. Knows nothing of SMTP
/// sessions or sockets; receives one message for a set of users and says whether it is kept.
/// </summary>
public interface IDeliveryAgent
{
    /// <summary>A short name of the kind of store (<c>maildir</c>, <c>pipe</c>…) for metrics and logs.</summary>
    string DeliveryType { get; }

    /// <summary>
    /// True when one writer keeps the message for all the users it is given, all or nothing (a Maildir
    /// store, a database transaction). False when each user's delivery can fail on its own (a program per
    /// user): the caller then begins one writer per user, so each gets its own outcome.
    /// </summary>
    bool WritesForManyUsers => true;

    /// <summary>
    /// Whether this agent can take mail from <paramref name="sender"/> (null for <c>&lt;&gt;</c>) to
    /// <paramref name="recipient"/>: null if it can, else the reply to <c>RCPT</c>. Asked before the data.
    /// </summary>
    SmtpReply? CheckRecipient(MailAddress? sender, MailAddress recipient) => null;

    /// <summary>Starts writing one message for <paramref name="recipients"/> (each user once).</summary>
    ValueTask<IDeliveryWriter> BeginAsync(MailTransactionContext context, IReadOnlyList<DeliveryRecipient> recipients, CancellationToken cancellationToken);
}

/// <summary>A user a message is delivered to, and the address the client gave for them.</summary>
/// <param name="User">The user name (a key of <c>Users</c>, or a name from the external authenticator).</param>
/// <param name="Address">The first recipient address of this transaction that routed to the user.</param>
public readonly record struct DeliveryRecipient(string User, MailAddress Address);

/// <summary>One message being written by an <see cref="IDeliveryAgent"/>. Disposing without commit discards it.</summary>
public interface IDeliveryWriter : IAsyncDisposable
{
    /// <summary>The next bytes of the message as received (CRLF line endings, <c>Received:</c> first).</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Makes the message durable for every user, or reports why not.</summary>
    ValueTask<DeliveryOutcome> CommitAsync(CancellationToken cancellationToken);
}

/// <summary>The result of a delivery.</summary>
public enum DeliveryOutcome
{
    /// <summary>Stored durably.</summary>
    Delivered,

    /// <summary>Not stored; trying again later may work (<c>451 4.3.0</c>).</summary>
    TemporaryFailure,

    /// <summary>Not stored and never will be (<c>554 5.3.0</c>).</summary>
    PermanentFailure,
}
