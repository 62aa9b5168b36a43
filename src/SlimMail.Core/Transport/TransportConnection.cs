using System.IO.Pipelines;
using System.Net;

namespace SlimMail.Transport;

/// <summary>
/// A client connection as the protocol engines see it: a duplex pipe and the two endpoints.
/// Engines never touch sockets; they read <see cref="Input"/>, write <see cref="Output"/> and may ask
/// for TLS. Tests drive the engines through in-memory pipes with a subclass of their own.
/// </summary>
public abstract class TransportConnection : IAsyncDisposable
{
    /// <summary>Bytes from the client.</summary>
    public abstract PipeReader Input { get; }

    /// <summary>Bytes to the client.</summary>
    public abstract PipeWriter Output { get; }

    /// <summary>The client's address.</summary>
    public abstract IPEndPoint RemoteEndPoint { get; }

    /// <summary>The address the client connected to.</summary>
    public abstract IPEndPoint LocalEndPoint { get; }

    /// <summary>True once TLS is established.</summary>
    public virtual bool IsSecure => false;

    /// <summary>The TLS protocol and cipher, such as <c>TLSv1.3 with cipher TLS_AES_256_GCM_SHA384</c>, or null.</summary>
    public virtual string? TlsDescription => null;

    /// <summary>The TLS version (<c>TLSv1.3</c>, <c>TLSv1.2</c>) once TLS is active, else null.</summary>
    public virtual string? TlsVersion => null;

    /// <summary>
    /// Starts TLS as the server (STARTTLS, STLS or implicit TLS). Any plaintext the client sent that was not
    /// yet consumed is discarded, and <see cref="Input"/> and <see cref="Output"/> are replaced: callers
    /// must fetch them again afterwards.
    /// </summary>
    public virtual Task StartTlsAsync(System.Net.Security.SslServerAuthenticationOptions options, CancellationToken cancellationToken) =>
        throw new NotSupportedException("This connection cannot start TLS.");

    /// <summary>
    /// For a session on a thread of its own (<see cref="SessionThread"/>): continues on that thread, wherever the
    /// awaits before have left the caller. Engines call it before waiting for the next command, so that a password
    /// check or a mailbox listing that finished on another thread never leaves that thread blocked on the client.
    /// Completed at once for other connections and on the session's own thread.
    /// </summary>
    public virtual ValueTask ReturnToSessionThreadAsync() => ValueTask.CompletedTask;

    /// <summary>Ends the connection at once, without a goodbye; pending reads and writes fail.</summary>
    public abstract void Abort();

    /// <summary>Completes both pipes and releases the connection.</summary>
    public abstract ValueTask DisposeAsync();
}
