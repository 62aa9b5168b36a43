using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SlimMail.Host.Commands;
using SlimMail.Host.Configuration;

namespace SlimMail.Host.Hosting;

/// <summary>
/// Reloads the configuration on SIGHUP and when the configuration file changes (checked every 2 seconds).
/// An invalid new configuration is logged with every problem and the old one stays in force.
/// </summary>
internal sealed partial class ConfigurationReloader : IHostedService, IDisposable
{
    private readonly Source _source;
    private readonly LiveConfiguration _live;
    private readonly ILogger _logger;
    private readonly SystemdNotifier _notifier;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PosixSignalRegistration? _hangup;
    private Timer? _watch;
    private DateTime _stamp;

    public ConfigurationReloader(Source source, LiveConfiguration live, ILoggerFactory loggerFactory, SystemdNotifier notifier)
    {
        _notifier = notifier;
        _source = source;
        _live = live;
        _logger = loggerFactory.CreateLogger("SlimMail.Configuration");
    }

    /// <summary>Where the configuration came from: the file (null in zero-config mode) and the command-line overrides.</summary>
    internal sealed record Source(string? ConfigFile, IReadOnlyList<string> Overrides);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsWindows())
        {
            _hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true; // SIGHUP means "reload", not "terminate".
                _ = Task.Run(() => ReloadAsync("SIGHUP"));
            });
        }

        string? file = _live.Settings.ConfigFile;
        if (file is not null)
        {
            _stamp = File.GetLastWriteTimeUtc(file);
            _watch = new Timer(_ => CheckFile(file), null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _watch?.Dispose();
        _hangup?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _watch?.Dispose();
        _hangup?.Dispose();
        _gate.Dispose();
    }

    private void CheckFile(string file)
    {
        DateTime stamp = File.GetLastWriteTimeUtc(file);
        if (stamp != _stamp)
        {
            _stamp = stamp;
            _ = ReloadAsync("file changed");
        }
    }

    private async Task ReloadAsync(string reason)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        _notifier.Reloading();
        string status = "reload failed; the previous configuration stays in force";
        try
        {
            using var problems = new StringWriter();
            (SlimMailSettings? settings, _) = ConfigurationLoader.Load(_source.ConfigFile, _source.Overrides, problems);
            if (settings is null)
            {
                LogInvalid(_logger, reason, problems.ToString().Trim().Replace('\n', ';'));
                return;
            }

            SlimMailSettings old = _live.Settings;
            _live.Apply(settings);
            LogReloaded(_logger, reason, settings.Users.Count, settings.Domains.Count);
            if (NeedsRestart(old, settings) is { } changed)
            {
                LogRestartNeeded(_logger, changed);
            }

            status = $"configuration reloaded: {settings.Users.Count} users, {settings.Domains.Count} domains";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            LogInvalid(_logger, reason, e.Message);
        }
        finally
        {
            _notifier.Ready(status);
            _gate.Release();
        }
    }

    private static readonly SmtpListenerSettings[] NoListeners = [];

    // What a reload cannot change while sockets stay open: the caller is told, not left to wonder.
    private static string? NeedsRestart(SlimMailSettings old, SlimMailSettings current)
    {
        var changed = new List<string>();
        if (!old.Smtp.Listeners.SequenceEqual(current.Smtp.Listeners, ListenerComparer.Instance))
        {
            changed.Add("Smtp:Listeners");
        }

        if (!old.Pop3Listeners.Select(l => (l.EndPoint, l.ImplicitTls, l.ProxyProtocol)).SequenceEqual(current.Pop3Listeners.Select(l => (l.EndPoint, l.ImplicitTls, l.ProxyProtocol))))
        {
            changed.Add("Pop3:Listeners");
        }

        if (old.Smtp with { Listeners = NoListeners } != current.Smtp with { Listeners = NoListeners })
        {
            changed.Add("Smtp limits");
        }

        if (!Equals(old.MetricsEndpoint, current.MetricsEndpoint))
        {
            changed.Add("Metrics:Endpoint");
        }

        if (old.Tls != current.Tls)
        {
            changed.Add("Tls");
        }

        if (old.DataDirectory != current.DataDirectory)
        {
            changed.Add("DataDirectory");
        }

        return changed.Count == 0 ? null : string.Join(", ", changed);
    }

    private sealed class ListenerComparer : IEqualityComparer<SmtpListenerSettings>
    {
        public static readonly ListenerComparer Instance = new();

        public bool Equals(SmtpListenerSettings? x, SmtpListenerSettings? y) =>
            x is not null && y is not null && x.EndPoint.Equals(y.EndPoint) && x.Role == y.Role && x.ImplicitTls == y.ImplicitTls && x.ProxyProtocol == y.ProxyProtocol;

        public int GetHashCode(SmtpListenerSettings obj) => obj.EndPoint.GetHashCode();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "configuration changes to {Changed} take effect only after a restart; the running listeners keep the old values")]
    private static partial void LogRestartNeeded(ILogger logger, string changed);

    [LoggerMessage(Level = LogLevel.Information, Message = "configuration reloaded ({Reason}): {Users} users, {Domains} domains")]
    private static partial void LogReloaded(ILogger logger, string reason, int users, int domains);

    [LoggerMessage(Level = LogLevel.Error, Message = "configuration not reloaded ({Reason}), the previous one stays in force: {Problems}")]
    private static partial void LogInvalid(ILogger logger, string reason, string problems);
}
