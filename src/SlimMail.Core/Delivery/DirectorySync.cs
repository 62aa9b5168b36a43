using System.Collections.Concurrent;

namespace SlimMail.Delivery;

/// <summary>
/// Group commit for directory fsyncs: every caller needs an fsync that starts after its rename, and one
/// fsync serves all the renames that happened before it started. While one runs, later callers join the
/// next batch, run for all of them as soon as the current one is done, so N messages finishing together
/// cost two fsyncs, not N. Waiters wait on a task, not on a lock: no
/// crowd of threads waking up to fight over a monitor (which showed as sched_yield spinning under load).
/// <para>
/// A commit may also <see cref="Announce"/> itself before its file's fsync. A batch then does not start
/// while a commit that was announced when the batch opened has not joined it (or withdrawn): it waits at
/// most one file fsync for the messages already on their way. Sessions' commits are spread out in time, so
/// without this a batch held ~2 messages at 32 sessions (0.45 directory fsyncs per message, each a write of the
/// directory's block and inode and a cache flush); with it 0.24 (docs/benchmarks.md).
/// </para>
/// </summary>
internal sealed class DirectorySync
{
    private readonly ConcurrentDictionary<string, Directory> _directories = new(StringComparer.Ordinal);
    private readonly Action<string> _fsync;

    public DirectorySync(Action<string>? fsync = null) => _fsync = fsync ?? Posix.FsyncDirectory;

    public static DirectorySync Shared { get; } = new();

    /// <summary>
    /// Runs <paramref name="commit"/> (the file's fsync and its renames or links into <paramref name="directories"/>)
    /// announced to each directory's group commit, then joins each; a commit that throws is withdrawn, so no batch
    /// waits for it. Returns a task per directory, complete once an fsync of it that started after the commit has
    /// finished. <paramref name="announce"/> false for a commit that may take long (a copy of a large message):
    /// no batch waits for it then. Call from <see cref="BlockingIo"/> work, as <see cref="SyncAsync(string)"/>.
    /// </summary>
    public Task[] Commit(string[] directories, bool announce, Action commit)
    {
        var durable = new Task[directories.Length];
        if (!announce)
        {
            commit();
            for (int i = 0; i < directories.Length; i++)
            {
                durable[i] = SyncAsync(directories[i]);
            }

            return durable;
        }

        var announced = new Announcement[directories.Length];
        for (int i = 0; i < directories.Length; i++)
        {
            announced[i] = Announce(directories[i]);
        }

        int joined = 0;
        try
        {
            commit();
            for (; joined < directories.Length; joined++)
            {
                durable[joined] = SyncAsync(announced[joined]);
            }
        }
        finally
        {
            for (int i = joined; i < directories.Length; i++)
            {
                Withdraw(announced[i]);
            }
        }

        return durable;
    }

    /// <summary>
    /// Tells the group commit of <paramref name="path"/> that a commit is on its way: call before the file's
    /// fsync, then exactly one of <see cref="SyncAsync(Announcement)"/> (after the rename) or
    /// <see cref="Withdraw"/> (when the commit failed): a batch that opens meanwhile waits for it.
    /// </summary>
    public Announcement Announce(string path)
    {
        Directory directory = _directories.GetOrAdd(path, static p => new Directory(p));
        lock (directory)
        {
            directory.InFlight++;
            return new Announcement(directory, ++directory.Tickets);
        }
    }

    /// <summary>
    /// Call from <see cref="BlockingIo"/> work (a disk thread, or the one caller it runs inline) after the
    /// renames or links to make durable. When no fsync of <paramref name="path"/> is running and no announced
    /// commit is awaited, runs one here — and then each batch that gathered meanwhile — and returns a completed
    /// task; otherwise returns the task of the next batch, which the thread that completes it will run. Either
    /// way the task completes once an fsync that started after this call has finished. A lone message thus
    /// costs no extra thread hop.
    /// </summary>
    public Task SyncAsync(string path) =>
        Join(_directories.GetOrAdd(path, static p => new Directory(p)), ticket: 0);

    /// <summary><see cref="SyncAsync(string)"/> for a commit that announced itself.</summary>
    public Task SyncAsync(Announcement announcement) =>
        Join(announcement.Directory ?? throw new ArgumentException("not announced", nameof(announcement)), announcement.Ticket);

