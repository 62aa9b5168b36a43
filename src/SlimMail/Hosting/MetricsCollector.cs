using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace SlimMail.Host.Hosting;

/// <summary>
/// Listens to the <c>SlimMail</c> meter and keeps every counter's running total per label set, rendered in
/// the Prometheus text exposition format (version 0.0.4). Small on purpose: no exporter package is needed.
/// </summary>
internal sealed class MetricsCollector : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Name, string Labels), long> _values = new();

    public MetricsCollector()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == SlimMailMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            _values.AddOrUpdate((instrument.Name, Labels(tags)), value, (_, old) => old + value));
        _listener.Start();
    }

    public string Render(int queuedMessages)
    {
        var text = new StringBuilder();
        foreach (IGrouping<string, KeyValuePair<(string Name, string Labels), long>> metric in _values.GroupBy(v => v.Key.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            text.Append("# TYPE ").Append(metric.Key).Append(" counter\n");
            foreach (KeyValuePair<(string Name, string Labels), long> value in metric.OrderBy(v => v.Key.Labels, StringComparer.Ordinal))
            {
                text.Append(metric.Key).Append(value.Key.Labels).Append(' ').Append(value.Value.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }

        text.Append("# HELP slimmail_queue_messages Messages in the outbound queue.\n# TYPE slimmail_queue_messages gauge\n")
            .Append("slimmail_queue_messages ").Append(queuedMessages.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return "";
        }

        var labels = new List<string>(tags.Length);
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            string value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
            labels.Add(tag.Key + "=\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"");
        }

        labels.Sort(StringComparer.Ordinal);
        return "{" + string.Join(",", labels) + "}";
    }
}
