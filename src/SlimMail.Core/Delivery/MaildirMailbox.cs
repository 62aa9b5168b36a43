namespace SlimMail.Delivery;

/// <summary>One user's Maildir: its path, the mode of the files written into it and their owner.</summary>
public sealed class MaildirMailbox
{
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
    }

    /// <summary>The Maildir root.</summary>
    public string Root { get; }

    /// <summary><c>tmp/</c>, where messages are written.</summary>
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

        const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        foreach (string dir in new[] { Root, Tmp, New, Cur })
        {
            if (!Directory.Exists(dir))
            {
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(dir);
                }
                else
                {
                    Directory.CreateDirectory(dir, DirectoryMode);
                    if (Owner is { } owner && Posix.IsRoot)
                    {
                        Posix.Chown(dir, owner.Uid, owner.Gid);
                    }
                }
            }
        }

        RemoveStaleTemporaryFiles();
        _created = true;
    }

    // What a writer killed between creating its file and renaming it leaves behind (SlimMail after kill -9 or a
    // power loss during a commit). Another program's debris goes too: the age makes that safe.
    private void RemoveStaleTemporaryFiles()
    {
        DateTime cutoff = DateTime.UtcNow - StaleTemporaryAge;
        try
        {
            foreach (string file in Directory.EnumerateFiles(Tmp))
            {
                if (File.GetLastWriteTimeUtc(file) < cutoff)
                {
                    File.Delete(file);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Debris is not worth failing a delivery or a login over.
        }
    }
}
