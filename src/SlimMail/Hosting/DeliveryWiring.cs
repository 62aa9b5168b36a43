using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;

namespace SlimMail.Host.Hosting;

/// <summary>Builds the delivery side (routing, policy, each user's store) from the settings.</summary>
internal static class DeliveryWiring
{
    public static LocalDeliveryHandler CreateHandler(SlimMailSettings settings, ILogger logger)
    {
        var routing = new MailRouting(settings.Domains, settings.Users.Keys);
        var policy = new RecipientPolicy(routing, relayEnabled: !string.Equals(settings.RelayMode, "None", StringComparison.Ordinal));
        var maildirs = new Dictionary<string, MaildirMailbox>(StringComparer.Ordinal);
        foreach ((string user, UserSettings userSettings) in settings.Users)
        {
            (int, int)? owner = userSettings.Owner is null ? null : MaildirOwner.Resolve(userSettings.Owner);
            maildirs[user] = new MaildirMailbox(settings.MailDirectoryOf(user), userSettings.FileMode, owner);
        }

        var store = new MaildirStore(user => maildirs.GetValueOrDefault(user));
        return new LocalDeliveryHandler(policy, _ => store, logger,
            allowAnySender: user => settings.Users.TryGetValue(user, out UserSettings? u) && u.AllowAnySender);
    }
}
