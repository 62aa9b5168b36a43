using System.Collections.Concurrent;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Samples;

/// <summary>A message the <see cref="InMemoryMessageHandler"/> accepted.</summary>
/// <param name="Sender">The reverse-path, or null for <c>&lt;&gt;</c>.</param>
/// <param name="Recipients">The accepted recipients.</param>
/// <param name="Data">The message as received: a <c>Received:</c> header, then what the client sent (CRLF).</param>
public sealed record ReceivedMessage(string? Sender, IReadOnlyList<string> Recipients, byte[] Data);

/// <summary>
/// (a) Keeps every message in memory: the handler to put behind an SMTP server in an application's tests.
/// Refuses recipients outside <see cref="Domain"/> so the tests can see a 550 too.
/// </summary>
public sealed class InMemoryMessageHandler : IMessageHandler
{
    private static readonly SmtpReply NotHere = new(550, "5.1.1", "Recipient address rejected: not a test mailbox");

    /// <summary>The domain whose addresses are accepted.</summary>
    public string Domain { get; init; } = "example.test";

    /// <summary>The messages accepted so far, in order.</summary>
    public ConcurrentQueue<ReceivedMessage> Messages { get; } = new();

    /// <inheritdoc />
    public long MaxMessageSize => 10 * 1024 * 1024;

    /// <inheritdoc />
    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult(TransactionStart.Accept(new Transaction(this, context)));

    private sealed class Transaction(InMemoryMessageHandler owner, MailTransactionContext context) : IMessageTransaction
    {
        private readonly List<string> _recipients = [];
        private readonly MemoryStream _data = new();

        public ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken)
        {
            if (!string.Equals(recipient.Domain, owner.Domain, StringComparison.OrdinalIgnoreCase))
            {
                return ValueTask.FromResult(NotHere);
            }

            _recipients.Add(recipient.ToString());
            return ValueTask.FromResult(SmtpReplies.RecipientOk);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => _data.WriteAsync(data, cancellationToken);

        public ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken)
        {
            owner.Messages.Enqueue(new ReceivedMessage(context.Sender?.ToString(), _recipients, _data.ToArray()));
            return ValueTask.FromResult(SmtpReplies.Ok);
        }

        public ValueTask DisposeAsync() => _data.DisposeAsync();
    }
}
