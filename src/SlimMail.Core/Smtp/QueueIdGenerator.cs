using System.Globalization;

namespace SlimMail.Smtp;

/// <summary>Makes short ids that name one message in logs and files: unique within the process and over restarts.</summary>
public static class QueueIdGenerator
{
    private static long _counter = Random.Shared.Next(0, 1 << 20);

    /// <summary>A new id: seconds since the epoch, then a counter (both hexadecimal).</summary>
    public static string Next()
    {
        long n = Interlocked.Increment(ref _counter) & 0xFFFFF;
        long seconds = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return string.Create(CultureInfo.InvariantCulture, $"{seconds:X8}{n:X5}");
    }
}
