using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SlimMail.Auth;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;
using SlimMail.PostgreSql;
using SlimMail.Smtp;

namespace SlimMail.Host.Hosting;

/// <summary>
/// What a reload replaces (users, passwords, domains, mailboxes, deliveries), swapped whole: sessions that
/// already began a transaction finish with the old objects, new ones get the new. Listeners, limits and
/// TLS file paths are fixed for the life of the process (certificate files reload by themselves).
/// </summary>
internal sealed partial class LiveConfiguration : IMessageHandler, IAuthenticator, IMailboxStore, IAsyncDisposable
{
    private volatile Generation _current;

    private readonly ConcurrentDictionary<string, PostgreSqlStore> _postgreSql = new(StringComparer.Ordinal);

    private readonly RelayWiring _relay;

    public LiveConfiguration(SlimMailSettings settings, SecurityWiring security, RelayWiring relay)
    {
        Security = security;
        _relay = relay;
        _current = Build(settings);
    }

    /// <summary>The PostgreSQL stores created so far (one per connection string), to migrate at start and dispose at exit.</summary>
    public ICollection<PostgreSqlStore> PostgreSqlStores => _postgreSql.Values;

    public SecurityWiring Security { get; }

    public SlimMailSettings Settings => _current.Settings;

    public long MaxMessageSize => 0;

    /// <summary>Puts <paramref name="settings"/> in force for new transactions, logins and mailboxes.</summary>
    public void Apply(SlimMailSettings settings) => _current = Build(settings);

    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
        _current.Handler.BeginAsync(context, cancellationToken);

    public ValueTask<AuthResult> AuthenticateAsync(string user, string password, CancellationToken cancellationToken) =>
        _current.Authenticator.AuthenticateAsync(user, password, cancellationToken);

    public ValueTask<IMailboxSession?> OpenAsync(string user, CancellationToken cancellationToken) =>
        _current.Delivery.OpenAsync(user, cancellationToken);

    /// <summary>
    /// Creates or migrates the database schemas now, in the background, so an unreachable database or a bad
    /// connection string shows in the log at start; deliveries retry it themselves (answering 451 meanwhile).
    /// </summary>
    public void PrepareStoresInBackground(ILogger logger)
    {
        foreach (PostgreSqlStore store in _postgreSql.Values)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    await store.EnsureSchemaAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    LogDatabaseUnavailable(logger, e.Message);
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (PostgreSqlStore store in _postgreSql.Values)
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "PostgreSQL delivery: the database cannot be reached yet ({Error}); messages for its users get 451 until it can")]
    private static partial void LogDatabaseUnavailable(ILogger logger, string error);

    private Generation Build(SlimMailSettings settings)
    {
        var delivery = new DeliveryWiring(settings, Security.DeliveryLogger,
            connectionString => _postgreSql.GetOrAdd(connectionString, c => new PostgreSqlStore(c, Security.DeliveryLogger)), _relay.Queue);
        return new Generation(settings, delivery, delivery.CreateHandler(), SecurityWiring.CreateAuthenticator(settings));
    }

    private sealed record Generation(SlimMailSettings Settings, DeliveryWiring Delivery, IMessageHandler Handler, IAuthenticator Authenticator);
}
