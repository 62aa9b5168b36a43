using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SlimMail.Delivery;
using SlimMail.Transport;

namespace SlimMail.Pop3;

/// <summary>An embeddable POP3 server over an <see cref="IMailboxStore"/>.</summary>
public sealed partial class Pop3Server : IAsyncDisposable
{
    private static readonly byte[] TooMany = "-ERR [SYS/TEMP] Too many connections\r\n"u8.ToArray();

    private int _disposed;
    private readonly Pop3ServerOptions _options;
    private readonly IMailboxStore _store;
    private readonly ILogger _logger;
    private readonly ConnectionLimiter _limiter;
    private readonly List<TcpConnectionListener> _listeners = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly SessionCounter _sessions = new();
    private int _sessionThreads;

    /// <summary>Creates the server; nothing is bound until <see cref="StartAsync"/>.</summary>
    public Pop3Server(Pop3ServerOptions options, IMailboxStore store, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _store = store;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("SlimMail.Pop3");
        _limiter = new ConnectionLimiter(options.MaxConnections, options.MaxConnectionsPerAddress);
    }

    /// <summary>The bound endpoints, in the order of the options.</summary>
    public IReadOnlyList<IPEndPoint> EndPoints => _listeners.ConvertAll(l => l.EndPoint);

    /// <summary>Binds every listener and starts accepting.</summary>
    public Task StartAsync()
    {
        foreach (Pop3ListenerOptions listener in _options.Listeners)
        {
            if (listener.ImplicitTls && _options.Tls is null)
            {
                throw new InvalidOperationException($"The POP3 listener on {listener.EndPoint} uses implicit TLS but no TLS certificate is configured.");
            }

            Pop3ListenerOptions current = listener;
            var tcp = new TcpConnectionListener(listener.EndPoint, socket => OnAccepted(socket, current), _logger);
            _listeners.Add(tcp);
            LogListening(_logger, tcp.EndPoint);
        }

        _listeners.ForEach(l => l.Start());
        return Task.CompletedTask;
    }

    /// <summary>Stops accepting and ends every session (POP3 sessions delete nothing unless they reach QUIT).</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        foreach (TcpConnectionListener listener in _listeners)
        {
            await listener.StopAsync().ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _sessions.WaitDrainedAsync(timeout).ConfigureAwait(false);
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
            await StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }

        foreach (TcpConnectionListener listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    // A session gets a thread of its own while fewer than SessionThreads have one; the rest share the socket engines.
    private Task OnAccepted(Socket socket, Pop3ListenerOptions listener)
    {
        _sessions.Enter();
        if (Interlocked.Increment(ref _sessionThreads) <= _options.SessionThreads)
        {
            try
            {
                return SessionThread.Start(async thread =>
                {
                    try
                    {
                        await RunAsync(socket, listener, thread).ConfigureAwait(false);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _sessionThreads);
                    }
                }, "pop3 session");
            }
            catch (OutOfMemoryException)
            {
                // No thread to be had: the session runs on the socket engines instead.
            }
        }

        Interlocked.Decrement(ref _sessionThreads);
        return RunAsync(socket, listener, null);
    }

    private async Task RunAsync(Socket socket, Pop3ListenerOptions listener, SessionThread? thread)
    {
        if (listener.ImplicitTls && thread is null)
        {
            // As SmtpServer: only a TLS handshake leaves the accept loop's thread before the session starts.
            await Task.Yield();
        }

        var connection = new SocketConnection(socket, thread);
        IPEndPoint remote = connection.RemoteEndPoint;
        bool admitted = false;
        try
        {
            if (listener.ProxyProtocol)
            {
                (IPEndPoint? proxied, string? refusal) = await ProxyProtocol.AcceptAsync(connection, listener.ProxyTrustedNetworks,
                    TimeSpan.FromSeconds(30), _stopping.Token).ConfigureAwait(false);
                if (proxied is null)
                {
                    LogSessionEnded(_logger, remote, "PROXY protocol: " + refusal);
                    return;
                }

                remote = proxied;
            }

            admitted = _limiter.TryAcquire(remote.Address) == ConnectionAdmission.Admitted;
            if (!admitted)
            {
                await connection.Output.WriteAsync(TooMany).ConfigureAwait(false);
                return;
            }

            if (listener.ImplicitTls)
            {
                using var handshake = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await connection.StartTlsAsync(_options.Tls!(), handshake.Token).ConfigureAwait(false);
            }

            var session = new Pop3Session(connection, remote, _options, _store, _logger, _stopping.Token);
            await session.RunAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or System.Security.Authentication.AuthenticationException)
        {
            LogSessionEnded(_logger, connection.RemoteEndPoint, e.Message);
        }
        finally
        {
            if (admitted)
            {
                _limiter.Release(remote.Address);
            }

            await connection.DisposeAsync().ConfigureAwait(false);
            _sessions.Exit();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "pop3 listening on {EndPoint}")]
    private static partial void LogListening(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(Level = LogLevel.Debug, Message = "pop3 session with {Remote} ended: {Reason}")]
    private static partial void LogSessionEnded(ILogger logger, IPEndPoint remote, string reason);
}
