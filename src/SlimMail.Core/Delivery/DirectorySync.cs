using System.Collections.Concurrent;

namespace SlimMail.Delivery;

/// <summary>
/// Group commit for directory fsyncs: every caller needs an fsync that starts after its rename, and one
/// fsync serves all the renames that happened before it started. While one runs, later callers share
/// the next one, so N messages finishing together cost two fsyncs, not N.
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
        TaskCompletionSource mine;
        lock (directory)
        {
            if (directory.Running)
            {
                directory.Next ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return directory.Next.Task;
            }

            directory.Running = true;
            mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        _ = BlockingIo.RunAsync(() => Run(directory, mine));
        return mine.Task;
    }

    private void Run(Directory directory, TaskCompletionSource? current)
    {
        while (current is not null)
        {
            try
            {
                _fsync(directory.Path);
                current.SetResult();
            }
            catch (IOException e)
            {
                current.SetException(e);
            }

            lock (directory)
            {
                current = directory.Next;
                directory.Next = null;
                directory.Running = current is not null;
            }
        }
    }

    private sealed class Directory(string path)
    {
        public string Path { get; } = path;

        public bool Running { get; set; }

        public TaskCompletionSource? Next { get; set; }
    }
}
