using System.Collections.Frozen;
using System.Globalization;
using SlimMail.Smtp;

namespace SlimMail.Delivery;

/// <summary>
/// Maps addresses to users: <c>Domains.&lt;domain&gt;.Mailboxes</c> with <c>*</c> catch-alls. Domains and local
/// parts compare case-insensitively, and internationalised domains match in either U-label or A-label form.
/// Immutable: a configuration reload builds a new one.
/// </summary>
public sealed class MailRouting
{
    private const string CatchAll = "*";

    private readonly FrozenDictionary<string, FrozenDictionary<string, string>> _domains;

    /// <summary>Builds the routing table.</summary>
    /// <param name="domains">Domain → (local part or <c>*</c> → user name).</param>
    /// <param name="users">Every user that owns a mail store.</param>
    public MailRouting(IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> domains, IEnumerable<string> users)
    {
        ArgumentNullException.ThrowIfNull(domains);
        var table = new Dictionary<string, FrozenDictionary<string, string>>(StringComparer.Ordinal);
        foreach ((string domain, IReadOnlyDictionary<string, string> mailboxes) in domains)
        {
            table[NormalizeDomain(domain) ?? domain.ToLowerInvariant()] = mailboxes.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
        }

        _domains = table.ToFrozenDictionary(StringComparer.Ordinal);
        Users = users.ToFrozenSet(StringComparer.Ordinal);
    }

    /// <summary>Every user name.</summary>
    public IReadOnlySet<string> Users { get; }

    /// <summary>The configured domains, normalised.</summary>
    public IEnumerable<string> Domains => _domains.Keys;

    /// <summary>Where mail for <paramref name="address"/> goes.</summary>
    public MailRoute Resolve(MailAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsBarePostmaster)
        {
            return ResolvePostmaster();
        }

        string? domain = address.IsAddressLiteral ? address.Domain.ToLowerInvariant() : NormalizeDomain(address.Domain);
        if (domain is null || !_domains.TryGetValue(domain, out FrozenDictionary<string, string>? mailboxes))
        {
            return new MailRoute(MailRouteKind.ForeignDomain, null);
        }

        if (mailboxes.TryGetValue(address.LocalPart, out string? user) || mailboxes.TryGetValue(CatchAll, out user))
        {
            return new MailRoute(MailRouteKind.LocalUser, user);
        }

        return new MailRoute(MailRouteKind.UnknownMailbox, null);
    }

    /// <summary>True when <paramref name="domain"/> is one of ours.</summary>
    public bool IsLocalDomain(string domain) => NormalizeDomain(domain) is { } d && _domains.ContainsKey(d);

    /// <summary>Lower case and IDNA A-labels, so <c>Bücher.Example</c> and <c>xn--bcher-kva.example</c> are one domain.</summary>
    public static string? NormalizeDomain(string domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (System.Text.Ascii.IsValid(domain))
        {
            return domain.ToLowerInvariant();
        }

        try
        {
            return new IdnMapping().GetAscii(domain).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    // RFC 5321 §4.5.1: <postmaster> without a domain must be accepted.
    private MailRoute ResolvePostmaster()
    {
        foreach (FrozenDictionary<string, string> mailboxes in _domains.Values)
        {
            if (mailboxes.TryGetValue("postmaster", out string? user) || mailboxes.TryGetValue(CatchAll, out user))
            {
                return new MailRoute(MailRouteKind.LocalUser, user);
            }
        }

        return Users.Contains(RecipientPolicy.LocalUser)
            ? new MailRoute(MailRouteKind.LocalUser, RecipientPolicy.LocalUser)
            : new MailRoute(MailRouteKind.UnknownMailbox, null);
    }
}

/// <summary>What <see cref="MailRouting.Resolve"/> found.</summary>
/// <param name="Kind">The kind of destination.</param>
/// <param name="User">The user for <see cref="MailRouteKind.LocalUser"/>.</param>
public readonly record struct MailRoute(MailRouteKind Kind, string? User);

/// <summary>The kinds of destination an address can have.</summary>
public enum MailRouteKind
{
    /// <summary>A mailbox of a configured domain, owned by a user.</summary>
    LocalUser,

    /// <summary>A configured domain that has no such mailbox and no catch-all.</summary>
    UnknownMailbox,

    /// <summary>A domain that is not ours.</summary>
    ForeignDomain,
}
