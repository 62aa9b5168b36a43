// This file is the embedding sample shown in README.md; a test checks that the README quotes it verbatim.
// <sample>
using System.Net;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace MyApp;

/// <summary>Accepts mail for any recipient and hands each finished message to a callback.</summary>
public sealed class CallbackHandler(Func<string?, IReadOnlyList<string>, byte[], Task> onMessage) : IMessageHandler
{
    public long MaxMessageSize => 10 * 1024 * 1024;

    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult(TransactionStart.Accept(new Transaction(context, onMessage)));

    private sealed class Transaction(MailTransactionContext context, Func<string?, IReadOnlyList<string>, byte[], Task> onMessage)
        : IMessageTransaction
    {
        private readonly List<string> _recipients = [];
        private readonly MemoryStream _body = new();

        public ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken)
        {
            _recipients.Add(recipient.ToString());
            return ValueTask.FromResult(SmtpReplies.RecipientOk);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            _body.WriteAsync(data, cancellationToken);

        public async ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken)
        {
            await onMessage(context.Sender?.ToString(), _recipients, _body.ToArray());
            return SmtpReplies.Ok; // sent to the client only now: 250 means the callback finished
        }

        public ValueTask DisposeAsync() => _body.DisposeAsync();
    }
}

public static class EmbeddedServer
{
    public static async Task<SmtpServer> StartAsync(Func<string?, IReadOnlyList<string>, byte[], Task> onMessage, int port = 2525)
    {
        var options = new SmtpServerOptions
        {
            Hostname = "app.example.test",
            Listeners = [new SmtpListenerOptions(new IPEndPoint(IPAddress.Loopback, port), ListenerRole.Local)],
        };
        var server = new SmtpServer(options, new CallbackHandler(onMessage));
        await server.StartAsync();
        return server; // StopAsync(TimeSpan) drains and stops it
    }
}
// </sample>
