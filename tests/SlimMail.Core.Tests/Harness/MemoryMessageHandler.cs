using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core.Harness;

/// <summary>Keeps committed messages in memory. Recipients whose local part starts with "unknown" are refused 550 5.1.1.</summary>
internal sealed class MemoryMessageHandler : IMessageHandler
{
    public ConcurrentQueue<StoredMessage> Messages { get; } = new();

    public int Aborted;

    public long MaxMessageSize { get; init; }

    public SmtpReply? CommitReply { get; set; }

    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult(TransactionStart.Accept(new Transaction(this, context)));

    internal sealed record StoredMessage(string? Sender, IReadOnlyList<string> Recipients, byte[] Data, MailTransactionContext Context)
    {
        public string Text => Encoding.UTF8.GetString(Data);

        // The message without the Received: header the engine prepends.
        public string Body
        {
            get
            {
                string text = Text;
                Assert.StartsWith("Received: ", text);
                int end = text.IndexOf("\r\n", StringComparison.Ordinal);
                while (text[end + 2] == '\t')
                {
                    end = text.IndexOf("\r\n", end + 2, StringComparison.Ordinal);
                }

                return text[(end + 2)..];
            }
        }
    }

    private sealed class Transaction(MemoryMessageHandler owner, MailTransactionContext context) : IMessageTransaction
    {
        private readonly List<string> _recipients = [];
        private readonly ArrayBufferWriter<byte> _data = new();
        private bool _committed;

        public ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken)
        {
            if (recipient.LocalPart.StartsWith("unknown", StringComparison.OrdinalIgnoreCase))
            {
                return ValueTask.FromResult(new SmtpReply(550, "5.1.1", "User unknown"));
            }

            _recipients.Add(recipient.ToString());
            return ValueTask.FromResult(SmtpReplies.RecipientOk);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            Assert.NotEmpty(_recipients);
            _data.Write(data.Span);
            return default;
        }

        public ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken)
        {
            if (owner.CommitReply is { } reply)
            {
                return ValueTask.FromResult(reply);
            }

            _committed = true;
            owner.Messages.Enqueue(new StoredMessage(context.Sender?.ToString(), _recipients, _data.WrittenSpan.ToArray(), context));
            return ValueTask.FromResult(new SmtpReply(250, "2.0.0", "Ok: queued as " + context.QueueId));
        }

        public ValueTask DisposeAsync()
        {
            if (!_committed)
            {
                Interlocked.Increment(ref owner.Aborted);
            }

            return default;
        }
    }
}
