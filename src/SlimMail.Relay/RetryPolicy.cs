namespace SlimMail.Relay;

/// <summary>
/// When to try a recipient again: <c>Relay.RetryDelays</c> by attempt number (the last delay repeats), each
/// stretched or shrunk by up to 10% at random so that messages deferred together do not return together.
/// </summary>
public static class RetryPolicy
{
    /// <summary>The delay after <paramref name="attempts"/> failed attempts (1 for the first failure).</summary>
    public static TimeSpan DelayAfter(int attempts, IReadOnlyList<TimeSpan> delays)
    {
        ArgumentNullException.ThrowIfNull(delays);
        if (delays.Count == 0)
        {
            return TimeSpan.FromMinutes(5);
        }

        TimeSpan delay = delays[Math.Clamp(attempts - 1, 0, delays.Count - 1)];
        double jitter = 0.9 + (Random.Shared.NextDouble() * 0.2);
        return TimeSpan.FromTicks((long)(delay.Ticks * jitter));
    }
}
