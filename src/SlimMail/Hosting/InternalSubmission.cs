using System.Net;
using System.Text;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Host.Hosting;

/// <summary>
/// Hands a message the server itself wrote (a bounce) to the same <see cref="IMessageHandler"/> SMTP clients
/// reach, as if submitted on a loopback <c>Local</c> listener: a local sender gets it in their mailbox, a
/// remote one through the outbound queue, with every rule and guarantee of ordinary mail.
/// </summary>
internal static class InternalSubmission
{
    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 0);

    public static async Task<SmtpReply> SubmitAsync(IMessageHandler handler, MailAddress? sender, string recipient, ReadOnlyMemory<byte> message,
        CancellationToken cancellationToken)
    {
        if (!AddressParser.TryParseMailbox(Encoding.UTF8.GetBytes(recipient), out MailAddress? address) || address is null)
        {
            return new SmtpReply(553, "5.1.3", $"<{recipient}> is not an address");
        }

        var session = new SmtpSessionInfo(Loopback, Loopback, ListenerRole.Local);
        var context = new MailTransactionContext(QueueIdGenerator.Next(), session, sender, address.IsInternational, eightBit: true, message.Length);
        TransactionStart start = await handler.BeginAsync(context, cancellationToken).ConfigureAwait(false);
        if (start.Transaction is not { } transaction)
        {
            return start.Reply;
        }

        await using (transaction.ConfigureAwait(false))
        {
            SmtpReply accepted = await transaction.AddRecipientAsync(address, cancellationToken).ConfigureAwait(false);
            if (!accepted.IsPositive)
            {
                return accepted;
            }

            await transaction.WriteAsync(message, cancellationToken).ConfigureAwait(false);
            return await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
