using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using SlimMail.Smtp;

namespace SlimMail.Delivery;

/// <summary>
/// The <see cref="IMessageHandler"/> of a SlimMail server: asks <see cref="RecipientPolicy"/> about each
/// recipient, gives each user one copy, and fans the message out to the users' delivery agents. The reply
/// to the end of data waits for every delivery (the product contract's "local delivery is synchronous").
/// </summary>
public sealed partial class LocalDeliveryHandler : IMessageHandler
{
    private static readonly SmtpReply RelayUnavailable = new(550, "5.7.1", "Relay access denied: outbound delivery is not available");

    private readonly RecipientPolicy _policy;
    private readonly Func<string, IDeliveryAgent> _agentFor;
    private static readonly SmtpReply SenderNotOwned = new(553, "5.7.1", "Sender address rejected: not owned by the authenticated user");

    private readonly ILogger _logger;
    private readonly Func<string, bool> _allowAnySender;
    private readonly string _hostname;
    private readonly IDeliveryAgent? _relay;
    private readonly Func<MailTransactionContext, MailAddress, byte[], CancellationToken, ValueTask>? _relayNotification;

    /// <summary>Creates the handler.</summary>
    /// <param name="policy">Decides each recipient.</param>
    /// <param name="agentFor">The delivery agent of a user (agents may be shared by many users).</param>
    /// <param name="logger">Where delivery outcomes are logged.</param>
    /// <param name="maxMessageSize">A limit of the handler's own, or 0.</param>
    /// <param name="allowAnySender">Whether an authenticated user may use any MAIL FROM (<c>Users.*.AllowAnySender</c>).</param>
    /// <param name="hostname">The name delivery-status notifications are sent from; the machine's name if null.</param>
    /// <param name="relayNotification">Sends a notification to a sender in another domain; without it such notifications are logged and dropped.</param>
    /// <param name="relay">Where recipients in other domains go (the outbound queue); without it they are refused.</param>
    public LocalDeliveryHandler(RecipientPolicy policy, Func<string, IDeliveryAgent> agentFor, ILogger logger, long maxMessageSize = 0,
        Func<string, bool>? allowAnySender = null, string? hostname = null,
        Func<MailTransactionContext, MailAddress, byte[], CancellationToken, ValueTask>? relayNotification = null,
        IDeliveryAgent? relay = null)
    {
        _relay = relay;
        _hostname = hostname ?? System.Net.Dns.GetHostName();
        _relayNotification = relayNotification;
        _policy = policy;
        _agentFor = agentFor;
        _logger = logger;
        MaxMessageSize = maxMessageSize;
        _allowAnySender = allowAnySender ?? (static _ => false);
    }

    /// <inheritdoc />
    public long MaxMessageSize { get; }

    /// <inheritdoc />
    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        string? user = context.Session.AuthenticatedUser;
        if (user is not null && context.Sender is { } sender && !_allowAnySender(user) && !Owns(user, sender))
        {
            return ValueTask.FromResult(TransactionStart.Refuse(SenderNotOwned));
        }

