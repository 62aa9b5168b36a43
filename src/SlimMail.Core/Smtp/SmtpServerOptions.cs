using System.Net;

namespace SlimMail.Smtp;

/// <summary>The SMTP engine's settings. Defaults follow the product contract.</summary>
public sealed class SmtpServerOptions
{
    /// <summary>The name the server greets with and writes into <c>Received:</c>.</summary>
    public string Hostname { get; init; } = Dns.GetHostName();

    /// <summary>The endpoints to listen on.</summary>
    public IReadOnlyList<SmtpListenerOptions> Listeners { get; init; } = [];

    /// <summary>The largest message accepted, in bytes, enforced while reading DATA and BDAT.</summary>
    public long MaxMessageSize { get; init; } = 26_214_400;

    /// <summary>Recipients per transaction; more get <c>452 4.5.3</c>.</summary>
    public int MaxRecipients { get; init; } = 100;

    /// <summary>Open connections over all listeners; more get <c>421 4.7.0</c>.</summary>
    public int MaxConnections { get; init; } = 1000;

    /// <summary>Open connections from one client address; more get <c>421 4.7.0</c>.</summary>
    public int MaxConnectionsPerAddress { get; init; } = 50;

    /// <summary>The time allowed to receive one whole command line, and to wait for the next one.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The longest silence allowed while receiving DATA or BDAT.</summary>
    public TimeSpan DataTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The Nth bad command is answered <c>421 4.7.0</c> and the connection closed.</summary>
    public int MaxErrors { get; init; } = 10;

    /// <summary>The longest command line, CRLF included; longer ones are refused without being buffered.</summary>
    public int MaxCommandLineLength { get; init; } = 2048;

    /// <summary>TLS server options for STARTTLS and implicit TLS (called per handshake, so certificates can change), or null for no TLS.</summary>
    public Func<System.Net.Security.SslServerAuthenticationOptions>? Tls { get; init; }

    /// <summary>Checks AUTH PLAIN/LOGIN credentials, or null for no AUTH.</summary>
    public Auth.IAuthenticator? Authenticator { get; init; }

    /// <summary>Slows down and blocks repeated authentication failures; shared with POP3.</summary>
    public Auth.AuthThrottle AuthThrottle { get; init; } = new();

    /// <summary>AUTH is offered only after TLS, except to loopback clients.</summary>
    public bool RequireTlsForAuth { get; init; } = true;
}

/// <summary>One SMTP listening endpoint.</summary>
public sealed class SmtpListenerOptions
{
    /// <summary>Creates a listener description.</summary>
    public SmtpListenerOptions(IPEndPoint endPoint, ListenerRole role)
    {
        EndPoint = endPoint;
        Role = role;
    }

    /// <summary>The address and port to bind.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>What the listener is for.</summary>
    public ListenerRole Role { get; }

    /// <summary>TLS starts at connect (port 465) instead of by STARTTLS.</summary>
    public bool ImplicitTls { get; init; }

    /// <summary>Connections start with a PROXY protocol v1/v2 header whose client address is used for limits, logs and <c>Received:</c>.</summary>
    public bool ProxyProtocol { get; init; }

    /// <summary>The proxies allowed to send PROXY headers; a connection from anywhere else is closed. Default: loopback.</summary>
    public IReadOnlyList<IPNetwork> ProxyTrustedNetworks { get; init; } = [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];
}
