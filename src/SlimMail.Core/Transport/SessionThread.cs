namespace SlimMail.Transport;

/// <summary>
/// A thread of its own for one session, on which that session's socket calls block instead of going through
/// the runtime's socket engines. The engines are one thread per core: two busy sessions on the same engine take
/// turns, and a ping-pong protocol (POP3 RETR after RETR) then waits behind its neighbour although a core is idle.
/// A thread per session is what Dovecot has with a process per session, and a blocking <c>recv</c> is one system
/// call where the engine needs two or three (a zero-byte read, <c>epoll_wait</c> when nothing has arrived, the read).
/// <para>
/// The session is still written with <c>async</c>/<c>await</c>: <see cref="ThreadBoundSocketStream"/> completes
/// every call made on this thread synchronously, and a call made elsewhere — after an await that really went to
/// another thread, such as a password check or a mailbox listing on a disk thread — is posted back here, so that
/// no pool or disk thread ever blocks on a client.
/// </para>
/// </summary>
public sealed class SessionThread
{
    private readonly Queue<Action> _work = new();
    private readonly Func<SessionThread, Task> _session;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Thread _thread;
    private static int s_running;
    private bool _finished;

    /// <summary>Session threads running now, in the process.</summary>
    public static int Running => Volatile.Read(ref s_running);

    private SessionThread(Func<SessionThread, Task> session, string name)
    {
        _session = session;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    /// <summary>
    /// Starts <paramref name="session"/> on a new thread; the returned task completes when the session's task has
    /// and the thread has ended.
    /// </summary>
    public static Task Start(Func<SessionThread, Task> session, string name)
    {
        ArgumentNullException.ThrowIfNull(session);
        var thread = new SessionThread(session, name);
        thread._thread.UnsafeStart();
        return thread._done.Task;
    }

    /// <summary>True on this session's thread.</summary>
    public bool IsCurrent => Thread.CurrentThread == _thread;

    /// <summary>
    /// Runs <paramref name="work"/> on this thread as soon as it is free. False once the session's task has completed
    /// and the thread has ended: the caller then runs the work itself.
    /// </summary>
    public bool Post(Action work)
    {
        lock (_work)
        {
            if (_finished)
            {
                return false;
            }

            _work.Enqueue(work);
            Monitor.Pulse(_work);
            return true;
        }
    }

    private void Run()
    {
        Interlocked.Increment(ref s_running);
        Task session;
        try
        {
            session = _session(this);
        }
        catch (Exception e)
        {
            session = Task.FromException(e);
        }

        if (!session.IsCompleted)
        {
            // Wakes the loop below when the session ends on another thread.
            session.ContinueWith(static (_, state) => ((SessionThread)state!).Wake(), this, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        while (true)
        {
            Action? work;
            lock (_work)
            {
                while (_work.Count == 0 && !session.IsCompleted)
                {
                    Monitor.Wait(_work);
                }

                if (_work.Count == 0)
                {
                    _finished = true;
                    break;
                }

                work = _work.Dequeue();
            }

            work();
        }

        Interlocked.Decrement(ref s_running);
        if (session.Exception is { } failed)
        {
            _done.SetException(failed.InnerExceptions);
        }
        else
        {
            _done.SetResult();
        }
    }

    private void Wake()
    {
        lock (_work)
        {
            Monitor.Pulse(_work);
        }
    }
}
