namespace SlimMail.Delivery;

/// <summary>
/// The read side of a user's mail store, as POP3 needs it: list the messages with exact sizes and stable
/// unique ids, read one, delete a set. Maildir now; a database store can implement the same.
/// </summary>
public interface IMailboxStore
{
    /// <summary>
    /// Opens and locks <paramref name="user"/>'s mailbox for one session, or returns null when another
    /// session holds it. The snapshot of messages is taken now: mail arriving later shows in the next session.
    /// </summary>
    ValueTask<IMailboxSession?> OpenAsync(string user, CancellationToken cancellationToken);
}

/// <summary>One locked view of a mailbox. Disposing releases the lock and deletes nothing.</summary>
public interface IMailboxSession : IAsyncDisposable
{
    /// <summary>The messages, oldest first.</summary>
    IReadOnlyList<MailboxMessage> Messages { get; }

    /// <summary>Opens a message. The stream has LF or CRLF line endings; the reader sends CRLF.
    /// A store that cannot reach its storage throws <see cref="IOException"/>.</summary>
    ValueTask<Stream> OpenReadAsync(int index, CancellationToken cancellationToken);

    /// <summary>Deletes the messages at <paramref name="indexes"/> durably (the POP3 UPDATE state);
    /// throws <see cref="IOException"/> when the storage cannot be reached.</summary>
    ValueTask DeleteAsync(IReadOnlyCollection<int> indexes, CancellationToken cancellationToken);
}

/// <summary>A message in a mailbox.</summary>
/// <param name="UniqueId">Stable across sessions and restarts; printable ASCII, at most 70 characters.</param>
/// <param name="Size">The size in octets with CRLF line endings: exactly what RETR sends before byte-stuffing.</param>
public sealed record MailboxMessage(string UniqueId, long Size);
