namespace SlimMail.Transport;

/// <summary>Counts open sessions so a server can wait, on shutdown, until they have all ended.</summary>
public sealed class SessionCounter
{
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;
    private int _stopping;

    /// <summary>Open sessions now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>A session started.</summary>
    public void Enter() => Interlocked.Increment(ref _count);

    /// <summary>A session ended.</summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _count) == 0 && Volatile.Read(ref _stopping) == 1)
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>Waits until no session is open, or <paramref name="timeout"/>; true when all ended.</summary>
    public async Task<bool> WaitDrainedAsync(TimeSpan timeout)
    {
        // A full fence between "stopping" and reading the count, so a session ending now cannot be missed.
        Interlocked.Exchange(ref _stopping, 1);
        if (Count == 0)
        {
            _drained.TrySetResult();
        }

        return await Task.WhenAny(_drained.Task, Task.Delay(timeout)).ConfigureAwait(false) == _drained.Task;
    }
}
