using System.Diagnostics.CodeAnalysis;

namespace SlimMail.Relay;

/// <summary>
/// When each queued message is next due for an attempt: a min-heap of (message, time) with one live time per
/// message, so that the scheduler takes what is due in O(log n) per message. It used to look at every queued
/// message at every wake-up (each arrival and each finished attempt), which made a backlog of 10,000 deferred
/// messages cost a scan of all of them per message that arrived. Entries whose time was changed or removed
/// stay in the heap and are dropped when they reach its top. Not thread-safe: the scheduler holds its lock.
/// </summary>
internal sealed class AttemptSchedule
{
    private readonly PriorityQueue<string, DateTimeOffset> _heap = new();
    private readonly Dictionary<string, DateTimeOffset> _live = new(StringComparer.Ordinal);

    /// <summary>Messages with a time.</summary>
    public int Count => _live.Count;

    /// <summary>The earliest time of any message; null when none has one.</summary>
    public DateTimeOffset? Next => DropStale() ? _heap.TryPeek(out _, out DateTimeOffset due) ? due : null : null;

    /// <summary>Makes <paramref name="id"/> due at <paramref name="due"/>, unless it already is earlier.</summary>
    public void Schedule(string id, DateTimeOffset due)
    {
        if (_live.TryGetValue(id, out DateTimeOffset current) && current <= due)
        {
            return;
        }

        _live[id] = due;
        _heap.Enqueue(id, due);
    }

    /// <summary>Forgets <paramref name="id"/>'s time.</summary>
    public void Remove(string id) => _live.Remove(id);

    /// <summary>Takes (and forgets) a message due at or before <paramref name="now"/>; false when none is.</summary>
    public bool TryTakeDue(DateTimeOffset now, [NotNullWhen(true)] out string? id)
    {
        if (DropStale() && _heap.TryPeek(out id, out DateTimeOffset due) && due <= now)
        {
            _heap.Dequeue();
            _live.Remove(id);
            return true;
        }

        id = null;
        return false;
    }

    // Pops entries that no longer hold their message's time; true when a live one is on top.
    private bool DropStale()
    {
        while (_heap.TryPeek(out string? id, out DateTimeOffset due))
        {
            if (_live.TryGetValue(id, out DateTimeOffset live) && live == due)
            {
                return true;
            }

            _heap.Dequeue();
        }

        return false;
    }
}