    /// <summary>Takes back an announcement whose commit will not join (it failed before its rename).</summary>
    public void Withdraw(Announcement announcement)
    {
        Directory directory = announcement.Directory ?? throw new ArgumentException("not announced", nameof(announcement));
        TaskCompletionSource? batch;
        lock (directory)
        {
            Arrive(directory, announcement.Ticket);
            batch = TakeReadyBatch(directory);
        }

        // The batch waited for this commit alone: nobody else is left to run it.
        if (batch is not null)
        {
            RunBatches(directory, batch);
        }
    }

    /// <summary><see cref="SyncAsync(string)"/>, waiting for the result (for <see cref="BlockingIo"/> work, which may block).</summary>
    public void Sync(string path) => SyncAsync(path).GetAwaiter().GetResult();

    private Task Join(Directory directory, long ticket)
    {
        TaskCompletionSource mine;
        TaskCompletionSource? lead;
        lock (directory)
        {
            if (ticket != 0)
            {
                Arrive(directory, ticket);
            }

            if (directory.Pending is null)
            {
                directory.Pending = NewBatch();
                directory.PendingOpenedAt = directory.Tickets;
                directory.PendingAwaits = directory.InFlight;
            }

            mine = directory.Pending;
            lead = TakeReadyBatch(directory);
        }

        if (lead is not null)
        {
            RunBatches(directory, lead);
        }

        return mine.Task;
    }

    // An announced commit leaves the flight; the batch gathering waits for it if it was announced before that
    // batch opened (tickets only grow).
    private static void Arrive(Directory directory, long ticket)
    {
        directory.InFlight--;
        if (directory.Pending is not null && ticket <= directory.PendingOpenedAt)
        {
            directory.PendingAwaits--;
        }
    }

    // Under the directory's lock: the gathering batch if it may start now, marked running.
    private static TaskCompletionSource? TakeReadyBatch(Directory directory)
    {
        if (directory.Running || directory.Pending is null || directory.PendingAwaits > 0)
        {
            return null;
        }

        TaskCompletionSource batch = directory.Pending;
        directory.Pending = null;
        directory.Running = true;
        return batch;
    }

    // Runs the batch given. Batches ready when it is done are run by a pool thread, which keeps going until
    // none is left: the caller's own message must not wait behind other people's fsyncs, and a pool thread
    // never waits for a free disk thread (disk threads may all be blocked in Sync, waiting for it). A batch
    // still waiting for announced commits is left to the last of them.
    private void RunBatches(Directory directory, TaskCompletionSource batch, bool loop = false)
    {
        while (true)
        {
            try
            {
                _fsync(directory.Path);
                batch.SetResult();
            }
            catch (Exception e)
            {
                // Whatever failed, the waiters must hear of it and the next batch must still run.
                batch.SetException(e);
            }

            TaskCompletionSource? next;
            lock (directory)
            {
                directory.Running = false;
                next = TakeReadyBatch(directory);
                if (next is null)
                {
                    return;
                }
            }

            batch = next;
            if (!loop)
            {
                ThreadPool.UnsafeQueueUserWorkItem(
                    static state => state.Self.RunBatches(state.Directory, state.Batch, loop: true),
                    (Self: this, Directory: directory, Batch: batch),
                    preferLocal: false);
                return;
            }
        }
    }

    // Waiters continue on the pool, not inline on the thread that must start the next fsync.
    private static TaskCompletionSource NewBatch() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A commit on its way to a directory's group commit (<see cref="Announce"/>).</summary>
    internal readonly struct Announcement
    {
        internal Announcement(Directory directory, long ticket)
        {
            Directory = directory;
            Ticket = ticket;
        }

        internal Directory? Directory { get; }

        internal long Ticket { get; }
    }

    internal sealed class Directory(string path)
    {
        public string Path { get; } = path;

        public bool Running { get; set; }

        /// <summary>The batch gathering callers for the next fsync; null when none has joined since the last started.</summary>
        public TaskCompletionSource? Pending { get; set; }

        /// <summary>The last ticket given out when <see cref="Pending"/> opened.</summary>
        public long PendingOpenedAt { get; set; }

        /// <summary>How many commits announced before <see cref="Pending"/> opened have not joined it yet.</summary>
        public int PendingAwaits { get; set; }

        public long Tickets { get; set; }

        public int InFlight { get; set; }
    }
}
