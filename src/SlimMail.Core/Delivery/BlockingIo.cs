using System.Collections.Concurrent;

namespace SlimMail.Delivery;

/// <summary>
/// Dedicated threads for the file-system calls that block (fsync above all), so socket and thread-pool
/// threads never wait on the disk. Many run at once because the disk serves concurrent fsyncs in parallel.
/// </summary>
internal static class BlockingIo
{
    private static readonly BlockingCollection<(Action Work, TaskCompletionSource Done)> Queue = Start();

    /// <summary>Runs <paramref name="work"/> on an I/O thread; the continuation runs there too (it is short).</summary>
    public static Task RunAsync(Action work)
    {
        var done = new TaskCompletionSource();
        Queue.Add((work, done));
        return done.Task;
    }

    private static BlockingCollection<(Action, TaskCompletionSource)> Start()
    {
        var queue = new BlockingCollection<(Action, TaskCompletionSource)>();
        int threads = Math.Max(32, Environment.ProcessorCount * 16);
        for (int i = 0; i < threads; i++)
        {
            var thread = new Thread(() =>
            {
                foreach ((Action work, TaskCompletionSource done) in queue.GetConsumingEnumerable())
                {
                    try
                    {
                        work();
                        done.SetResult();
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
                    {
                        done.SetException(e);
                    }
                }
            })
            {
                IsBackground = true,
                Name = "SlimMail disk I/O",
            };
            thread.Start();
        }

        return queue;
    }
}
