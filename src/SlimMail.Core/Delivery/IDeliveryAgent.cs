namespace SlimMail.Delivery;

/// <summary>
/// Where the mail of some users goes: their Maildirs, a program, a database. Knows nothing of SMTP
/// sessions or sockets; receives one message for a set of users and says whether it is kept.
/// </summary>
public interface IDeliveryAgent
{
    /// <summary>A short name of the kind of store (<c>maildir</c>, <c>pipe</c>…) for metrics and logs.</summary>
    string DeliveryType { get; }

    /// <summary>Starts writing one message for <paramref name="users"/> (each user once).</summary>
    ValueTask<IDeliveryWriter> BeginAsync(MailTransactionContext context, IReadOnlyList<string> users, CancellationToken cancellationToken);
}

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
