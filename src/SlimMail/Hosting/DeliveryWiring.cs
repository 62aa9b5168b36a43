using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;

namespace SlimMail.Host.Hosting;

/// <summary>Builds the delivery side (routing, policy, each user's Maildir) from the settings; SMTP writes and POP3 reads through it.</summary>
internal sealed class DeliveryWiring
{
    private readonly SlimMailSettings _settings;
    private readonly ConcurrentDictionary<string, MaildirMailbox> _maildirs = new(StringComparer.Ordinal);

    public DeliveryWiring(SlimMailSettings settings)
    {
        _settings = settings;
        foreach ((string user, UserSettings userSettings) in settings.Users)
        {
            (int, int)? owner = userSettings.Owner is null ? null : MaildirOwner.Resolve(userSettings.Owner);
            _maildirs[user] = new MaildirMailbox(settings.MailDirectoryOf(user), userSettings.FileMode, owner);
        }

        Store = new MaildirStore(MailboxOf);
        Mailboxes = new MaildirMailboxStore(MailboxOf);
    }

    public MaildirStore Store { get; }

    public MaildirMailboxStore Mailboxes { get; }

    public LocalDeliveryHandler CreateHandler(ILogger logger)
    {
        var routing = new MailRouting(_settings.Domains, _settings.Users.Keys);
        var policy = new RecipientPolicy(routing, relayEnabled: !string.Equals(_settings.RelayMode, "None", StringComparison.Ordinal));
        return new LocalDeliveryHandler(policy, _ => Store, logger,
            allowAnySender: user => _settings.Users.TryGetValue(user, out UserSettings? u) && u.AllowAnySender);
    }

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
