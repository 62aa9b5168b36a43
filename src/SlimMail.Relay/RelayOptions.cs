using System.Net;

namespace SlimMail.Relay;

/// <summary>How outbound mail leaves: by MX lookup or through one smarthost.</summary>
public enum RelayMode
{
    /// <summary>Each domain's MX hosts (A/AAAA when there is no MX); address literals go straight to their address.</summary>
    Mx,

    /// <summary>Every message goes to <see cref="RelayOptions.Smarthost"/>.</summary>
    Smarthost,
}

/// <summary>The outbound side's settings (<c>Relay.*</c>).</summary>
public sealed record RelayOptions
{
    /// <summary>The name used in EHLO and in bounces.</summary>
    public required string Hostname { get; init; }

    /// <summary>Mx or Smarthost.</summary>
    public RelayMode Mode { get; init; } = RelayMode.Smarthost;

    /// <summary>The smarthost (<c>Relay.Smarthost</c>, host and port).</summary>
    public DnsEndPoint? Smarthost { get; init; }

    /// <summary>AUTH user for the smarthost, or null.</summary>
    public string? Username { get; init; }

    /// <summary>AUTH password for the smarthost.</summary>
    public string? Password { get; init; }

    /// <summary>TLS from the first byte (port 465) to the smarthost.</summary>
    public bool ImplicitTls { get; init; }

    /// <summary>The delay before each retry; the last one repeats.</summary>
    public IReadOnlyList<TimeSpan> RetryDelays { get; init; } =
        [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), TimeSpan.FromMinutes(30), TimeSpan.FromHours(1), TimeSpan.FromHours(2), TimeSpan.FromHours(4)];

    /// <summary>How long a message may stay queued before it is bounced as undeliverable.</summary>
    public TimeSpan MaxQueueTime { get; init; } = TimeSpan.FromDays(5);

    /// <summary>After how long in the queue the sender is told the message is delayed (once); null for never.</summary>
    public TimeSpan? DelayWarningTime { get; init; }

    /// <summary>Deliveries running at once, in all.</summary>
    public int MaxConcurrentDeliveries { get; init; } = 20;

    /// <summary>Deliveries running at once to one destination (a domain, or the smarthost).</summary>
    public int MaxConcurrentPerDestination { get; init; } = 4;

    /// <summary>The timeout of each SMTP command (RFC 5321 §4.5.3.2: 5 minutes); 10 minutes for the end of data.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long to wait for a TCP connection.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The port of MX hosts and address literals (25; other values are for tests).</summary>
    public int MxPort { get; init; } = 25;

    /// <summary>Name servers for MX mode (<c>Relay.DnsServers</c>); empty means <c>/etc/resolv.conf</c>.</summary>
    public IReadOnlyList<IPEndPoint> DnsServers { get; init; } = [];
}
