using System.Net;
using System.Net.Sockets;
using SlimMail.Relay.Dns;

namespace SlimMail.Relay;

/// <summary>
/// <c>Relay.Mode: Mx</c> (RFC 5321 §5.1): the domain's MX hosts by preference, equal preferences in random
/// order, each host's AAAA and A addresses; no MX at all means the domain's own addresses (the implicit MX);
/// a null MX (RFC 7505) or a domain that does not exist is permanent, a DNS failure is temporary; address
/// literals (<c>[192.0.2.1]</c>, <c>[IPv6:2001:db8::1]</c>) skip DNS.
/// </summary>
public sealed class MxResolver : IDestinationResolver
{
    private readonly DnsResolver _dns;
    private readonly int _port;

    /// <summary>Creates the resolver; <paramref name="port"/> is 25 except in tests.</summary>
    public MxResolver(DnsResolver dns, int port = 25)
    {
        _dns = dns;
        _port = port;
    }

    /// <inheritdoc />
    public string KeyOf(string domain) => (domain ?? "").ToLowerInvariant();

    /// <inheritdoc />
    public async Task<Destination> ResolveAsync(string domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (domain.StartsWith('[') && domain.EndsWith(']'))
        {
            string literal = domain[1..^1];
            if (literal.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase))
            {
                literal = literal[5..];
            }

            return IPAddress.TryParse(literal, out IPAddress? address)
                ? new Destination([new RemoteHost(address.ToString(), address, _port)])
                : Destination.Unreachable($"{domain} is not an address literal", permanent: true, "5.1.2");
        }

        DnsLookup mx = await _dns.LookupAsync(domain, DnsType.Mx, cancellationToken).ConfigureAwait(false);
        if (mx.Code == DnsResponseCode.NameError)
        {
            return Destination.Unreachable($"Host or domain name not found: {mx.Error}", permanent: true, "5.1.2");
        }

        if (mx.IsTemporaryFailure)
        {
            return Destination.Unreachable(mx.Error ?? "DNS failure", permanent: false);
        }

        if (mx.Records.Count == 1 && mx.Records[0].Target is "" && mx.Records[0].Preference == 0)
        {
            return Destination.Unreachable($"{domain} accepts no mail (null MX, RFC 7505)", permanent: true, "5.1.10");
        }

        var hostNames = new List<string>();
        if (mx.Records.Count == 0)
        {
            hostNames.Add(domain); // the implicit MX
        }
        else
        {
            // Preference order; among equals a random order spreads the load (RFC 5321 §5.1).
            foreach (IGrouping<ushort, DnsRecord> level in mx.Records.Where(r => r.Target is { Length: > 0 })
                         .GroupBy(r => r.Preference).OrderBy(g => g.Key))
            {
                hostNames.AddRange(level.Select(r => r.Target!).OrderBy(_ => Random.Shared.Next()));
            }
        }

        var hosts = new List<RemoteHost>();
        string? lastError = null;
        bool anyTemporary = false;
        foreach (string name in hostNames.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            foreach (DnsType type in new[] { DnsType.Aaaa, DnsType.A })
            {
                DnsLookup addresses = await _dns.LookupAsync(name, type, cancellationToken).ConfigureAwait(false);
                anyTemporary |= addresses.IsTemporaryFailure;
                lastError = addresses.Error ?? lastError;
                foreach (DnsRecord record in addresses.Records)
                {
                    if (Socket.OSSupportsIPv6 || record.Address!.AddressFamily == AddressFamily.InterNetwork)
                    {
                        hosts.Add(new RemoteHost(name, record.Address, _port));
                    }
                }
            }
        }

        if (hosts.Count > 0)
        {
            return new Destination(hosts);
        }

        return anyTemporary
            ? Destination.Unreachable(lastError ?? $"{domain}: the mail hosts' addresses could not be looked up", permanent: false)
            : Destination.Unreachable($"{domain}: no MX host with an address", permanent: true, "5.4.4");
    }
}
