using System.Diagnostics.Metrics;

namespace SlimMail;

/// <summary>
/// SlimMail's instruments (System.Diagnostics.Metrics, meter <c>SlimMail</c>). The engines record; the host
/// decides whether and how to export (the program serves them in the Prometheus format at <c>Metrics.Endpoint</c>).
/// </summary>
public static class SlimMailMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "SlimMail";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Connections accepted, by protocol (<c>smtp</c>, <c>pop3</c>).</summary>
    public static Counter<long> Connections { get; } = Meter.CreateCounter<long>("slimmail_connections_total");

    /// <summary>Messages answered 250 at the end of data.</summary>
    public static Counter<long> MessagesAccepted { get; } = Meter.CreateCounter<long>("slimmail_messages_accepted_total");

    /// <summary>Messages refused at the end of data, by reason (<c>size</c>, <c>bare_line_ending</c>, <c>nul</c>, <c>delivery</c>).</summary>
    public static Counter<long> MessagesRejected { get; } = Meter.CreateCounter<long>("slimmail_messages_rejected_total");

    /// <summary>Message bytes received in accepted messages.</summary>
    public static Counter<long> ReceivedBytes { get; } = Meter.CreateCounter<long>("slimmail_received_bytes_total");

    /// <summary>Delivery attempts, by type (<c>maildir</c>…) and outcome (<c>delivered</c>, <c>temporary</c>, <c>permanent</c>).</summary>
    public static Counter<long> Deliveries { get; } = Meter.CreateCounter<long>("slimmail_deliveries_total");

    /// <summary>Failed authentications, by protocol.</summary>
    public static Counter<long> AuthFailures { get; } = Meter.CreateCounter<long>("slimmail_auth_failures_total");

    /// <summary>Sessions started, by protocol and listener role (<c>Mx</c>, <c>Submission</c>, <c>Local</c>; POP3 listeners are <c>Pop3</c>).</summary>
    public static Counter<long> Sessions { get; } = Meter.CreateCounter<long>("slimmail_sessions_total");

    /// <summary>TLS sessions established (STARTTLS, STLS or implicit TLS), by protocol and TLS version.</summary>
    public static Counter<long> TlsSessions { get; } = Meter.CreateCounter<long>("slimmail_tls_sessions_total");

    /// <summary>How long a delivery took from the end of data to its outcome, in seconds, by type.</summary>
    public static Histogram<double> DeliveryDuration { get; } = Meter.CreateHistogram<double>("slimmail_delivery_duration_seconds", "s");

    /// <summary>Records a TLS session of <paramref name="protocol"/> with the negotiated <paramref name="version"/>.</summary>
    internal static void RecordTls(string protocol, string? version) =>
        TlsSessions.Add(1, new KeyValuePair<string, object?>("protocol", protocol), new KeyValuePair<string, object?>("version", version ?? "unknown"));
}
