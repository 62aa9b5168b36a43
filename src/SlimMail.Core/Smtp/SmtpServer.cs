using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SlimMail.Delivery;
using SlimMail.Transport;

namespace SlimMail.Smtp;

/// <summary>
/// An embeddable SMTP server: binds the configured listeners, enforces the connection limits, and runs one
/// <see cref="SmtpSession"/> per client against an <see cref="IMessageHandler"/>.
/// </summary>
/// <example>
/// <code>
/// var options = new SmtpServerOptions { Listeners = [new(new IPEndPoint(IPAddress.Loopback, 2525), ListenerRole.Local)] };
/// await using var server = new SmtpServer(options, myHandler);
/// await server.StartAsync();
/// </code>
/// </example>
public sealed partial class SmtpServer : IAsyncDisposable
{
    private int _disposed;
    private readonly SmtpServerOptions _options;
    private readonly IMessageHandler _handler;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly ConnectionLimiter _limiter;
    private readonly List<TcpConnectionListener> _listeners = [];
    private readonly SessionCounter _sessions = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abort = new();

    /// <summary>Creates a server; nothing is bound until <see cref="StartAsync"/>.</summary>
    public SmtpServer(SmtpServerOptions options, IMessageHandler handler, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handler);
        _options = options;
        _handler = handler;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("SlimMail.Smtp");
        _limiter = new ConnectionLimiter(options.MaxConnections, options.MaxConnectionsPerAddress);
    }

    /// <summary>The bound endpoints, in the order of <see cref="SmtpServerOptions.Listeners"/>.</summary>
    public IReadOnlyList<IPEndPoint> EndPoints => _listeners.ConvertAll(l => l.EndPoint);

    /// <summary>Open sessions now.</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>Binds every listener and starts accepting. Throws if an endpoint cannot be bound.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            foreach (SmtpListenerOptions listener in _options.Listeners)
            {
                SmtpListenerOptions current = listener;
                if (listener.ImplicitTls && _options.Tls is null)
                {
                    throw new InvalidOperationException($"The listener on {listener.EndPoint} uses implicit TLS but no TLS certificate is configured.");
                }

                var tcp = new TcpConnectionListener(listener.EndPoint, socket => RunSessionAsync(socket, current), _logger);
                _listeners.Add(tcp);
                LogListening(_logger, tcp.EndPoint, listener.Role);
            }
        }
        catch
        {
            foreach (TcpConnectionListener tcp in _listeners)
            {
                await tcp.DisposeAsync().ConfigureAwait(false);
            }

            _listeners.Clear();
            throw;
        }

        foreach (TcpConnectionListener tcp in _listeners)
        {
            tcp.Start();
        }
    }

    /// <summary>
    /// Stops: closes the listeners, answers idle sessions <c>421 4.3.2</c>, lets messages in flight finish
    /// within <paramref name="drainTimeout"/>, then cuts off whatever is left.
    /// </summary>
    public async Task StopAsync(TimeSpan drainTimeout)
    {
        foreach (TcpConnectionListener listener in _listeners)
        {
            await listener.StopAsync().ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (!await _sessions.WaitDrainedAsync(drainTimeout).ConfigureAwait(false))
        {
            LogDrainTimeout(_logger, SessionCount);
            await _abort.CancelAsync().ConfigureAwait(false);
            await _sessions.WaitDrainedAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        // Containers may dispose a service twice (once per registration); the second time is a no-op.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_stopping.IsCancellationRequested)
        {
            await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        }

        foreach (TcpConnectionListener listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
        _abort.Dispose();
    }

    private async Task RunSessionAsync(Socket socket, SmtpListenerOptions listener)
    {
        _sessions.Enter();
        if (listener.ImplicitTls)
        {
            // A TLS handshake's first flight is computed right here (milliseconds of CPU): leave the accept
            // loop's thread first. A plaintext session runs inline up to its first read, the greeting written,
            // which saves a hand-off to another pool thread per connection (docs/benchmarks.md).
            await Task.Yield();
        }

        var connection = new SocketConnection(socket);
        IPEndPoint remote = connection.RemoteEndPoint;
        ConnectionAdmission admission = ConnectionAdmission.TooManyConnections;
        try
        {
            if (listener.ProxyProtocol)
            {
                (IPEndPoint? proxied, string? refusal) = await ProxyProtocol.AcceptAsync(connection, listener.ProxyTrustedNetworks,
                    _options.CommandTimeout, _abort.Token).ConfigureAwait(false);
                if (proxied is null)
                {
                    LogProxyRefused(_logger, connection.RemoteEndPoint, refusal!);
                    return;
                }

                remote = proxied;
            }

            admission = _limiter.TryAcquire(remote.Address);
            if (admission != ConnectionAdmission.Admitted)
            {
                SmtpReply refusal = admission == ConnectionAdmission.TooManyConnections
                    ? SmtpReplies.TooManyConnections
                    : SmtpReplies.TooManyConnectionsFromAddress;
                LogRefused(_logger, remote, refusal.Text);
                await RefuseAsync(connection, refusal).ConfigureAwait(false);
                return;
            }

            if (listener.Role == ListenerRole.Local && !IPAddress.IsLoopback(remote.Address))
            {
                await RefuseAsync(connection, LocalOnly).ConfigureAwait(false);
                return;
            }

            if (listener.ImplicitTls)
            {
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_abort.Token);
                handshake.CancelAfter(_options.CommandTimeout);
                try
                {
                    await connection.StartTlsAsync(_options.Tls!(), handshake.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException)
                {
                    LogTlsFailed(_logger, connection.RemoteEndPoint, e.Message);
                    return;
                }
            }

            var info = new SmtpSessionInfo(remote, connection.LocalEndPoint, listener.Role)
            {
                TlsDescription = connection.TlsDescription,
            };
            var session = new SmtpSession(connection, info, _options, _handler, _logger, _stopping.Token, _abort.Token);
            // On abort the session answers 421 itself; the socket is closed for it only if it cannot.
            using (_abort.Token.Register(() => _ = Task.Delay(TimeSpan.FromSeconds(2)).ContinueWith(_ => connection.Abort(), TaskScheduler.Default)))
            {
                await session.RunAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogSessionFailed(_logger, connection.RemoteEndPoint, e);
        }
        finally
        {
            if (admission == ConnectionAdmission.Admitted)
            {
                _limiter.Release(remote.Address);
            }

            await connection.DisposeAsync().ConfigureAwait(false);
            _sessions.Exit();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "PROXY protocol connection from {Remote} closed: {Reason}")]
    private static partial void LogProxyRefused(ILogger logger, IPEndPoint remote, string reason);

    private static readonly SmtpReply LocalOnly = new(554, "5.7.1", "This listener serves loopback clients only");

    private static async Task RefuseAsync(TransportConnection connection, SmtpReply reply)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await connection.Output.WriteAsync(reply.Encoded, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "TLS handshake with {Remote} failed: {Error}")]
    private static partial void LogTlsFailed(ILogger logger, IPEndPoint remote, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "listening on {EndPoint} ({Role})")]
    private static partial void LogListening(ILogger logger, IPEndPoint endPoint, ListenerRole role);

    [LoggerMessage(Level = LogLevel.Warning, Message = "refused connection from {Remote}: {Reason}")]
    private static partial void LogRefused(ILogger logger, IPEndPoint remote, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "session with {Remote} failed")]
    private static partial void LogSessionFailed(ILogger logger, IPEndPoint remote, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "shutdown: {Count} sessions still open after the drain timeout; closing them")]
    private static partial void LogDrainTimeout(ILogger logger, int count);
}