        return ValueTask.FromResult(TransactionStart.Accept(new Transaction(this, context)));
    }

    // An address is the user's if it routes to them (a mailbox or a catch-all they own), or if it is their
    // name (externally authenticated users are often named by their address).
    private bool Owns(string user, MailAddress sender)
    {
        MailRoute route = _policy.Routing.Resolve(sender);
        return (route.Kind == MailRouteKind.LocalUser && route.User == user)
            || string.Equals(sender.ToString(), user, StringComparison.OrdinalIgnoreCase);
    }

    // Sends a notification about a message to its sender: into the sender's own mailbox when the sender is
    // local, else to the relay (when outbound delivery exists). A notification is never sent about a bounce.
    private async ValueTask NotifySenderAsync(MailTransactionContext original, IReadOnlyList<DsnRecipient> failed,
        ReadOnlyMemory<byte> headers, CancellationToken cancellationToken)
    {
        if (original.Sender is not { } sender)
        {
            return;
        }

        byte[] report = DeliveryStatusNotification.Build(_hostname, sender.ToString(), original.QueueId, DateTimeOffset.UtcNow, failed, headers.Span);
        var context = new MailTransactionContext(QueueIdGenerator.Next(), original.Session, null, original.SmtpUtf8, eightBit: true, report.Length);
        RecipientDecision decision = _policy.Decide(original.Session, sender);
        if (decision.Action == RecipientAction.Relay && _relayNotification is not null)
        {
            await _relayNotification(context, sender, report, cancellationToken).ConfigureAwait(false);
            LogNotification(_logger, original.QueueId, context.QueueId, "relay");
            return;
        }

        if (decision.Action != RecipientAction.Local)
        {
            LogNotificationDropped(_logger, original.QueueId);
            return;
        }

        IDeliveryAgent agent = _agentFor(decision.User!);
        DeliveryOutcome outcome;
        await using (IDeliveryWriter writer = await agent.BeginAsync(context, [new DeliveryRecipient(decision.User!, sender)], cancellationToken).ConfigureAwait(false))
        {
            await writer.WriteAsync(report, cancellationToken).ConfigureAwait(false);
            outcome = await writer.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        LogNotification(_logger, original.QueueId, context.QueueId, outcome.ToString());
    }

    private sealed class Transaction : IMessageTransaction
    {
        // A partial failure needs two deliveries at least; only then are the headers kept for the notification.
        private const int MaxHeaderCapture = 64 * 1024;

        private readonly LocalDeliveryHandler _owner;
        private readonly MailTransactionContext _context;
        private readonly List<DeliveryRecipient> _recipients = new(1);
        private readonly List<DeliveryRecipient> _relayed = [];
        private readonly List<(IDeliveryAgent Agent, IDeliveryWriter Writer, List<DeliveryRecipient> Recipients)> _writers = new(1);
        private System.Buffers.ArrayBufferWriter<byte>? _headers;
        private bool _started;

        public Transaction(LocalDeliveryHandler owner, MailTransactionContext context)
        {
            _owner = owner;
            _context = context;
        }

        public ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken)
        {
            RecipientDecision decision = _owner._policy.Decide(_context.Session, recipient);
            switch (decision.Action)
            {
                case RecipientAction.Local:
                    string user = decision.User!;
                    if (_owner._agentFor(user).CheckRecipient(_context.Sender, recipient) is { } refusal)
                    {
                        return ValueTask.FromResult(refusal);
                    }

                    // Several addresses of one user in one transaction give that user one copy.
                    if (!_recipients.Exists(r => r.User == user))
                    {
                        _recipients.Add(new DeliveryRecipient(user, recipient));
                    }

                    return ValueTask.FromResult(SmtpReplies.RecipientOk);
                case RecipientAction.Relay:
                    if (_owner._relay is null)
                    {
                        return ValueTask.FromResult(RelayUnavailable);
                    }

                    string address = recipient.ToString();
                    if (!_relayed.Exists(r => string.Equals(r.Address.ToString(), address, StringComparison.OrdinalIgnoreCase)))
                    {
                        _relayed.Add(new DeliveryRecipient("", recipient));
                    }

                    return ValueTask.FromResult(SmtpReplies.RecipientOk);
                default:
                    return ValueTask.FromResult(decision.Reply!);
            }
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            if (!_started)
            {
                await StartAsync(cancellationToken).ConfigureAwait(false);
            }

            if (_headers is not null && _headers.WrittenCount < MaxHeaderCapture)
            {
                System.Buffers.BuffersExtensions.Write(_headers, data.Span[..Math.Min(data.Length, MaxHeaderCapture - _headers.WrittenCount)]);
            }

            foreach ((_, IDeliveryWriter writer, _) in _writers)
            {
                await writer.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            }
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken)
        {
            if (!_started)
            {
                await StartAsync(cancellationToken).ConfigureAwait(false);
            }

            int delivered = 0;
            int temporary = 0;
            List<DsnRecipient>? failed = null;
            foreach ((IDeliveryAgent agent, IDeliveryWriter writer, List<DeliveryRecipient> recipients) in _writers)
            {
                // The client retries the whole message after a 451, so the deliveries not yet made are
                // abandoned rather than made twice (the ones already made are repeated: at-least-once).
                if (temporary > 0)
                {
                    break;
                }

                DeliveryOutcome outcome;
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                try
                {
                    outcome = await writer.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
                {
                    LogDeliveryException(_owner._logger, _context.QueueId, agent.DeliveryType, e);
                    outcome = DeliveryOutcome.TemporaryFailure;
                }

                SlimMailMetrics.DeliveryDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds,
                    new KeyValuePair<string, object?>("type", agent.DeliveryType));
                SlimMailMetrics.Deliveries.Add(1, new KeyValuePair<string, object?>("type", agent.DeliveryType),
                    new KeyValuePair<string, object?>("outcome", outcome switch
                    {
                        DeliveryOutcome.Delivered => "delivered",
                        DeliveryOutcome.TemporaryFailure => "temporary",
                        _ => "permanent",
                    }));

                // A successful local delivery is what the session's "accepted" line reports; failures stand out.
                LogLevel level = outcome == DeliveryOutcome.Delivered ? LogLevel.Debug : LogLevel.Warning;
                if (_owner._logger.IsEnabled(level))
                {
                    LogDelivery(_owner._logger, level, _context.QueueId, UserList(recipients), agent.DeliveryType, outcome);
                }

                switch (outcome)
                {
                    case DeliveryOutcome.Delivered:
                        delivered++;
                        break;
                    case DeliveryOutcome.TemporaryFailure:
                        temporary++;
                        break;
                    default:
                        failed ??= [];
                        foreach (DeliveryRecipient recipient in recipients)
                        {
                            failed.Add(new DsnRecipient(recipient.Address.ToString(), "failed", "5.3.0",
                                $"delivery via {agent.DeliveryType} failed permanently"));
                        }

                        break;
                }
            }

            if (temporary > 0)
            {
                return SmtpReplies.TransactionFailed;
            }

            if (delivered == 0 && failed is not null)
            {
                return new SmtpReply(554, "5.3.0", "Delivery failed permanently");
            }

            if (failed is not null)
            {
                // The message is kept for some users, so the client must not retry it: the sender hears of the
                // others by a delivery-status notification instead.
                await _owner.NotifySenderAsync(_context, failed, _headers?.WrittenMemory ?? default, cancellationToken).ConfigureAwait(false);
            }

            return new SmtpReply(250, "2.0.0", string.Create(CultureInfo.InvariantCulture, $"Ok: queued as {_context.QueueId}"));
        }

        public async ValueTask DisposeAsync()
        {
            foreach ((_, IDeliveryWriter writer, _) in _writers)
            {
                await writer.DisposeAsync().ConfigureAwait(false);
            }

            _writers.Clear();
        }

        private static string UserList(List<DeliveryRecipient> recipients)
        {
            if (recipients.Count == 1)
            {
                return recipients[0].User;
            }

            var text = new System.Text.StringBuilder();
            foreach (DeliveryRecipient recipient in recipients)
            {
                text.Append(text.Length == 0 ? "" : ",").Append(recipient.User);
            }

            return text.ToString();
        }

        // Groups the users by agent, so one Maildir store writes the message once for all its users; an agent
        // whose users fail one by one (a program each) gets a writer per user.
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        private async ValueTask StartAsync(CancellationToken cancellationToken)
        {
            _started = true;
            var groups = new List<(IDeliveryAgent Agent, List<DeliveryRecipient> Recipients)>(1);
            foreach (DeliveryRecipient recipient in _recipients)
            {
                IDeliveryAgent agent = _owner._agentFor(recipient.User);
                int index = agent.WritesForManyUsers ? groups.FindIndex(g => ReferenceEquals(g.Agent, agent)) : -1;
                if (index < 0)
                {
                    groups.Add((agent, [recipient]));
                }
                else
                {
                    groups[index].Recipients.Add(recipient);
                }
            }

            if (_relayed.Count > 0)
            {
                groups.Add((_owner._relay!, _relayed));
            }

            // Maildirs last: they rarely fail, so a database or program that fails first costs no duplicate.
            groups.Sort(static (a, b) => (a.Agent is MaildirStore).CompareTo(b.Agent is MaildirStore));
            foreach ((IDeliveryAgent agent, List<DeliveryRecipient> recipients) in groups)
            {
                IDeliveryWriter writer = await agent.BeginAsync(_context, recipients, cancellationToken).ConfigureAwait(false);
                _writers.Add((agent, writer, recipients));
            }

            if (_writers.Count > 1 && _context.Sender is not null)
            {
                _headers = new System.Buffers.ArrayBufferWriter<byte>(4096);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: delivery-status notification {NotificationId} to the sender: {Outcome}")]
    private static partial void LogNotification(ILogger logger, string queueId, string notificationId, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{QueueId}: the sender is neither local nor reachable by the relay; no delivery-status notification sent")]
    private static partial void LogNotificationDropped(ILogger logger, string queueId);

    [LoggerMessage(Message = "{QueueId}: delivery to {Users} via {Agent}: {Outcome}")]
    private static partial void LogDelivery(ILogger logger, LogLevel level, string queueId, string users, string agent, DeliveryOutcome outcome);

    [LoggerMessage(Level = LogLevel.Error, Message = "{QueueId}: delivery via {Agent} failed")]
    private static partial void LogDeliveryException(ILogger logger, string queueId, string agent, Exception exception);
}
