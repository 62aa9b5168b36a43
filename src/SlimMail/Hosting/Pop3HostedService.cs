using Microsoft.Extensions.Hosting;
using SlimMail.Host.Configuration;
using SlimMail.Pop3;

namespace SlimMail.Host.Hosting;

/// <summary>Runs the POP3 listeners over the users' Maildirs.</summary>
internal sealed class Pop3HostedService : IHostedService, IAsyncDisposable
{
    private readonly SlimMailSettings _settings;
    private readonly SecurityWiring _security;
    private readonly LiveConfiguration _live;
    private readonly ListenerRegistry _registry;
    private readonly Microsoft.Extensions.Logging.ILoggerFactory _loggerFactory;
    private Pop3Server? _server;

    public Pop3HostedService(SlimMailSettings settings, SecurityWiring security, LiveConfiguration live, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory,
        ListenerRegistry registry)
    {
        _registry = registry;
        _settings = settings;
        _security = security;
        _live = live;
        _loggerFactory = loggerFactory;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_settings.Pop3Listeners.Count == 0)
        {
            return;
        }

        var options = new Pop3ServerOptions
        {
            Listeners = _settings.Pop3Listeners.Select(l => new Pop3ListenerOptions(l.EndPoint, l.ImplicitTls) { ProxyProtocol = l.ProxyProtocol, ProxyTrustedNetworks = l.ProxyTrustedNetworks }).ToList(),
            Tls = _security.Tls is null ? null : _security.Tls.GetOptions,
            Authenticator = _live,
            AuthThrottle = _security.Throttle,
            RequireTlsForAuth = _settings.Smtp.RequireTlsForAuth,
        };
        _server = new Pop3Server(options, _live, _loggerFactory);
        await _server.StartAsync().ConfigureAwait(false);
        foreach (System.Net.IPEndPoint endPoint in _server.EndPoints)
        {
            _registry.Add($"POP3 {endPoint}");
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            await _server.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
