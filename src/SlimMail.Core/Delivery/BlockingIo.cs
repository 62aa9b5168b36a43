using System.Diagnostics.CodeAnalysis;
using SlimMail.Transport;

namespace SlimMail.Delivery;

/// <summary>
/// Dedicated threads for the file-system calls that block (fsync above all), so socket and thread-pool
/// threads do not wait on the disk (one caller at a time excepted, see <see cref="RunAsync"/>). Many run at
/// once because the disk serves concurrent fsyncs in parallel.
/// Idle threads sleep on a <see cref="WakeSignal"/> of their own, woken one at a time by exactly one system
/// call: BlockingCollection spins and yields before it blocks (~5% of the CPU under load on two cores), and
/// Monitor.Pulse makes the woken thread fight the pulser for the monitor.
/// </summary>
internal static class BlockingIo
{
    private const int InlineLimit = 1;
    private static readonly Queue<(Action Work, TaskCompletionSource Done)> Work = new();
    private static readonly Stack<WakeSignal> Idle = new();
    private static int _inline;

    static BlockingIo()
    {
        int threads = Math.Max(32, Environment.ProcessorCount * 16);
        for (int i = 0; i < threads; i++)
        {
            // UnsafeStart: Start would hand each thread the execution context of whoever touched this class first
            // (a session), and every line a disk thread logged would carry that session's scope, forever.
            new Thread(Run) { IsBackground = true, Name = "SlimMail disk I/O" }.UnsafeStart();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on an I/O thread, the continuation there too (it is short) — or right here,
    /// when the caller is a thread-pool thread or the thread of the only open session, and no other caller's work
    /// is running that way: a lone session then saves the wake-up of a disk thread, which on a virtual machine
    /// costs tens of microseconds per message (1 session: +8..23% messages/s with a new connection each, up to
    /// +50% over one connection). Only one caller at a time, so that the thread pool keeps its threads for the
    /// sockets. <paramref name="work"/> must not wait for other work given here. <paramref name="fromSession"/> is
    /// false for callers that are not a session (the relay's workers): they never count as the lone session.
    /// </summary>
    public static Task RunAsync(Action work, bool fromSession = true)
    {
        // With inline socket completions (slimmail serve turns them on) session code runs on the socket engine's
        // own threads, and blocking one of those would stall every connection it serves — unless the caller's
        // session is the only one open: then there is nobody to stall (a new connection's accept waits at most
        // this one fsync), and a lone client saves the wake-up of a disk thread per message.
        if ((Thread.CurrentThread.IsThreadPoolThread || (fromSession && SessionCounter.InProcess == 1)) && TryRunInline(work, out Task? result))
        {
            return result;
        }

        var done = new TaskCompletionSource();
        WakeSignal? idle = null;
        lock (Work)
        {
            Work.Enqueue((work, done));
            Idle.TryPop(out idle);
        }

        // Outside the lock, so the woken thread finds it free.
        idle?.Set();
        return done.Task;
    }

    private static bool TryRunInline(Action work, [NotNullWhen(true)] out Task? result)
    {
        try
        {
            if (Interlocked.Increment(ref _inline) > InlineLimit)
            {
                result = null;
                return false;
            }

            work();
            result = Task.CompletedTask;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            result = Task.FromException(e);
        }
        finally
        {
            Interlocked.Decrement(ref _inline);
        }

        return true;
    }

    private static void Run()
    {
        using var signal = new WakeSignal();
        while (true)
        {
            (Action work, TaskCompletionSource done) item;
            bool found;
            lock (Work)
            {
                found = Work.TryDequeue(out item);
                if (!found)
                {
                    Idle.Push(signal);
                }
            }

            if (!found)
            {
                // Whoever pops this thread off Idle sets the signal, before or after this call.
                signal.Wait();
                continue;
            }

            try
            {
                item.work();
                item.done.SetResult();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                item.done.SetException(e);
            }
        }
    }
}
