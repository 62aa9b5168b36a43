using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SlimMail.Host.Configuration;

namespace SlimMail.Host.Hosting;

/// <summary><c>Metrics.Endpoint</c>: <c>GET /metrics</c> (Prometheus text) and <c>GET /healthz</c> on Kestrel.</summary>
internal sealed partial class MetricsHostedService : IHostedService, IAsyncDisposable
{
    private readonly RelayWiring _relay;
    private readonly SlimMailSettings _settings;
    private readonly ILogger _logger;
    private MetricsCollector? _collector;
    private WebApplication? _app;

    public MetricsHostedService(SlimMailSettings settings, ILoggerFactory loggerFactory, RelayWiring relay)
    {
        _relay = relay;
        _settings = settings;
        _logger = loggerFactory.CreateLogger("SlimMail.Metrics");
        // Listen from the start, so counts include everything since the server started.
        if (settings.MetricsEndpoint is not null)
        {
            _collector = new MetricsCollector();
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_settings.MetricsEndpoint is not { } endpoint || _collector is null)
        {
            return;
        }

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options => options.Listen(endpoint));
        WebApplication app = builder.Build();
        MetricsCollector collector = _collector;
        app.MapGet("/metrics", () => Results.Text(collector.Render(_relay.QueuedMessages, _relay.Scheduler?.OldestAge ?? TimeSpan.Zero), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/healthz", () => Results.Text("ok"));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        LogListening(_logger, endpoint);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        _collector?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "metrics on http://{EndPoint}/metrics")]
    private static partial void LogListening(ILogger logger, System.Net.IPEndPoint endPoint);
}
