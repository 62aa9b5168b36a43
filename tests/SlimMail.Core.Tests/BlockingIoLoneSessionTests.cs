using SlimMail.Delivery;
using SlimMail.Transport;

namespace SlimMail.Tests.Core;

/// <summary>
/// Counts every open session of the process, so it runs alone: no other test's session may be open meanwhile.
/// </summary>
[Collection(Name)]
public sealed class BlockingIoLoneSessionTests
{
    public const string Name = "Sessions of the whole process";

    [Fact]
    public async Task The_only_open_sessions_disk_work_runs_on_its_own_thread_and_anyone_elses_on_a_disk_thread()
    {
        await WaitUntilNoSessionIsOpen();
        var sessions = new SessionCounter();
        sessions.Enter();
        try
        {
            // A thread that is not a pool thread, as the socket engine's threads are not.
            var alone = RunFromOwnThread();
            Assert.Equal(alone.Caller, alone.RanOn);
            Assert.True(alone.CompletedAtOnce);

            // A caller that is not that session (the relay's worker after an attempt) never blocks its thread.
            var notTheSession = RunFromOwnThread(fromSession: false);
            Assert.NotEqual(notTheSession.Caller, notTheSession.RanOn);
            Assert.Equal("SlimMail disk I/O", notTheSession.Name);

            sessions.Enter();
            try
            {
                var two = RunFromOwnThread();
                Assert.NotEqual(two.Caller, two.RanOn);
                Assert.Equal("SlimMail disk I/O", two.Name);
            }
            finally
            {
                sessions.Exit();
            }
        }
        finally
        {
            sessions.Exit();
        }
    }

    private static (int Caller, int RanOn, bool CompletedAtOnce, string? Name) RunFromOwnThread(bool fromSession = true)
    {
        int caller = 0, ranOn = 0;
        bool completedAtOnce = false;
        string? name = null;
        var thread = new Thread(() =>
        {
            caller = Environment.CurrentManagedThreadId;
            Task done = BlockingIo.RunAsync(() =>
            {
                ranOn = Environment.CurrentManagedThreadId;
                name = Thread.CurrentThread.Name;
            }, fromSession);
            completedAtOnce = done.IsCompleted;
            done.Wait(TimeSpan.FromSeconds(10));
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(20)));
        return (caller, ranOn, completedAtOnce, name);
    }

    private static async Task WaitUntilNoSessionIsOpen()
    {
        // Sessions of tests that ran before may still be ending.
        for (int i = 0; i < 100 && SessionCounter.InProcess != 0; i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(0, SessionCounter.InProcess);
    }
}

[CollectionDefinition(BlockingIoLoneSessionTests.Name, DisableParallelization = true)]
public sealed class BlockingIoLoneSessionCollection;
