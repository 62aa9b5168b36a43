using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core.Harness;

/// <summary>
/// Accepts every recipient and forgets the message, as smtp-sink does: what a session costs on its own, without a
/// store's. Also compiled into the benchmarks (bench/SlimMail.Benchmarks links this file).
/// </summary>
internal sealed class DiscardingHandler : IMessageHandler, IMessageTransaction
{
    public long MaxMessageSize => 0;

    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult(TransactionStart.Accept(this));

    public ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken) =>
        ValueTask.FromResult(SmtpReplies.RecipientOk);

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => default;

    public ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken) => ValueTask.FromResult(SmtpReplies.Ok);

    public ValueTask DisposeAsync() => default;
}
