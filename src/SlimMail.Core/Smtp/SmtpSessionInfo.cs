using System.Net;

namespace SlimMail.Smtp;

/// <summary>What a delivery may know about the session a message arrived on. Read-only for deliveries.</summary>
public sealed class SmtpSessionInfo
{
    /// <summary>Creates the information for a new connection.</summary>
    public SmtpSessionInfo(IPEndPoint remoteEndPoint, IPEndPoint localEndPoint, ListenerRole role)
    {
        RemoteEndPoint = remoteEndPoint;
        LocalEndPoint = localEndPoint;
        Role = role;
    }

    /// <summary>The client's address (from the PROXY header when the listener uses one).</summary>
    public IPEndPoint RemoteEndPoint { get; }

    /// <summary>The address the client connected to.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>The role of the listener the client connected to.</summary>
    public ListenerRole Role { get; }

    /// <summary>The EHLO/HELO argument, or null before the greeting.</summary>
    public string? HeloName { get; internal set; }

    /// <summary>True after EHLO (as opposed to HELO).</summary>
    public bool IsExtended { get; internal set; }

    /// <summary>The negotiated TLS protocol and cipher (<c>TLSv1.3:TLS_AES_256_GCM_SHA384</c>), or null in plaintext.</summary>
    public string? TlsDescription { get; internal set; }

    /// <summary>The authenticated user name, or null.</summary>
    public string? AuthenticatedUser { get; internal set; }

    /// <summary>True when the client connected from a loopback address.</summary>
    public bool IsLoopback => IPAddress.IsLoopback(RemoteEndPoint.Address);
}
