namespace SlimMail.Delivery;

/// <summary>One user's Maildir: its path, the mode of the files written into it and their owner.</summary>
public sealed class MaildirMailbox
{
    // Concurrent commits each fsync their file, and on ext4 without a journal that fsync also writes the directory
    // the file was created in (the parent of a new entry) and waits for writes of it already under way: with every
    // message created in tmp/ itself, 32 commits queue behind one another's writes of tmp/'s block and inode. In
    // one staging subdirectory of tmp/ each (round robin) they do not: the C commit loop with 32 threads
    // (bench/group-sync.c mode 8 against mode 4) ran at 10,588-13,305 files/s instead of 10,240-11,261.
    // Maildir readers never look into tmp/, and Dovecot's clean-up of it skips directories.
    private const int StagingDirectories = 16;

    private readonly string[] _staging = new string[StagingDirectories];
    private int _stagingCreated; // a bit per staging directory known to exist
    private int _nextStaging;
    private volatile bool _created;

    /// <summary>Describes a Maildir; the directories are created on first delivery.</summary>
    /// <param name="path">The Maildir root (holding <c>cur</c>, <c>new</c>, <c>tmp</c>).</param>
    /// <param name="fileMode">The mode of message files (default 0600).</param>
    /// <param name="owner">Numeric owner applied when running as root, or null.</param>
    public MaildirMailbox(string path, UnixFileMode fileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite, (int Uid, int Gid)? owner = null)
    {
        Root = Path.GetFullPath(path);
        FileMode = fileMode;
        Owner = owner;
        Tmp = Path.Combine(Root, "tmp");
        New = Path.Combine(Root, "new");
        Cur = Path.Combine(Root, "cur");
        for (int i = 0; i < StagingDirectories; i++)
        {
            _staging[i] = Path.Combine(Tmp, ".slimmail-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The Maildir root.</summary>
    public string Root { get; }

    /// <summary><c>tmp/</c>, holding the staging directories messages are written in (<see cref="NextStagingDirectory"/>).</summary>
    public string Tmp { get; }

    /// <summary><c>new/</c>, where finished messages appear.</summary>
    public string New { get; }

    /// <summary><c>cur/</c>, where readers move messages they have seen.</summary>
    public string Cur { get; }

    /// <summary>The mode of message files.</summary>
    public UnixFileMode FileMode { get; }

    /// <summary>The owner given to files and directories when running as root.</summary>
    public (int Uid, int Gid)? Owner { get; }

    /// <summary>
    /// The directory to write the next message in: one of SlimMail's subdirectories of <c>tmp/</c>
    /// (<c>tmp/.slimmail-N</c>), taken in turn and created on first use. Call after <see cref="EnsureCreated"/>.
    /// </summary>
    public string NextStagingDirectory()
    {
        int i = (int)((uint)Interlocked.Increment(ref _nextStaging) % StagingDirectories);
        if ((Volatile.Read(ref _stagingCreated) & (1 << i)) == 0)
        {
            CreateDirectory(_staging[i]);
            Interlocked.Or(ref _stagingCreated, 1 << i);
        }

        return _staging[i];
    }

    /// <summary>
    /// How old a file in <c>tmp/</c> must be before anyone may delete it, by the Maildir convention: no live writer
    /// (SlimMail, or another program delivering into the same Maildir) holds one unrenamed that long.
    /// </summary>
    public static readonly TimeSpan StaleTemporaryAge = TimeSpan.FromHours(36);

    /// <summary>
    /// Creates <c>cur/ new/ tmp/</c> if they are missing (0700, like Dovecot and Postfix) and, the first time in
    /// this process, removes files older than <see cref="StaleTemporaryAge"/> from <c>tmp/</c>.
    /// </summary>
    public void EnsureCreated()
    {
        if (_created)
        {
            return;
        }

        foreach (string dir in new[] { Root, Tmp, New, Cur })
        {
            CreateDirectory(dir);
        }

        RemoveStaleTemporaryFiles();
        _created = true;
    }

    /// <summary>
    /// Forgets which directories exist, after a write found one missing (the Maildir was removed or moved while the
    /// server ran): the next <see cref="EnsureCreated"/> and <see cref="NextStagingDirectory"/> create them again, as
    /// Postfix's and Dovecot's deliveries do, instead of failing every delivery until a restart.
    /// </summary>
    internal void ForgetCreatedDirectories()
    {
        Interlocked.Exchange(ref _stagingCreated, 0);
        _created = false;
    }

    private void CreateDirectory(string dir)
    {
        if (Directory.Exists(dir))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(dir);
            return;
        }

        const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Directory.CreateDirectory(dir, DirectoryMode);
        if (Owner is { } owner && Posix.IsRoot)
        {
            Posix.Chown(dir, owner.Uid, owner.Gid);
        }
    }

    // What a writer killed between creating its file and renaming it leaves behind (SlimMail after kill -9 or a
    // power loss during a commit). Another program's debris goes too: the age makes that safe.
    private void RemoveStaleTemporaryFiles()
    {
        DateTime cutoff = DateTime.UtcNow - StaleTemporaryAge;
        try
        {
            foreach (string dir in _staging.Where(Directory.Exists).Prepend(Tmp))
            {
                foreach (string file in Directory.EnumerateFiles(dir))
                {
                    if (File.GetLastWriteTimeUtc(file) < cutoff)
                    {
                        File.Delete(file);
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Debris is not worth failing a delivery or a login over.
        }
    }
}
