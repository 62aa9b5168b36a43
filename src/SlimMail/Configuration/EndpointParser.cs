using System.Globalization;
using System.Net;

namespace SlimMail.Host.Configuration;

/// <summary>Parses <c>host:port</c> endpoints: <c>127.0.0.1:2525</c>, <c>[::1]:2525</c>, <c>0.0.0.0:25</c>, <c>localhost:2525</c>.</summary>
internal static class EndpointParser
{
    public static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPEndPoint? endPoint)
    {
        endPoint = null;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port > 65535)
        {
            return false;
        }

        string host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            return false; // IPv6 needs brackets, or the port is ambiguous.
        }

        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            endPoint = new IPEndPoint(IPAddress.Loopback, port);
            return true;
        }

        if (!IPAddress.TryParse(host, out IPAddress? address))
        {
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }

    /// <summary><c>host:port</c> where the host may be a name (a smarthost: <c>smtp.example.net:587</c>) or an address.</summary>
    public static bool TryParseHost(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out DnsEndPoint? endPoint)
    {
        endPoint = null;
        // A name stays a name (TLS verifies the certificate against it), localhost included.
        if (!text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase) && TryParse(text, out IPEndPoint? address))
        {
            endPoint = new DnsEndPoint(address.Address.ToString(), address.Port);
            return true;
        }

        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port is 0 or > 65535)
        {
            return false;
        }

        string host = text[..colon];
        if (Uri.CheckHostName(host) != UriHostNameType.Dns)
        {
            return false;
        }

        endPoint = new DnsEndPoint(host, port);
        return true;
    }
}
