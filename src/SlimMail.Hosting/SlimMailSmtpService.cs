using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Hosting;

/// <summary>
/// The SMTP server as a hosted service: started with the host, drained and stopped with it. Resolve it
/// from the container to read the bound <see cref="EndPoints"/> (useful with port 0).
/// </summary>
public sealed class SlimMailSmtpService : IHostedService, IAsyncDisposable
{
    private readonly SmtpServer _server;
    private readonly TimeSpan _drainTimeout;

    /// <summary>Creates the service; the host calls this through the container.</summary>
    public SlimMailSmtpService(SmtpServerOptions options, IMessageHandler handler, ILoggerFactory loggerFactory, TimeSpan drainTimeout)
    {
        _server = new SmtpServer(options, handler, loggerFactory);
        _drainTimeout = drainTimeout;
    }

    /// <summary>The endpoints the server listens on, once started.</summary>
    public IReadOnlyList<IPEndPoint> EndPoints => _server.EndPoints;

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => _server.StartAsync(cancellationToken);

    /// <summary>Closes the listeners, answers idle sessions <c>421</c> and lets open transactions finish within the drain timeout.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _server.StopAsync(_drainTimeout);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
