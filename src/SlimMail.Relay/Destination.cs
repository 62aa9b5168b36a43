using System.Net;

namespace SlimMail.Relay;

/// <summary>A server to try: its name (for TLS and the logs), an address if already known, and a port.</summary>
public sealed record RemoteHost(string Name, IPAddress? Address, int Port)
{
    /// <inheritdoc />
    public override string ToString() => Address is null ? $"{Name}:{Port}" : $"{Name}[{Address}]:{Port}";
}

/// <summary>Where mail for one domain goes: the hosts to try in order, or why there are none.</summary>
/// <param name="Hosts">In preference order; empty with an error.</param>
/// <param name="Error">Why the domain cannot be reached, or null.</param>
/// <param name="Permanent">True when retrying cannot help (no such domain, a null MX).</param>
/// <param name="Status">The enhanced status code for a bounce (<c>5.1.2</c>, <c>5.1.10</c>), or null.</param>
public sealed record Destination(IReadOnlyList<RemoteHost> Hosts, string? Error = null, bool Permanent = false, string? Status = null)
{
    /// <summary>A destination that cannot be reached.</summary>
    public static Destination Unreachable(string error, bool permanent, string? status = null) => new([], error, permanent, status);
}

/// <summary>Finds the servers for a recipient domain (a smarthost, MX records, an address literal).</summary>
public interface IDestinationResolver
{
    /// <summary>The key deliveries are grouped and limited by: the domain, or one key for a smarthost.</summary>
    string KeyOf(string domain);

    /// <summary>The hosts for <paramref name="domain"/> (as written after the <c>@</c>, literals included).</summary>
    Task<Destination> ResolveAsync(string domain, CancellationToken cancellationToken);
}

/// <summary><c>Relay.Mode: Smarthost</c>: every domain, address literals included, goes to one host.</summary>
public sealed class SmarthostResolver(DnsEndPoint smarthost) : IDestinationResolver
{
    /// <inheritdoc />
    public string KeyOf(string domain) => "smarthost";

    /// <inheritdoc />
    public Task<Destination> ResolveAsync(string domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(smarthost);
        IPAddress? address = IPAddress.TryParse(smarthost.Host, out IPAddress? parsed) ? parsed : null;
        return Task.FromResult(new Destination([new RemoteHost(smarthost.Host, address, smarthost.Port)]));
    }
}
