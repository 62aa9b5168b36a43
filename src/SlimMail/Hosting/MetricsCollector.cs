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
    private readonly ConcurrentDictionary<(string Name, string Labels), HistogramState> _histograms = new();

    // Upper bounds in seconds: a Maildir commit takes a millisecond or two, a program or database longer.
    private static readonly double[] Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

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
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
            _histograms.GetOrAdd((instrument.Name, Labels(tags)), _ => new HistogramState()).Record(value));
        _listener.Start();
    }

    public string Render(int queuedMessages, TimeSpan oldestQueued)
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

        foreach (IGrouping<string, KeyValuePair<(string Name, string Labels), HistogramState>> metric in _histograms.GroupBy(v => v.Key.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            text.Append("# TYPE ").Append(metric.Key).Append(" histogram\n");
            foreach (KeyValuePair<(string Name, string Labels), HistogramState> value in metric.OrderBy(v => v.Key.Labels, StringComparer.Ordinal))
            {
                value.Value.Render(text, metric.Key, value.Key.Labels);
            }
        }

        text.Append("# HELP slimmail_queue_messages Messages in the outbound queue.\n# TYPE slimmail_queue_messages gauge\n")
            .Append("slimmail_queue_messages ").Append(queuedMessages.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append("# HELP slimmail_queue_oldest_age_seconds Age of the oldest message in the outbound queue.\n# TYPE slimmail_queue_oldest_age_seconds gauge\n")
            .Append("slimmail_queue_oldest_age_seconds ").Append(((long)oldestQueued.TotalSeconds).ToString(CultureInfo.InvariantCulture)).Append('\n');
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private sealed class HistogramState
    {
        private readonly long[] _counts = new long[Buckets.Length];
        private double _sum;
        private long _count;

        public void Record(double value)
        {
            lock (_counts)
            {
                for (int i = 0; i < Buckets.Length; i++)
                {
                    if (value <= Buckets[i])
                    {
                        _counts[i]++;
                    }
                }

                _sum += value;
                _count++;
            }
        }

        // Prometheus buckets are cumulative: le="0.01" counts everything up to 10 ms.
        public void Render(StringBuilder text, string name, string labels)
        {
            lock (_counts)
            {
                string inner = labels.Length == 0 ? "" : labels[1..^1] + ",";
                for (int i = 0; i < Buckets.Length; i++)
                {
                    text.Append(name).Append("_bucket{").Append(inner).Append("le=\"").Append(Buckets[i].ToString(CultureInfo.InvariantCulture))
                        .Append("\"} ").Append(_counts[i].ToString(CultureInfo.InvariantCulture)).Append('\n');
                }

                text.Append(name).Append("_bucket{").Append(inner).Append("le=\"+Inf\"} ").Append(_count.ToString(CultureInfo.InvariantCulture)).Append('\n');
                text.Append(name).Append("_sum").Append(labels).Append(' ').Append(_sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                text.Append(name).Append("_count").Append(labels).Append(' ').Append(_count.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
    }

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
