using System.Globalization;
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

    /// <summary>Creates the handler.</summary>
    /// <param name="policy">Decides each recipient.</param>
    /// <param name="agentFor">The delivery agent of a user (agents may be shared by many users).</param>
    /// <param name="logger">Where delivery outcomes are logged.</param>
    /// <param name="maxMessageSize">A limit of the handler's own, or 0.</param>
    /// <param name="allowAnySender">Whether an authenticated user may use any MAIL FROM (<c>Users.*.AllowAnySender</c>).</param>
    public LocalDeliveryHandler(RecipientPolicy policy, Func<string, IDeliveryAgent> agentFor, ILogger logger, long maxMessageSize = 0,
        Func<string, bool>? allowAnySender = null)
    {
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

    private sealed class Transaction : IMessageTransaction
    {
        private readonly LocalDeliveryHandler _owner;
        private readonly MailTransactionContext _context;
        private readonly List<string> _users = new(1);
        private readonly List<(IDeliveryAgent Agent, IDeliveryWriter Writer, List<string> Users)> _writers = new(1);
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
                    // Several addresses of one user in one transaction give that user one copy.
                    if (!_users.Contains(decision.User!))
                    {
                        _users.Add(decision.User!);
                    }

                    return ValueTask.FromResult(SmtpReplies.RecipientOk);
                case RecipientAction.Relay:
                    return ValueTask.FromResult(RelayUnavailable);
                default:
                    return ValueTask.FromResult(decision.Reply!);
            }
        }

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            if (!_started)
            {
                await StartAsync(cancellationToken).ConfigureAwait(false);
            }

            foreach ((_, IDeliveryWriter writer, _) in _writers)
            {
                await writer.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            }
        }

        public async ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken)
        {
            if (!_started)
            {
                await StartAsync(cancellationToken).ConfigureAwait(false);
            }

            int delivered = 0;
            int temporary = 0;
            int permanent = 0;
            foreach ((IDeliveryAgent agent, IDeliveryWriter writer, List<string> users) in _writers)
            {
                DeliveryOutcome outcome;
                try
                {
                    outcome = await writer.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
                {
                    LogDeliveryException(_owner._logger, _context.QueueId, agent.DeliveryType, e);
                    outcome = DeliveryOutcome.TemporaryFailure;
                }

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
                    LogDelivery(_owner._logger, level, _context.QueueId, string.Join(",", users), agent.DeliveryType, outcome);
                }

                switch (outcome)
                {
                    case DeliveryOutcome.Delivered: delivered++; break;
                    case DeliveryOutcome.TemporaryFailure: temporary++; break;
                    default: permanent++; break;
                }
            }

            if (temporary > 0)
            {
                return SmtpReplies.TransactionFailed;
            }

            if (delivered == 0 && permanent > 0)
            {
                return new SmtpReply(554, "5.3.0", "Delivery failed permanently");
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

        // Groups the users by agent, so one Maildir store writes the message once for all its users.
        private async ValueTask StartAsync(CancellationToken cancellationToken)
        {
            _started = true;
            var groups = new List<(IDeliveryAgent Agent, List<string> Users)>(1);
            foreach (string user in _users)
            {
                IDeliveryAgent agent = _owner._agentFor(user);
                int index = groups.FindIndex(g => ReferenceEquals(g.Agent, agent));
                if (index < 0)
                {
                    groups.Add((agent, [user]));
                }
                else
                {
                    groups[index].Users.Add(user);
                }
            }

            foreach ((IDeliveryAgent agent, List<string> users) in groups)
            {
                IDeliveryWriter writer = await agent.BeginAsync(_context, users, cancellationToken).ConfigureAwait(false);
                _writers.Add((agent, writer, users));
            }
        }
    }

    [LoggerMessage(Message = "{QueueId}: delivery to {Users} via {Agent}: {Outcome}")]
    private static partial void LogDelivery(ILogger logger, LogLevel level, string queueId, string users, string agent, DeliveryOutcome outcome);

    [LoggerMessage(Level = LogLevel.Error, Message = "{QueueId}: delivery via {Agent} failed")]
    private static partial void LogDeliveryException(ILogger logger, string queueId, string agent, Exception exception);
}
