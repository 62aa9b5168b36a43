using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;
using SlimMail.Smtp;

namespace SlimMail.Host.Hosting;

/// <summary>Wires the SMTP engine to the configured domains, users and Maildirs, and runs it for the host's lifetime.</summary>
internal sealed partial class SmtpHostedService : IHostedService, IAsyncDisposable
{
    private readonly SlimMailSettings _settings;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly SecurityWiring _security;
    private readonly LiveConfiguration _live;
    private readonly ListenerRegistry _registry;
    private SmtpServer? _server;

    public SmtpHostedService(SlimMailSettings settings, SecurityWiring security, LiveConfiguration live, ILoggerFactory loggerFactory, ListenerRegistry registry)
    {
        _registry = registry;
        _live = live;
        _settings = settings;
        _security = security;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("SlimMail");
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        IMessageHandler handler = _live;
        var options = new SmtpServerOptions
        {
            Hostname = _settings.Hostname,
            Listeners = _settings.Smtp.Listeners.Select(l => new SmtpListenerOptions(l.EndPoint, l.Role)
            {
                ImplicitTls = l.ImplicitTls,
                ProxyProtocol = l.ProxyProtocol,
                ProxyTrustedNetworks = l.ProxyTrustedNetworks,
            }).ToList(),
            Tls = _security.Tls is null ? null : _security.Tls.GetOptions,
            Authenticator = _live,
            AuthThrottle = _security.Throttle,
            RequireTlsForAuth = _settings.Smtp.RequireTlsForAuth,
            MaxMessageSize = _settings.Smtp.MaxMessageSize,
            MaxRecipients = _settings.Smtp.MaxRecipients,
            MaxConnections = _settings.Smtp.MaxConnections,
            MaxConnectionsPerAddress = _settings.Smtp.MaxConnectionsPerAddress,
            CommandTimeout = _settings.Smtp.CommandTimeout,
            DataTimeout = _settings.Smtp.DataTimeout,
            MaxErrors = _settings.Smtp.MaxErrors,
        };
        _server = new SmtpServer(options, handler, _loggerFactory);
        await _server.StartAsync(cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < _server.EndPoints.Count; i++)
        {
            _registry.Add($"SMTP {_server.EndPoints[i]} ({_settings.Smtp.Listeners[i].Role})");
        }

        foreach (string user in _settings.Users.Keys.Order(StringComparer.Ordinal))
        {
            if (_settings.Users[user].Delivery is { } name && _settings.Deliveries.TryGetValue(name, out DeliverySettings? delivery) && delivery.Type != "Maildir")
            {
                LogMailDelivery(_logger, user, name, delivery.Type);
            }
            else
            {
                LogMailLocation(_logger, user, _settings.MailDirectoryOf(user));
            }
        }

        _live.PrepareStoresInBackground(_logger);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            LogStopping(_logger, _settings.ShutdownTimeout);
            await _server.StopAsync(_settings.ShutdownTimeout).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "mail for user {User} is delivered to the Maildir {Path}")]
    private static partial void LogMailLocation(ILogger logger, string user, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "stopping: closing listeners, draining open transactions for up to {Timeout}")]
    private static partial void LogStopping(ILogger logger, TimeSpan timeout);

    [LoggerMessage(Level = LogLevel.Information, Message = "mail for user {User} goes to delivery {Delivery} ({Type})")]
    private static partial void LogMailDelivery(ILogger logger, string user, string delivery, string type);
}
