using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using SlimMail.Host.Configuration;
using SlimMail.Relay.Queue;

namespace SlimMail.Host.Commands;

/// <summary>
/// <c>slimmail queue list|flush|delete ID</c>: reads and drives the outbound queue in the configured data
/// directory. It works on the files, so it needs no running server; <c>flush</c> asks a running one to
/// retry now, and <c>delete</c> removes the message, which a running server then forgets.
/// </summary>
internal static class QueueCommand
{
    public static int List(string? configFile, bool json, IReadOnlyList<string> overrides)
    {
        if (Open(configFile, overrides) is not { } queue)
        {
            return ExitCodes.UserError;
        }

        List<QueueEnvelope> envelopes = queue.LoadAll(cleanUp: false);
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(envelopes, QueueJsonContext.Default.ListQueueEnvelope));
            return ExitCodes.Success;
        }

        if (envelopes.Count == 0)
        {
            Console.WriteLine("queue is empty");
            return ExitCodes.Success;
        }

        DateTimeOffset now = DateTimeOffset.UtcNow;
        foreach (QueueEnvelope envelope in envelopes)
        {
            // One line per message, the id first, as mailq prints it; then one indented line per recipient.
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{envelope.Id}  {Age(now - envelope.Arrival)}  {envelope.Size} bytes  from <{envelope.Sender}>"));
            foreach (QueueRecipient recipient in envelope.Recipients)
            {
                string state = recipient.State switch
                {
                    RecipientState.Pending => string.Create(CultureInfo.InvariantCulture,
                        $"pending, {recipient.Attempts} attempt(s), next in {Age(recipient.NextAttempt - now)}"),
                    RecipientState.Delivered => "delivered",
                    _ => recipient.Notified ? "failed, sender notified" : "failed",
                };
                Console.WriteLine($"    <{recipient.Address}> {state}{(recipient.LastError is null ? "" : ": " + recipient.LastError)}");
            }
        }

        return ExitCodes.Success;
    }

    public static int Flush(string? configFile, IReadOnlyList<string> overrides)
    {
        if (Open(configFile, overrides) is not { } queue)
        {
            return ExitCodes.UserError;
        }

        queue.RequestFlush();
        Console.WriteLine($"flush requested: a running server retries every pending recipient now ({queue.LoadAll(cleanUp: false).Count} message(s) queued)");
        return ExitCodes.Success;
    }

    public static int Delete(string? configFile, string id, IReadOnlyList<string> overrides)
    {
        if (Open(configFile, overrides) is not { } queue)
        {
            return ExitCodes.UserError;
        }

        if (!queue.Remove(id))
        {
            Console.Error.WriteLine($"no message {id} in the queue");
            return ExitCodes.UserError;
        }

        Console.WriteLine($"{id} deleted");
        return ExitCodes.Success;
    }

    private static OutboundQueue? Open(string? configFile, IReadOnlyList<string> overrides)
    {
        (SlimMailSettings? settings, _) = ConfigurationLoader.Load(configFile, overrides, Console.Error);
        if (settings is null)
        {
            return null;
        }

        string directory = Path.Combine(settings.DataDirectory, "queue");
        return new OutboundQueue(directory, NullLogger.Instance);
    }

    private static string Age(TimeSpan age)
    {
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }

        return age.TotalDays >= 1 ? $"{(int)age.TotalDays}d{age.Hours}h"
            : age.TotalHours >= 1 ? $"{(int)age.TotalHours}h{age.Minutes}m"
            : age.TotalMinutes >= 1 ? $"{(int)age.TotalMinutes}m{age.Seconds}s"
            : $"{(int)age.TotalSeconds}s";
    }
}
