using SlimMail.Smtp;

namespace SlimMail.Delivery;

/// <summary>
/// The one place that decides, at <c>RCPT</c>, whether a recipient is delivered locally, relayed, or refused.
/// Relaying needs an authenticated session (or a trusted <see cref="ListenerRole.Local"/> listener) and an
/// outbound relay; everything else for a foreign domain is refused, so SlimMail is never an open relay.
/// </summary>
public sealed class RecipientPolicy
{
    /// <summary>The user that takes a <see cref="ListenerRole.Local"/> listener's mail for foreign domains when nothing relays.</summary>
    public const string LocalUser = "local";

    private static readonly SmtpReply RelayNotConfigured = new(550, "5.7.1", "Relay access denied: this server does not relay");
    private static readonly SmtpReply RelayDenied = new(554, "5.7.1", "Relay access denied");

    private readonly MailRouting _routing;
    private readonly bool _relayEnabled;

    /// <summary>Creates the policy.</summary>
    /// <param name="routing">The domains, mailboxes and users.</param>
    /// <param name="relayEnabled">True when outbound relay is configured (<c>Relay.Mode</c> is not <c>None</c>).</param>
    public RecipientPolicy(MailRouting routing, bool relayEnabled)
    {
        _routing = routing;
        _relayEnabled = relayEnabled;
    }

    /// <summary>The routing table the policy uses.</summary>
    public MailRouting Routing => _routing;

    /// <summary>Decides one recipient of one session.</summary>
    public RecipientDecision Decide(SmtpSessionInfo session, MailAddress recipient)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(recipient);
        MailRoute route = _routing.Resolve(recipient);
        switch (route.Kind)
        {
            case MailRouteKind.LocalUser:
                return RecipientDecision.Local(route.User!);
            case MailRouteKind.UnknownMailbox:
                return RecipientDecision.Refuse(new SmtpReply(550, "5.1.1", $"<{Printable(recipient)}>: Recipient address rejected: User unknown"));
        }

        bool trusted = session.Role == ListenerRole.Local || session.AuthenticatedUser is not null;
        if (trusted && _relayEnabled)
        {
            return RecipientDecision.Relay;
        }

        if (session.Role == ListenerRole.Local && _routing.Users.Contains(LocalUser))
        {
            return RecipientDecision.Local(LocalUser);
        }

        return RecipientDecision.Refuse(_relayEnabled ? RelayDenied : RelayNotConfigured);
    }

    private static string Printable(MailAddress address) => ReceivedHeader.Clean(address.ToString(), allowUtf8: true);
}

/// <summary>The outcome of <see cref="RecipientPolicy.Decide"/>.</summary>
public readonly struct RecipientDecision
{
    private RecipientDecision(RecipientAction action, string? user, SmtpReply? reply)
    {
        Action = action;
        User = user;
        Reply = reply;
    }

    /// <summary>What to do with the recipient.</summary>
    public RecipientAction Action { get; }

    /// <summary>The local user, for <see cref="RecipientAction.Local"/>.</summary>
    public string? User { get; }

    /// <summary>The refusal, for <see cref="RecipientAction.Refuse"/>.</summary>
    public SmtpReply? Reply { get; }

    /// <summary>Relay to another domain.</summary>
    public static RecipientDecision Relay { get; } = new(RecipientAction.Relay, null, null);

    /// <summary>Deliver to a local user.</summary>
    public static RecipientDecision Local(string user) => new(RecipientAction.Local, user, null);

    /// <summary>Refuse with a reply.</summary>
    public static RecipientDecision Refuse(SmtpReply reply) => new(RecipientAction.Refuse, null, reply);
}

/// <summary>The three things that can happen to a recipient.</summary>
public enum RecipientAction
{
    /// <summary>Deliver to a local user's store.</summary>
    Local,

    /// <summary>Queue for delivery to another domain.</summary>
    Relay,

    /// <summary>Refuse at RCPT.</summary>
    Refuse,
}
