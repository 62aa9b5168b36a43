using Microsoft.Extensions.Hosting;
using SlimMail.Host.Configuration;

namespace SlimMail.Host.Hosting;

/// <summary>
/// Tells systemd how the server is doing: <c>READY=1</c> once every listener is open (so units ordered
/// after SlimMail start only when mail can be sent), <c>STOPPING=1</c> when the drain begins, and the
/// watchdog keep-alive when <c>WatchdogSec=</c> is set. Reloads report themselves through the same notifier.
/// </summary>
internal sealed class SystemdService : IHostedService, IDisposable
{
    private readonly SystemdNotifier _notifier;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly SlimMailSettings _settings;
    private readonly ListenerRegistry _listeners;
    private Timer? _watchdog;

    public SystemdService(SystemdNotifier notifier, IHostApplicationLifetime lifetime, SlimMailSettings settings, ListenerRegistry listeners)
    {
        _listeners = listeners;
        _notifier = notifier;
        _lifetime = lifetime;
        _settings = settings;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_notifier.IsEnabled)
        {
            return Task.CompletedTask;
        }

        _lifetime.ApplicationStarted.Register(() => _notifier.Ready(Describe()));
        _lifetime.ApplicationStopping.Register(() => _notifier.Stopping($"draining for up to {_settings.ShutdownTimeout}"));
        if (SystemdNotifier.WatchdogInterval() is { } interval)
        {
            // Twice per interval, as sd_watchdog_enabled(3) advises; a hung thread pool stops the pings.
            _watchdog = new Timer(_ => _notifier.Watchdog(), null, TimeSpan.Zero, interval / 2);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _watchdog?.Dispose();

    private string Describe() => "listening: " + string.Join(", ", _listeners.All);
}
