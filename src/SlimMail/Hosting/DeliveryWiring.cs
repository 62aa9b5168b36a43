using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;
using SlimMail.PostgreSql;
using SlimMail.Relay.Queue;

namespace SlimMail.Host.Hosting;

/// <summary>
/// Builds the delivery side from the settings: routing, policy, each user's Maildir, and the named
/// deliveries (Pipe, PostgreSql) users point at. SMTP writes and POP3 reads through it.
/// </summary>
internal sealed class DeliveryWiring : IMailboxStore
{
    private readonly SlimMailSettings _settings;
    private readonly ConcurrentDictionary<string, MaildirMailbox> _maildirs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IDeliveryAgent> _deliveries = new(StringComparer.Ordinal);

    /// <param name="settings">The configuration in force.</param>
    /// <param name="logger">Where deliveries log failures.</param>
    /// <param name="postgreSql">The store for a connection string, shared across reloads so pools are not leaked.</param>
    /// <param name="queue">The outbound queue, when a relay is configured.</param>
    public DeliveryWiring(SlimMailSettings settings, ILogger logger, Func<string, PostgreSqlStore> postgreSql, OutboundQueue? queue = null)
    {
        _queue = queue;
        _settings = settings;
        _logger = logger;
        foreach ((string user, UserSettings userSettings) in settings.Users)
        {
            (int, int)? owner = userSettings.Owner is null ? null : MaildirOwner.Resolve(userSettings.Owner);
            _maildirs[user] = new MaildirMailbox(settings.MailDirectoryOf(user), userSettings.FileMode, owner);
        }

        Store = new MaildirStore(MailboxOf);
        Mailboxes = new MaildirMailboxStore(MailboxOf);
        foreach ((string name, DeliverySettings delivery) in settings.Deliveries)
        {
            _deliveries[name] = delivery.Type switch
            {
                "Pipe" => new PipeDelivery(delivery.Command!, delivery.Timeout, logger),
                "PostgreSql" => postgreSql(delivery.ConnectionString!),
                _ => Store,
            };
        }
    }

    private readonly ILogger _logger;
    private readonly OutboundQueue? _queue;

    public MaildirStore Store { get; }

    public MaildirMailboxStore Mailboxes { get; }

    public LocalDeliveryHandler CreateHandler()
    {
        var routing = new MailRouting(_settings.Domains, _settings.Users.Keys);
        var policy = new RecipientPolicy(routing, relayEnabled: !string.Equals(_settings.RelayMode, "None", StringComparison.Ordinal));
        return new LocalDeliveryHandler(policy, AgentOf, _logger,
            allowAnySender: user => _settings.Users.TryGetValue(user, out UserSettings? u) && u.AllowAnySender,
            hostname: _settings.Hostname,
            relayNotification: _queue is null ? null : async (_, sender, report, cancellationToken) =>
                await _queue.EnqueueAsync("", [sender.ToString()], report, cancellationToken).ConfigureAwait(false),
            relay: _queue);
    }

    /// <summary>The delivery a user's mail goes to: the one named by <c>Users.NAME.Delivery</c>, else their Maildir.</summary>
    public IDeliveryAgent AgentOf(string user) =>
        _settings.Users.TryGetValue(user, out UserSettings? settings) && settings.Delivery is { } name && _deliveries.TryGetValue(name, out IDeliveryAgent? agent)
            ? agent
            : Store;

    /// <summary>POP3 reads where the user's mail is written: the database for a PostgreSql user, else the Maildir.</summary>
    public ValueTask<IMailboxSession?> OpenAsync(string user, CancellationToken cancellationToken) =>
        AgentOf(user) is IMailboxStore store ? store.OpenAsync(user, cancellationToken) : Mailboxes.OpenAsync(user, cancellationToken);

    // Configured users have their Maildir; a user known only to the External authenticator gets one under
    // <DataDirectory>/mail/ when the name is safe as a directory name.
    private MaildirMailbox? MailboxOf(string user)
    {
        if (_maildirs.TryGetValue(user, out MaildirMailbox? mailbox))
        {
            return mailbox;
        }

        if (user.Length == 0 || user.Length > 255 || user.StartsWith('.') || user.AsSpan().IndexOfAny("/\\\0\r\n") >= 0)
        {
            return null;
        }

        return _maildirs.GetOrAdd(user, name => new MaildirMailbox(_settings.MailDirectoryOf(name)));
    }
}
