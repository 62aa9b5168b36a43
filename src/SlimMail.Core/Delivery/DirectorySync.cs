using System.Collections.Concurrent;

namespace SlimMail.Delivery;

/// <summary>
/// Group commit for directory fsyncs: every caller needs an fsync that starts after its rename, and one
/// fsync serves all the renames that happened before it started. While one runs, later callers wait
/// and the first of them runs the next one for all, so N messages finishing together cost two fsyncs,
/// not N. Callers block: this runs on the disk threads (<see cref="BlockingIo"/>), never on socket threads.
/// </summary>
internal sealed class DirectorySync
{
    private readonly ConcurrentDictionary<string, Directory> _directories = new(StringComparer.Ordinal);
    private readonly Action<string> _fsync;

    public DirectorySync(Action<string>? fsync = null) => _fsync = fsync ?? Posix.FsyncDirectory;

    public static DirectorySync Shared { get; } = new();

    /// <summary>Returns once an fsync of <paramref name="path"/> that started after this call has finished.</summary>
    public void Sync(string path)
    {
        Directory directory = _directories.GetOrAdd(path, static p => new Directory(p));
        lock (directory)
        {
            long ticket = ++directory.Requested;
            while (directory.Completed < ticket)
            {
                if (directory.Running)
                {
                    Monitor.Wait(directory);
                    continue;
                }

                // Run one fsync for every request made so far, this one included.
                directory.Running = true;
                long covers = directory.Requested;
                Monitor.Exit(directory);
                bool done = false;
                try
                {
                    _fsync(directory.Path);
                    done = true;
                }
                finally
                {
                    Monitor.Enter(directory);
                    directory.Running = false;
                    if (done)
                    {
                        directory.Completed = Math.Max(directory.Completed, covers);
                    }

                    // On failure the waiters wake up and each tries an fsync of its own.
                    Monitor.PulseAll(directory);
                }
            }
        }
    }

    /// <summary><see cref="Sync"/> on a disk thread.</summary>
    public Task SyncAsync(string path) => BlockingIo.RunAsync(() => Sync(path));

    private sealed class Directory(string path)
    {
        public string Path { get; } = path;

        public bool Running { get; set; }

        public long Requested { get; set; }

        public long Completed { get; set; }
    }
}
