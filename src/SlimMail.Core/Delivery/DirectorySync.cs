using System.Collections.Concurrent;

namespace SlimMail.Delivery;

/// <summary>
/// Group commit for directory fsyncs: every caller needs an fsync that starts after its rename, and one
/// fsync serves all the renames that happened before it started. While one runs, later callers join the
/// next batch; the thread that ran the fsync runs the next one for the whole batch as soon as it is done,
/// so N messages finishing together cost two fsyncs, not N. Waiters wait on a task, not on a lock: no
/// crowd of threads waking up to fight over a monitor (which showed as sched_yield spinning under load).
/// </summary>
internal sealed class DirectorySync
{
    private readonly ConcurrentDictionary<string, Directory> _directories = new(StringComparer.Ordinal);
    private readonly Action<string> _fsync;

    public DirectorySync(Action<string>? fsync = null) => _fsync = fsync ?? Posix.FsyncDirectory;

    public static DirectorySync Shared { get; } = new();

    /// <summary>Completes once an fsync of <paramref name="path"/> that started after this call has finished.</summary>
    public Task SyncAsync(string path)
    {
        Directory directory = _directories.GetOrAdd(path, static p => new Directory(p));
        TaskCompletionSource batch = Join(directory, out bool lead);
        if (lead)
        {
            // A pool thread, not a disk thread: a disk thread blocked in Sync() must never wait for this.
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.Self.RunBatches(state.Directory, state.Batch), (Self: this, Directory: directory, Batch: batch), preferLocal: false);
        }

        return batch.Task;
    }

    /// <summary><see cref="SyncAsync"/> for callers already on a disk thread: leads on this thread if no fsync is running.</summary>
    public void Sync(string path)
    {
        Directory directory = _directories.GetOrAdd(path, static p => new Directory(p));
        TaskCompletionSource batch = Join(directory, out bool lead);
        if (lead)
        {
            RunBatches(directory, batch);
        }

        batch.Task.GetAwaiter().GetResult();
    }

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

    // Runs the batch given, then every batch that gathered meanwhile, until none is waiting.
    private void RunBatches(Directory directory, TaskCompletionSource batch)
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
