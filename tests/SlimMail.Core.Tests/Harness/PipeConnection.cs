using System.IO.Pipelines;
using System.Net;
using SlimMail.Transport;

namespace SlimMail.Tests.Core.Harness;

/// <summary>A connection made of two in-memory pipes: the engine on one end, the test on the other.</summary>
internal sealed class PipeConnection : TransportConnection
{
    public PipeConnection(Pipe toServer, Pipe toClient, IPEndPoint remote)
    {
        Input = toServer.Reader;
        Output = toClient.Writer;
        RemoteEndPoint = remote;
    }

    public override PipeReader Input { get; }

    public override PipeWriter Output { get; }

    public override IPEndPoint RemoteEndPoint { get; }

    public override IPEndPoint LocalEndPoint { get; } = new(IPAddress.Loopback, 25);

    public override void Abort()
    {
        Input.CancelPendingRead();
    }

    public override async ValueTask DisposeAsync()
    {
        await Input.CompleteAsync();
        await Output.CompleteAsync();
    }
}
