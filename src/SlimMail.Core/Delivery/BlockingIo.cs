using System.Diagnostics.CodeAnalysis;

namespace SlimMail.Delivery;

/// <summary>
/// Dedicated threads for the file-system calls that block (fsync above all), so socket and thread-pool
/// threads do not wait on the disk (one caller at a time excepted, see <see cref="RunAsync"/>). Many run at
/// once because the disk serves concurrent fsyncs in parallel.
/// Idle threads sleep on a monitor rather than spinning for work (BlockingCollection spins and yields before
/// it blocks, which on two cores cost ~5% of the CPU under load).
/// </summary>
internal static class BlockingIo
{
    private const int InlineLimit = 1;
    private static readonly Queue<(Action Work, TaskCompletionSource Done)> Work = new();
    private static int _idle;
    private static int _inline;

    static BlockingIo()
    {
        int threads = Math.Max(32, Environment.ProcessorCount * 16);
        for (int i = 0; i < threads; i++)
        {
            new Thread(Run) { IsBackground = true, Name = "SlimMail disk I/O" }.Start();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on an I/O thread, the continuation there too (it is short) — or, when the
    /// caller is a thread-pool thread and no other caller's work is running that way, right here: a lone session
    /// then saves the wake-up of a disk thread, which on a virtual machine costs tens of microseconds per message
    /// (1 session: +8..16% messages/s with a new connection each, up to +50% over one connection). Only one caller at a time, so that the thread pool
    /// keeps its threads for the sockets. <paramref name="work"/> must not wait for other work given here.
    /// </summary>
    public static Task RunAsync(Action work)
    {
        // Only on a thread-pool thread: with inline socket completions (slimmail serve turns them on) session code
        // runs on the socket engine's own threads, and blocking one of those would stall every connection it serves.
        if (Thread.CurrentThread.IsThreadPoolThread && TryRunInline(work, out Task? result))
        {
            return result;
        }

        var done = new TaskCompletionSource();
        lock (Work)
        {
            Work.Enqueue((work, done));
            if (_idle > 0)
            {
                Monitor.Pulse(Work);
            }
        }

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
        while (true)
        {
            (Action work, TaskCompletionSource done) item;
            lock (Work)
            {
                while (Work.Count == 0)
                {
                    _idle++;
                    Monitor.Wait(Work);
                    _idle--;
                }

                item = Work.Dequeue();
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
