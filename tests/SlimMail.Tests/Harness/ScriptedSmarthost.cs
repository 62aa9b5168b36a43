using System.Collections.Concurrent;
using System.Net;
using System.Text;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Tests.Harness;

/// <summary>
/// A receiving SMTP server for the relay tests (our engine on a real loopback socket) whose answers follow
/// the recipient's local part: <c>accept…</c> takes the mail, <c>reject…</c> gets <c>550 5.1.1</c>,
/// <c>defer…</c> gets <c>451 4.2.0</c> while <see cref="Deferring"/> is true. Commits can be held on a gate
/// (to kill the sender mid-DATA). Every committed message is recorded with its envelope.
/// </summary>
internal sealed class ScriptedSmarthost : IMessageHandler, IAsyncDisposable
{
    private readonly SmtpServer _server;

    private ScriptedSmarthost(ListenerRole role, Func<System.Net.Security.SslServerAuthenticationOptions>? tls, SlimMail.Auth.IAuthenticator? authenticator)
    {
        var options = new SmtpServerOptions
        {
            Hostname = "smarthost.test",
            Listeners = [new SmtpListenerOptions(new IPEndPoint(IPAddress.Loopback, 0), role)],
            Tls = tls,
            Authenticator = authenticator,
        };
        _server = new SmtpServer(options, this);
    }

    public sealed record Received(string Sender, IReadOnlyList<string> Recipients, string Data, string? Tls = null, string? User = null);

    public ConcurrentQueue<Received> Messages { get; } = new();

    public ConcurrentQueue<string> RecipientAttempts { get; } = new();

    public volatile bool Deferring = true;

    /// <summary>When set, a commit waits for it; a commit that had to wait answers 451 and records nothing.</summary>
    public TaskCompletionSource? CommitGate { get; set; }

    public TaskCompletionSource CommitStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Port => _server.EndPoints[0].Port;

    public long MaxMessageSize => 0;

    public static async Task<ScriptedSmarthost> StartAsync(ListenerRole role = ListenerRole.Mx,
        Func<System.Net.Security.SslServerAuthenticationOptions>? tls = null, SlimMail.Auth.IAuthenticator? authenticator = null)
    {
        var host = new ScriptedSmarthost(role, tls, authenticator);
        await host._server.StartAsync();
        return host;
    }

    public IEnumerable<Received> To(string recipient) => Messages.Where(m => m.Recipients.Contains(recipient));

    public async Task<Received> WaitForAsync(Func<Received, bool> match, TimeSpan? timeout = null)
    {
        DateTime end = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < end)
        {
            if (Messages.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("the smarthost never received the expected message; it has: "
            + string.Join("; ", Messages.Select(m => $"<{m.Sender}> → {string.Join(",", m.Recipients)}")));
    }

    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult(TransactionStart.Accept(new Transaction(this, context)));

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    private sealed class Transaction(ScriptedSmarthost owner, MailTransactionContext context) : IMessageTransaction
    {
        private readonly List<string> _recipients = [];
        private readonly MemoryStream _data = new();

        public ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken)
        {
            string address = recipient.ToString();
            owner.RecipientAttempts.Enqueue(address);
            if (recipient.LocalPart.StartsWith("reject", StringComparison.Ordinal))
            {
                return ValueTask.FromResult(new SmtpReply(550, "5.1.1", $"<{address}>: Recipient address rejected: User unknown"));
            }

            if (recipient.LocalPart.StartsWith("defer", StringComparison.Ordinal) && owner.Deferring)
            {
                return ValueTask.FromResult(new SmtpReply(451, "4.2.0", $"<{address}>: mailbox busy, try later"));
            }

            _recipients.Add(address);
            return ValueTask.FromResult(SmtpReplies.RecipientOk);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => _data.WriteAsync(data, cancellationToken);

        public async ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken)
        {
            owner.CommitStarted.TrySetResult();
            if (owner.CommitGate is { } gate)
            {
                await gate.Task;
                return new SmtpReply(451, "4.3.0", "held and dropped by the test");
            }

            owner.Messages.Enqueue(new Received(context.Sender?.ToString() ?? "", [.. _recipients], Encoding.UTF8.GetString(_data.ToArray()),
                context.Session.TlsDescription, context.Session.AuthenticatedUser));
            return SmtpReplies.Ok;
        }

        public ValueTask DisposeAsync() => _data.DisposeAsync();
    }
}
