using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace SlimMail.Transport;

/// <summary>Binds one TCP endpoint and hands every accepted socket to a callback.</summary>
public sealed partial class TcpConnectionListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Func<Socket, Task> _onAccepted;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
    private Task _acceptLoop = Task.CompletedTask;

    /// <summary>Binds <paramref name="endPoint"/> (port 0 picks a free port) and starts listening.</summary>
    public TcpConnectionListener(IPEndPoint endPoint, Func<Socket, Task> onAccepted, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        _onAccepted = onAccepted;
        _logger = logger;
        _socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
        {
            _socket.DualMode = true;
        }

        _socket.Bind(endPoint);
        _socket.Listen(1024);
        EndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    /// <summary>The bound endpoint, with the real port when 0 was asked for.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Starts accepting in the background.</summary>
    public void Start() => _acceptLoop = AcceptLoopAsync();

    /// <summary>Stops accepting; connections already accepted go on.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Close();
        await _acceptLoop.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        // Containers may dispose a service twice (once per registration); the second time is a no-op.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
        _socket.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (!_stop.IsCancellationRequested)
            {
                // EMFILE and friends: log, breathe, keep listening rather than die.
                LogAcceptFailed(_logger, EndPoint, e.SocketErrorCode);
                await Task.Delay(100).ConfigureAwait(false);
                continue;
            }
            catch (SocketException)
            {
                return;
            }

            _ = _onAccepted(client);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "accept on {EndPoint} failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, IPEndPoint endPoint, SocketError error);
}
