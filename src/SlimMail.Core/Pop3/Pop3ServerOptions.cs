using System.Net;
using System.Net.Security;
using SlimMail.Auth;

namespace SlimMail.Pop3;

/// <summary>The POP3 server's settings.</summary>
public sealed class Pop3ServerOptions
{
    /// <summary>The endpoints to listen on.</summary>
    public IReadOnlyList<Pop3ListenerOptions> Listeners { get; init; } = [];

    /// <summary>TLS server options for STLS and implicit TLS (995), or null.</summary>
    public Func<SslServerAuthenticationOptions>? Tls { get; init; }

    /// <summary>Checks USER/PASS and AUTH PLAIN credentials.</summary>
    public IAuthenticator? Authenticator { get; init; }

    /// <summary>Failure throttling, shared with SMTP AUTH.</summary>
    public AuthThrottle AuthThrottle { get; init; } = new();

    /// <summary>Credentials only inside TLS, except from loopback.</summary>
    public bool RequireTlsForAuth { get; init; } = true;

    /// <summary>RFC 1939 §3: the autologout timer, at least 10 minutes.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Open POP3 connections in all; more are refused.</summary>
    public int MaxConnections { get; init; } = 1000;

    /// <summary>Open POP3 connections from one address.</summary>
    public int MaxConnectionsPerAddress { get; init; } = 50;

    /// <summary>
    /// Sessions that run on a thread of their own, with blocking socket calls (see <see cref="Transport.SessionThread"/>):
    /// POP3 is a ping-pong of small commands and whole messages, which the shared socket engines serve more slowly
    /// once there are more busy sessions than cores. Sessions beyond this number share the engines. 0: none.
    /// </summary>
    public int SessionThreads { get; init; } = 64;

    /// <summary>Protocol errors before the session is closed.</summary>
    public int MaxErrors { get; init; } = 10;
}

/// <summary>One POP3 endpoint.</summary>
/// <param name="EndPoint">Where to listen.</param>
/// <param name="ImplicitTls">TLS from the first byte (995).</param>
public sealed record Pop3ListenerOptions(IPEndPoint EndPoint, bool ImplicitTls = false)
{
    /// <summary>Connections start with a PROXY protocol header from one of <see cref="ProxyTrustedNetworks"/>.</summary>
    public bool ProxyProtocol { get; init; }

    /// <summary>The proxies allowed to send PROXY headers. Default: loopback.</summary>
    public IReadOnlyList<IPNetwork> ProxyTrustedNetworks { get; init; } = [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];
}
