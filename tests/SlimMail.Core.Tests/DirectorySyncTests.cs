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

    // A caller without an announcement joins "/x" and is still waiting a moment later.
    private static async Task<Task> JoinHeldBackAsync(DirectorySync sync)
    {
        Task joined = await OnOwnThread(() => sync.SyncAsync("/x")).WaitAsync(Patience);
        await Task.Delay(150);
        Assert.False(joined.IsCompleted);
        return joined;
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

    [Fact]
    public async Task A_batch_that_opens_while_a_commit_is_announced_waits_for_it_and_one_fsync_serves_both()
    {
        int calls = 0;
        var sync = new DirectorySync(_ => Interlocked.Increment(ref calls));
        DirectorySync.Announcement announced = sync.Announce("/x");

        Task other = await JoinHeldBackAsync(sync);
        Assert.Equal(0, Volatile.Read(ref calls));

        Task mine = await OnOwnThread(() => sync.SyncAsync(announced)).WaitAsync(Patience);
        Assert.True(mine.IsCompletedSuccessfully); // the last one awaited runs the fsync on its own thread
        await other.WaitAsync(Patience);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task A_withdrawn_commit_no_longer_holds_back_the_batch_that_waited_for_it()
    {
        int calls = 0;
        var sync = new DirectorySync(_ => Interlocked.Increment(ref calls));
        DirectorySync.Announcement failed = sync.Announce("/x");
        Task other = await JoinHeldBackAsync(sync);

        sync.Withdraw(failed);
        await other.WaitAsync(Patience);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task A_commit_announced_after_a_batch_opened_does_not_hold_that_batch_back()
    {
        int calls = 0;
        var gate = new ManualResetEventSlim();
        var sync = new DirectorySync(_ =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                gate.Wait(Patience);
            }
        });

        Task<Task> first = OnOwnThread(() => sync.SyncAsync("/x"));
        await UntilAsync(() => Volatile.Read(ref calls) == 1);
        Task second = await OnOwnThread(() => sync.SyncAsync("/x")).WaitAsync(Patience);
        DirectorySync.Announcement late = sync.Announce("/x");
        gate.Set();

        await first.Unwrap().WaitAsync(Patience);
        await second.WaitAsync(Patience);
        Assert.Equal(2, Volatile.Read(ref calls));

        // The late commit gets an fsync of its own, started after it joined.
        await OnOwnThread(() => sync.SyncAsync(late)).Unwrap().WaitAsync(Patience);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task Announcements_of_one_directory_do_not_hold_back_another()
    {
        int calls = 0;
        var sync = new DirectorySync(_ => Interlocked.Increment(ref calls));
        DirectorySync.Announcement elsewhere = sync.Announce("/y");
        await OnOwnThread(() => sync.SyncAsync("/x")).Unwrap().WaitAsync(Patience);
        Assert.Equal(1, calls);
        sync.Withdraw(elsewhere);
    }

    [Fact]
    public async Task Under_concurrent_commits_every_joiner_is_served_by_an_fsync_started_after_it_joined_and_none_hangs()
    {
        long clock = 0;
        long lastFinishedStart = 0; // the start time of the latest finished fsync (one runs at a time)
        int running = 0;
        var sync = new DirectorySync(_ =>
        {
            Assert.Equal(1, Interlocked.Increment(ref running));
            long start = Interlocked.Increment(ref clock);
            Thread.SpinWait(2_000);
            Interlocked.Decrement(ref running);
            Volatile.Write(ref lastFinishedStart, start);
        });

        int violations = 0;
        Task<int>[] committers = Enumerable.Range(0, 16).Select(seed => OnOwnThread(() =>
        {
            var random = new Random(seed);
            var waits = new List<(Task Done, long Joined)>();
            int withdrawn = 0;
            for (int i = 0; i < 300; i++)
            {
                bool announce = random.Next(4) != 0;
                DirectorySync.Announcement announced = announce ? sync.Announce("/x") : default;
                Thread.SpinWait(random.Next(3_000)); // the file's fsync and rename
                if (announce && random.Next(10) == 0)
                {
                    sync.Withdraw(announced);
                    withdrawn++;
                    continue;
                }

                long joined = Interlocked.Increment(ref clock);
                Task done = announce ? sync.SyncAsync(announced) : sync.SyncAsync("/x");
                waits.Add((done.ContinueWith(_ =>
                {
                    if (Volatile.Read(ref lastFinishedStart) <= joined)
                    {
                        Interlocked.Increment(ref violations);
                    }
                }, TaskScheduler.Default), joined));
            }

            return Task.WaitAll(waits.Select(w => w.Done).ToArray(), Patience) ? withdrawn : -1;
        })).ToArray();

        int[] withdrawals = await Task.WhenAll(committers).WaitAsync(Patience);
        Assert.DoesNotContain(-1, withdrawals); // -1: some joiner was never served
        Assert.True(withdrawals.Sum() > 0);
        Assert.Equal(0, violations);
    }
}
