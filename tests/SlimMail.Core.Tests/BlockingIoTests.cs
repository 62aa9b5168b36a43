using SlimMail.Delivery;

namespace SlimMail.Tests.Core;

public sealed class BlockingIoTests
{
    [Fact]
    public async Task A_wake_signal_set_before_the_wait_is_not_lost()
    {
        using var signal = new WakeSignal();
        signal.Set();
        Task wait = Task.Factory.StartNew(signal.Wait, TaskCreationOptions.LongRunning);
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_wake_signal_wait_blocks_until_set_from_another_thread()
    {
        using var signal = new WakeSignal();
        var started = new TaskCompletionSource();
        Task wait = Task.Factory.StartNew(() =>
        {
            started.SetResult();
            signal.Wait();
        }, TaskCreationOptions.LongRunning);
        await started.Task;
        Task first = await Task.WhenAny(wait, Task.Delay(200));
        Assert.NotSame(wait, first);
        signal.Set();
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Work_given_from_many_threads_at_once_all_runs_on_disk_threads_and_completes()
    {
        // More callers than disk threads, from threads that are not pool threads (as the socket engine's are),
        // so that every item goes through the queue and idle threads are woken and go back to sleep many times.
        const int Callers = 80;
        const int PerCaller = 200;
        int ran = 0;
        int onPool = 0;
        var tasks = new Task[Callers * PerCaller];
        var threads = new Thread[Callers];
        for (int c = 0; c < Callers; c++)
        {
            int first = c * PerCaller;
            threads[c] = new Thread(() =>
            {
                for (int i = 0; i < PerCaller; i++)
                {
                    tasks[first + i] = BlockingIo.RunAsync(() =>
                    {
                        if (Thread.CurrentThread.IsThreadPoolThread)
                        {
                            Interlocked.Increment(ref onPool);
                        }

                        Interlocked.Increment(ref ran);
                    });
                }
            });
            threads[c].Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Callers * PerCaller, ran);
        Assert.Equal(0, onPool);
    }

    [Fact]
    public async Task A_failing_item_fails_its_own_task_and_the_disk_threads_go_on()
    {
        Task failed = BlockingIo.RunAsync(() => throw new IOException("disk full"));
        IOException e = await Assert.ThrowsAsync<IOException>(() => failed);
        Assert.Equal("disk full", e.Message);
        bool ran = false;
        await BlockingIo.RunAsync(() => ran = true).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(ran);
    }
}
