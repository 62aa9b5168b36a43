using System.Net;
using SlimMail.Smtp;

namespace SlimMail.Host.Configuration;

/// <summary>The whole configuration, validated and immutable. A reload builds a new one.</summary>
internal sealed record SlimMailSettings
{
    public required string Hostname { get; init; }

    public required string DataDirectory { get; init; }

    public string? PidFile { get; init; }

    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public required SmtpSettings Smtp { get; init; }

    public IReadOnlyList<Pop3ListenerSettings> Pop3Listeners { get; init; } = [];

    public required IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Domains { get; init; }

    public required IReadOnlyDictionary<string, UserSettings> Users { get; init; }

    public IReadOnlyDictionary<string, DeliverySettings> Deliveries { get; init; } = new Dictionary<string, DeliverySettings>();

    public string RelayMode { get; init; } = "None";

    /// <summary>The outbound relay, or null when <c>Relay.Mode</c> is <c>None</c>.</summary>
    public SlimMail.Relay.RelayOptions? Relay { get; init; }

    public TlsSettings? Tls { get; init; }

    public IPEndPoint? MetricsEndpoint { get; init; }

    public AuthenticationSettings Authentication { get; init; } = new("Users", null, TimeSpan.FromSeconds(10));

    /// <summary>True when no configuration file was found and the built-in defaults apply.</summary>
    public bool ZeroConfig { get; init; }

    public string? ConfigFile { get; init; }

    public string MailDirectoryOf(string user) =>
        Users.TryGetValue(user, out UserSettings? settings) && settings.Maildir is not null
            ? Path.GetFullPath(settings.Maildir)
            : Path.Combine(Path.GetFullPath(DataDirectory), "mail", user);
}

internal sealed record SmtpSettings
{
    public required IReadOnlyList<SmtpListenerSettings> Listeners { get; init; }

    public long MaxMessageSize { get; init; } = 26_214_400;

    public int MaxRecipients { get; init; } = 100;

    public int MaxConnections { get; init; } = 1000;

    public int MaxConnectionsPerAddress { get; init; } = 50;

    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan DataTimeout { get; init; } = TimeSpan.FromMinutes(10);

    public int MaxErrors { get; init; } = 10;

    public bool RequireTlsForAuth { get; init; } = true;
}

/// <summary>A named delivery (<c>Deliveries.NAME</c>): Maildir, Pipe (Command, Timeout) or PostgreSql (ConnectionString).</summary>
internal sealed record DeliverySettings(string Name, string Type, string? Command, TimeSpan Timeout, string? ConnectionString);

internal sealed record TlsSettings(string CertificateFile, string KeyFile);

internal sealed record AuthenticationSettings(string Type, string? Command, TimeSpan Timeout);

internal sealed record SmtpListenerSettings(IPEndPoint EndPoint, ListenerRole Role, bool ImplicitTls, bool ProxyProtocol, IReadOnlyList<IPNetwork> ProxyTrustedNetworks);

internal sealed record Pop3ListenerSettings(IPEndPoint EndPoint, bool ImplicitTls, bool ProxyProtocol, IReadOnlyList<IPNetwork> ProxyTrustedNetworks);

internal sealed record UserSettings
{
    public string? PasswordHash { get; init; }

    public string? Delivery { get; init; }

    public string? Maildir { get; init; }

    public UnixFileMode FileMode { get; init; } = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public string? Owner { get; init; }

    public bool AllowAnySender { get; init; }
}
