using SlimMail.Auth;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;
using SlimMail.Smtp;

namespace SlimMail.Host.Hosting;

/// <summary>
/// What a reload replaces (users, passwords, domains, mailboxes, deliveries), swapped whole: sessions that
/// already began a transaction finish with the old objects, new ones get the new. Listeners, limits and
/// TLS file paths are fixed for the life of the process (certificate files reload by themselves).
/// </summary>
internal sealed class LiveConfiguration : IMessageHandler, IAuthenticator, IMailboxStore
{
    private volatile Generation _current;

    public LiveConfiguration(SlimMailSettings settings, SecurityWiring security)
    {
        _current = Build(settings, security);
        Security = security;
    }

    public SecurityWiring Security { get; }

    public SlimMailSettings Settings => _current.Settings;

    public long MaxMessageSize => 0;

    /// <summary>Puts <paramref name="settings"/> in force for new transactions, logins and mailboxes.</summary>
    public void Apply(SlimMailSettings settings) => _current = Build(settings, Security);

    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
        _current.Handler.BeginAsync(context, cancellationToken);

    public ValueTask<AuthResult> AuthenticateAsync(string user, string password, CancellationToken cancellationToken) =>
        _current.Authenticator.AuthenticateAsync(user, password, cancellationToken);

    public ValueTask<IMailboxSession?> OpenAsync(string user, CancellationToken cancellationToken) =>
        _current.Delivery.Mailboxes.OpenAsync(user, cancellationToken);

    private static Generation Build(SlimMailSettings settings, SecurityWiring security)
    {
        var delivery = new DeliveryWiring(settings);
        return new Generation(settings, delivery, delivery.CreateHandler(security.DeliveryLogger), SecurityWiring.CreateAuthenticator(settings));
    }

    private sealed record Generation(SlimMailSettings Settings, DeliveryWiring Delivery, IMessageHandler Handler, IAuthenticator Authenticator);
}
