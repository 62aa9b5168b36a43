using SlimMail.Delivery;

namespace SlimMail.Tests.Core;

public sealed class DirectorySyncTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    // Callers of DirectorySync are disk threads, which may block: long-running threads stand in for them.
    private static Task<T> OnOwnThread<T>(Func<T> call) =>
        Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static async Task UntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (!condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }

    [Fact]
    public async Task A_failed_fsync_fails_every_caller_of_its_batch_and_the_next_batch_still_runs()
    {
        int calls = 0;
        var gate = new ManualResetEventSlim();
        var sync = new DirectorySync(_ =>
        {
            switch (Interlocked.Increment(ref calls))
            {
                case 1:
                    gate.Wait(Patience);
                    break;
                case 2:
                    throw new IOException("EIO");
            }
        });

        Task<Task> first = OnOwnThread(() => sync.SyncAsync("/x"));
        await UntilAsync(() => Volatile.Read(ref calls) == 1);
        // Callers that arrive while it runs are served by the next fsync, which fails.
        Task<Task> second = OnOwnThread(() => sync.SyncAsync("/x"));
        await Task.Delay(200);
        Task[] joined = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => OnOwnThread(() => sync.SyncAsync("/x")))).WaitAsync(Patience);
        gate.Set();

        await first.Unwrap().WaitAsync(Patience);
        await Assert.ThrowsAsync<IOException>(() => second.Unwrap().WaitAsync(Patience));
        foreach (Task t in joined)
        {
            await Assert.ThrowsAsync<IOException>(() => t.WaitAsync(Patience));
        }

        await OnOwnThread(() => sync.SyncAsync("/x")).Unwrap().WaitAsync(Patience);
        Assert.Equal(3, calls);
    }
}
