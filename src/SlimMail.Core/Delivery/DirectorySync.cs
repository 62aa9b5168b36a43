using System.Collections.Concurrent;

namespace SlimMail.Delivery;

/// <summary>
/// Group commit for directory fsyncs: every caller needs an fsync that starts after its rename, and one
/// fsync serves all the renames that happened before it started. While one runs, later callers join the
/// next batch, run for all of them as soon as the current one is done, so N messages finishing together
/// cost two fsyncs, not N. Waiters wait on a task, not on a lock: no
/// crowd of threads waking up to fight over a monitor (which showed as sched_yield spinning under load).
/// </summary>
internal sealed class DirectorySync
{
    private readonly ConcurrentDictionary<string, Directory> _directories = new(StringComparer.Ordinal);
    private readonly Action<string> _fsync;

    public DirectorySync(Action<string>? fsync = null) => _fsync = fsync ?? Posix.FsyncDirectory;

    public static DirectorySync Shared { get; } = new();

    /// <summary>
    /// Call from <see cref="BlockingIo"/> work (a disk thread, or the one caller it runs inline) after the
    /// renames or links to make durable. When no
    /// fsync of <paramref name="path"/> is running, runs one here — and then each batch that gathered
    /// meanwhile — and returns a completed task; otherwise returns the task of the next batch, which the
    /// running thread will complete. Either way the task completes once an fsync that started after this
    /// call has finished. A lone message thus costs no extra thread hop.
    /// </summary>
    public Task SyncAsync(string path)
    {
        Directory directory = _directories.GetOrAdd(path, static p => new Directory(p));
        TaskCompletionSource batch = Join(directory, out bool lead);
        if (lead)
        {
            RunBatches(directory, batch);
        }

        return batch.Task;
    }

    /// <summary><see cref="SyncAsync"/>, waiting for the result (for <see cref="BlockingIo"/> work, which may block).</summary>
    public void Sync(string path) => SyncAsync(path).GetAwaiter().GetResult();

    private static TaskCompletionSource Join(Directory directory, out bool lead)
    {
        lock (directory)
        {
            lead = !directory.Running;
            if (lead)
            {
                directory.Running = true;
                return NewBatch();
            }

            return directory.Pending ??= NewBatch();
        }
    }

    // Runs the batch given. Batches that gathered meanwhile are run by a pool thread, which keeps going
    // until none is left: the caller's own message must not wait behind other people's fsyncs, and a pool
    // thread never waits for a free disk thread (disk threads may all be blocked in Sync, waiting for it).
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

            lock (directory)
            {
                if (directory.Pending is null)
                {
                    directory.Running = false;
                    return;
                }

                batch = directory.Pending;
                directory.Pending = null;
            }

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

    private sealed class Directory(string path)
    {
        public string Path { get; } = path;

        public bool Running { get; set; }

        public TaskCompletionSource? Pending { get; set; }
    }
}
