namespace SlimMail.Delivery;

/// <summary>
/// Dedicated threads for the file-system calls that block (fsync above all), so socket and thread-pool
/// threads never wait on the disk. Many run at once because the disk serves concurrent fsyncs in parallel.
/// Idle threads sleep on a monitor rather than spinning for work (BlockingCollection spins and yields before
/// it blocks, which on two cores cost ~5% of the CPU under load).
/// </summary>
internal static class BlockingIo
{
    private static readonly Queue<(Action Work, TaskCompletionSource Done)> Work = new();
    private static int _idle;

    static BlockingIo()
    {
        int threads = Math.Max(32, Environment.ProcessorCount * 16);
        for (int i = 0; i < threads; i++)
        {
            new Thread(Run) { IsBackground = true, Name = "SlimMail disk I/O" }.Start();
        }
    }

    /// <summary>Runs <paramref name="work"/> on an I/O thread; the continuation runs there too (it is short).</summary>
    public static Task RunAsync(Action work)
    {
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
