using System.Collections.Concurrent;
using System.Net;

namespace SlimMail.Auth;

/// <summary>
/// Slows down and then blocks clients that keep failing to authenticate, SMTP and POP3 counted together:
/// each failure delays the answer a little more, and after <c>maxFailures</c> within <c>window</c> the
/// address is refused for <c>blockFor</c>. Loopback is counted like any other address.
/// </summary>
public sealed class AuthThrottle
{
    private readonly ConcurrentDictionary<IPAddress, Entry> _entries = new();
    private readonly int _maxFailures;
    private readonly TimeSpan _window;
    private readonly TimeSpan _blockFor;
    private readonly TimeSpan _delayStep;
    private readonly TimeProvider _time;

    /// <summary>Creates a throttle; the defaults are the product contract's (5 failures in 10 minutes block for 10 minutes).</summary>
    public AuthThrottle(int maxFailures = 5, TimeSpan? window = null, TimeSpan? blockFor = null, TimeSpan? delayStep = null, TimeProvider? time = null)
    {
        _maxFailures = maxFailures;
        _window = window ?? TimeSpan.FromMinutes(10);
        _blockFor = blockFor ?? TimeSpan.FromMinutes(10);
        _delayStep = delayStep ?? TimeSpan.FromMilliseconds(500);
        _time = time ?? TimeProvider.System;
    }

    /// <summary>True while <paramref name="address"/> is refused.</summary>
    public bool IsBlocked(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (!_entries.TryGetValue(address, out Entry? entry))
        {
            return false;
        }

        lock (entry)
        {
            return entry.BlockedUntil > _time.GetUtcNow();
        }
    }

    /// <summary>Records a failure; returns how long to wait before answering it.</summary>
    public TimeSpan RecordFailure(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Entry entry = _entries.GetOrAdd(address, static _ => new Entry());
        DateTimeOffset now = _time.GetUtcNow();
        lock (entry)
        {
            entry.Failures.Enqueue(now);
            while (entry.Failures.Count > 0 && now - entry.Failures.Peek() > _window)
            {
                entry.Failures.Dequeue();
            }

            if (entry.Failures.Count >= _maxFailures)
            {
                entry.BlockedUntil = now + _blockFor;
                entry.Failures.Clear();
            }

            return _delayStep * Math.Min(entry.Failures.Count, 6);
        }
    }

    /// <summary>Forgets addresses whose failures and blocks have expired.</summary>
    public void Prune()
    {
        DateTimeOffset now = _time.GetUtcNow();
        foreach ((IPAddress address, Entry entry) in _entries)
        {
            lock (entry)
            {
                if (entry.BlockedUntil <= now && (entry.Failures.Count == 0 || now - entry.Failures.Peek() > _window))
                {
                    _entries.TryRemove(address, out _);
                }
            }
        }
    }

    private sealed class Entry
    {
        public Queue<DateTimeOffset> Failures { get; } = new();

        public DateTimeOffset BlockedUntil { get; set; }
    }
}
