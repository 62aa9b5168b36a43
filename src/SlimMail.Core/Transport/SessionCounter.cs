namespace SlimMail.Transport;

/// <summary>Counts open sessions so a server can wait, on shutdown, until they have all ended.</summary>
public sealed class SessionCounter
{
    private static int s_inProcess;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;
    private int _stopping;

    /// <summary>Open sessions now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Open sessions of every counter in this process (SMTP and POP3 alike).</summary>
    internal static int InProcess => Volatile.Read(ref s_inProcess);

    /// <summary>A session started.</summary>
    public void Enter()
    {
        Interlocked.Increment(ref _count);
        Interlocked.Increment(ref s_inProcess);
    }

    /// <summary>A session ended.</summary>
    public void Exit()
    {
        Interlocked.Decrement(ref s_inProcess);
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
