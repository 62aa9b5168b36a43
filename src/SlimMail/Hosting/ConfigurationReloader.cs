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
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PosixSignalRegistration? _hangup;
    private Timer? _watch;
    private DateTime _stamp;

    public ConfigurationReloader(Source source, LiveConfiguration live, ILoggerFactory loggerFactory)
    {
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
        try
        {
            using var problems = new StringWriter();
            (SlimMailSettings? settings, _) = ConfigurationLoader.Load(_source.ConfigFile, _source.Overrides, problems);
            if (settings is null)
            {
                LogInvalid(_logger, reason, problems.ToString().Trim().Replace('\n', ';'));
                return;
            }

            _live.Apply(settings);
            LogReloaded(_logger, reason, settings.Users.Count, settings.Domains.Count);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            LogInvalid(_logger, reason, e.Message);
        }
        finally
        {
            _gate.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "configuration reloaded ({Reason}): {Users} users, {Domains} domains; listeners and limits need a restart")]
    private static partial void LogReloaded(ILogger logger, string reason, int users, int domains);

    [LoggerMessage(Level = LogLevel.Error, Message = "configuration not reloaded ({Reason}), the previous one stays in force: {Problems}")]
    private static partial void LogInvalid(ILogger logger, string reason, string problems);
}
