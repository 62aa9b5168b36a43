using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SlimMail.Host.Logging;

/// <summary>
/// Formats an event on the logging thread, as the stock console logger does, and queues the text for
/// <see cref="ConsoleLogQueue"/>.
/// </summary>
internal sealed class BatchingConsoleLogger(string category, BatchingConsoleLoggerProvider provider) : ILogger
{
    private const int MaxRetainedCapacity = 1024;

    [ThreadStatic]
    private static StringWriter? t_writer;

    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => provider.ScopeProvider.Push(state);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        ArgumentNullException.ThrowIfNull(formatter);
        StringWriter writer = t_writer ??= new StringWriter(CultureInfo.InvariantCulture);
        var entry = new LogEntry<TState>(logLevel, category, eventId, state, exception, formatter);
        provider.Formatter.Write(in entry, provider.ScopeProvider, writer);

        StringBuilder text = writer.GetStringBuilder();
        if (text.Length == 0)
        {
            return;
        }

        string line = text.ToString();
        text.Clear();
        if (text.Capacity > MaxRetainedCapacity)
        {
            text.Capacity = MaxRetainedCapacity;
        }

        provider.Queue.Enqueue(line, toStandardError: logLevel >= provider.StandardErrorThreshold);
    }
}
