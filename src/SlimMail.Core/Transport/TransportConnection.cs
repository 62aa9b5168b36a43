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

    /// <summary>Ends the connection at once, without a goodbye; pending reads and writes fail.</summary>
    public abstract void Abort();

    /// <summary>Completes both pipes and releases the connection.</summary>
    public abstract ValueTask DisposeAsync();
}
