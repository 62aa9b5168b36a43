using Microsoft.Extensions.Logging;
using SlimMail.Host.Configuration;
using SlimMail.Relay.Queue;

namespace SlimMail.Host.Hosting;

/// <summary>The outbound queue when <c>Relay.Mode</c> is not <c>None</c> (shared by every configuration generation), and its scheduler once started.</summary>
internal sealed class RelayWiring
{
    public RelayWiring(SlimMailSettings settings, ILoggerFactory loggerFactory)
    {
        if (settings.Relay is not null)
        {
            Queue = new OutboundQueue(Path.Combine(settings.DataDirectory, "queue"), loggerFactory.CreateLogger("SlimMail.Relay"));
        }
    }

    public OutboundQueue? Queue { get; }

    public Relay.RelayScheduler? Scheduler { get; set; }

    /// <summary>Messages in the queue, for the metrics gauge.</summary>
    public int QueuedMessages => Scheduler?.Count ?? 0;
}
