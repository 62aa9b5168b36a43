using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace SlimMail.Host.Logging;

/// <summary>
/// The .NET console logger's output — the same formatters (<c>simple</c>, <c>json</c>, <c>systemd</c>), options and
/// <c>Logging:Console</c> configuration section — written by a thread that takes every line queued meanwhile in one
/// write(2). The stock provider wakes its thread and makes a system call per line: under load that was about two
/// wake-ups per message (docs/benchmarks.md).
/// </summary>
[ProviderAlias("Console")]
internal sealed class BatchingConsoleLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private const string DefaultFormatter = "simple";

    private readonly IOptionsMonitor<ConsoleLoggerOptions> _options;
    private readonly Dictionary<string, ConsoleFormatter> _formatters;
    private readonly ConcurrentDictionary<string, BatchingConsoleLogger> _loggers = new(StringComparer.Ordinal);
    private readonly IDisposable? _optionsReload;

    public BatchingConsoleLoggerProvider(IOptionsMonitor<ConsoleLoggerOptions> options, IEnumerable<ConsoleFormatter> formatters)
    {
        _options = options;
        _formatters = formatters.ToDictionary(f => f.Name, StringComparer.OrdinalIgnoreCase);
        Queue = new ConsoleLogQueue(Console.OpenStandardOutput(), Console.OpenStandardError());
        Apply(options.CurrentValue);
        _optionsReload = options.OnChange(Apply);
    }

    internal ConsoleLogQueue Queue { get; }

    internal ConsoleFormatter Formatter { get; private set; } = null!;

    internal LogLevel StandardErrorThreshold { get; private set; }

    internal IExternalScopeProvider ScopeProvider { get; private set; } = new LoggerExternalScopeProvider();

    public ILogger CreateLogger(string categoryName) =>
        _loggers.GetOrAdd(categoryName, static (name, provider) => new BatchingConsoleLogger(name, provider), this);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => ScopeProvider = scopeProvider;

    public void Dispose()
    {
        _optionsReload?.Dispose();
        Queue.Dispose();
    }

    private void Apply(ConsoleLoggerOptions options)
    {
        // The stock provider also falls back to the simple formatter for a name it does not know.
        Formatter = options.FormatterName is { } name && _formatters.TryGetValue(name, out ConsoleFormatter? named)
            ? named
            : _formatters[DefaultFormatter];
        StandardErrorThreshold = options.LogToStandardErrorThreshold;
    }
}
